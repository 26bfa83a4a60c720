// What `npm run mutate -- --executor` runs against each mutant of src/rollout/execute.ts: the unit
// tests (as vitest.unit.config.ts) and the rollout simulator (test/simulator/simulator.test.ts),
// which scripts/mutate.sh runs on a small fixed budget (SIMULATOR_RUNS, seed 19) without its
// seeded-bug suite.
import { defineConfig } from 'vitest/config';
import unit from './vitest.unit.config.js';

export default defineConfig({ ...unit, test: { ...unit.test, include: [...unit.test!.include!, 'test/simulator/simulator.test.ts'] } });
