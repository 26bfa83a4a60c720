// The unit tests alone (test/unit): what `npm run mutate` runs against each mutant. The
// integration tests need the shared estate and take minutes each.
import { defineConfig } from 'vitest/config';
import base from './vitest.config.js';

export default defineConfig({ ...base, test: { ...base.test, include: ['test/unit/**/*.test.ts'] } });
