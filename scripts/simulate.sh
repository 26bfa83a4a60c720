#!/usr/bin/env bash
# npm run simulate -- [--runs N] [--seed S] [--path P] [--schedule JSON]: the rollout simulator
# (test/simulator/) beyond the budget `npm test` gives it. Without --seed a fresh one is drawn
# (and printed), so every run explores new schedules; --seed and --path replay the one schedule a
# failure printed, call by call, with the logs of every run in it; --schedule runs one written
# out: '{"scenario": "upgrade", "faults": [{"kind": "sigint", "at": 0, "on": "stop h1 app"}]}';
# --survey runs every schedule to its end and counts, per invariant, the schedules that broke it.
set -euo pipefail
cd "$(dirname "$0")/.."
runs=5000 seed="" path="" schedule="" survey=""
while [ $# -gt 0 ]; do
  case "$1" in
    --runs) runs="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --path) path="$2"; shift 2 ;;
    --schedule) schedule="$2"; shift 2 ;;
    --survey) survey=1; shift ;;
    *) echo "simulate: unknown option $1 (--runs N, --seed S, --path P, --schedule JSON, --survey)" >&2; exit 2 ;;
  esac
done
[[ "$runs" =~ ^[0-9]+$ ]] || { echo "simulate: --runs expects a number, got $runs" >&2; exit 2; }
[ -n "$seed" ] || seed=$(( RANDOM * 32768 + RANDOM ))
SIMULATOR_RUNS="$runs" SIMULATOR_SEED="$seed" SIMULATOR_PATH="$path" SIMULATOR_SCHEDULE="$schedule" SIMULATOR_SURVEY="$survey" \
  exec npx vitest run test/simulator/simulator.test.ts -t "holds every invariant"
