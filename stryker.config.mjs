// Mutation testing of the pure core (`npm run mutate`): StrykerJS changes one thing at a time in
// the modules below (an operator, a condition, a string) and runs the unit tests that cover it; a
// change every test lets through is a mistake the tests would not catch. Needs Node 22+ (StrykerJS
// 10): `npm run mutate` runs it on the project's Node 24 from node_modules/.bin. StrykerJS 9 with
// vitest 5 matches no test and reports a meaningless score (stryker-js issue 6210).
// Surviving and equivalent mutants are listed, with why, in the test files and the docs: nothing
// here hides one (no `ignorers`, no `// Stryker disable`).
/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  vitest: { configFile: 'vitest.unit.config.ts' },
  mutate: [
    'src/rollout/plan.ts',
    'src/rollout/lock.ts',
    'src/receipt/canary.ts',
    'src/receipt/tally.ts',
    // The canary's binomial tests (issue 20): the verdict's arithmetic.
    'src/receipt/stats.ts',
    'src/release/trust.ts',
    'src/release/history.ts',
    'src/release/approval.ts',
  ],
  coverageAnalysis: 'perTest',
  // The machine has 2 cores, shared with others: two test runners at most.
  concurrency: 2,
  // Re-runs test only the mutants whose code or tests changed since the last run (its results
  // are kept in reports/mutation/); `npm run mutate -- --force` tests every one again. A fresh
  // clone (and the scheduled workflow) has no earlier run, so it tests all of them.
  incremental: true,
  incrementalFile: 'reports/mutation/stryker-incremental.json',
  // The score the pure core keeps (CONTRIBUTING.md, Mutation testing): below `break` the command,
  // and the scheduled workflow, fail.
  thresholds: { high: 95, low: 90, break: 90 },
  timeoutMS: 10_000,
  reporters: ['clear-text', 'html', 'json', 'progress-append-only'],
  clearTextReporter: { allowEmojis: false, logTests: false },
  htmlReporter: { fileName: 'reports/mutation/index.html' },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
