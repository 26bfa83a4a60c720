// `npm run mutate -- --executor`: the executor (src/rollout/execute.ts) mutated, with the unit
// tests and the rollout simulator as its tests (vitest.executor.config.ts). Apart from the pure
// core's run (stryker.config.mjs) because the simulator makes each mutant seconds, not
// milliseconds; scripts/mutate.sh sets the simulator's budget for it.
import core from './stryker.config.mjs';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  ...core,
  vitest: { configFile: 'vitest.executor.config.ts' },
  mutate: ['src/rollout/execute.ts'],
  incrementalFile: 'reports/mutation/executor/stryker-incremental.json',
  htmlReporter: { fileName: 'reports/mutation/executor/index.html' },
  jsonReporter: { fileName: 'reports/mutation/executor/mutation.json' },
  tempDirName: '.stryker-tmp-executor',
};
