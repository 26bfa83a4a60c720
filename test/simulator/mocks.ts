// The modules the simulator answers in memory (runtime.ts), for each simulator test file:
//   vi.mock('@actions/core', () => import('./mocks.js').then((m) => m.core));
// and so on; vi.mock must be written in the test file itself (it is hoisted there).
export { core, FakeGitHubApi } from './runtime.js';
