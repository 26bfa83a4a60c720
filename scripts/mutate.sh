#!/usr/bin/env bash
# npm run mutate [-- --executor] [-- StrykerJS options such as --force]: mutation testing
# (CONTRIBUTING.md, "Mutation testing"). Without --executor: the pure core (stryker.config.mjs)
# against the unit tests. With --executor: src/rollout/execute.ts (stryker.executor.config.mjs)
# against the unit tests and the rollout simulator, on 40 schedules and 20 of the worker role from
# seed 19 (npm test runs 5,000 and 600) and without the simulator's seeded-bug suite: seconds per
# mutant instead of minutes.
set -euo pipefail
cd "$(dirname "$0")/.."
config=stryker.config.mjs
args=()
for arg in "$@"; do
  if [ "$arg" = --executor ]; then config=stryker.executor.config.mjs; else args+=("$arg"); fi
done
if [ "$config" = stryker.executor.config.mjs ]; then
  export SIMULATOR_RUNS="${SIMULATOR_RUNS:-40}" SIMULATOR_ROLE_RUNS="${SIMULATOR_ROLE_RUNS:-20}" SIMULATOR_SEED="${SIMULATOR_SEED:-19}" SIMULATOR_SEEDED_BUGS=off
fi
exec stryker run "$config" ${args[@]+"${args[@]}"}
