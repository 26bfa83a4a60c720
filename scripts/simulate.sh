#!/usr/bin/env bash
# npm run simulate -- [--runs N] [--seed S] [--path P]: the rollout simulator (test/simulator/)
# beyond the budget `npm test` gives it. Without --seed a fresh one is drawn (and printed), so
# every run explores new schedules; --seed and --path replay the one schedule a failure printed,
# call by call, with the logs of every run in it.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5000 seed="" path=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --path) path="$2"; shift 2 ;;
    *) echo "simulate: unknown option $1 (--runs N, --seed S, --path P)" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[0-9]+$ ]] || { echo "simulate: --runs expects a number, got $runs" >&2; exit 2; }
[ -n "$seed" ] || seed=$(( RANDOM * 32768 + RANDOM ))
SIMULATOR_RUNS="$runs" SIMULATOR_SEED="$seed" SIMULATOR_PATH="$path" \
  exec npx vitest run test/simulator/simulator.test.ts -t "holds every invariant"
