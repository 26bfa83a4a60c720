import fc from 'fast-check';
import { afterAll, beforeAll, it, vi } from 'vitest';
import { runtime } from './runtime.js';
vi.mock('@actions/core', async () => (await import('./runtime.js')).core);
vi.mock('../../src/drivers/github.js', async (original) => ({ ...(await original<object>()), GitHubApi: (await import('./runtime.js')).FakeGitHubApi }));
vi.mock('../../src/drivers/docker/host.js', async (original) => ({ ...(await original<object>()), connectHost: (o: { host: string }) => runtime().host(o.host) }));
vi.mock('../../src/drivers/haproxy.js', async (original) => ({ ...(await original<object>()), connectLoadBalancer: (o: { host: string }) => runtime().loadBalancer(o.host) }));
const { check } = await import('./invariants.js');
const { SCENARIOS, Simulation, installTime } = await import('./simulate.js');
let uninstall: () => void;
beforeAll(() => { uninstall = installTime(); });
afterAll(() => uninstall());
it('search', async () => {
  const [names, kinds, pattern, n, maxAt] = JSON.parse(process.env.SEARCH!);
  let found = 0;
  await fc.assert(fc.asyncProperty(
    fc.record({ scenario: fc.constantFrom(...SCENARIOS.filter((s) => names.includes(s.name))), faults: fc.array(fc.record({ kind: fc.constantFrom(...kinds), at: fc.nat({ max: maxAt }) }), { minLength: 1, maxLength: 2 }) }),
    async ({ scenario, faults }) => {
      const run = await new Simulation(scenario, faults).run();
      const hits = check(run).filter((v) => new RegExp(pattern).test(`${v.invariant}: ${v.detail}`));
      if (hits.length && found++ < 5) console.log(`HIT ${scenario.name} ${JSON.stringify(faults)}: ${hits.map((h) => h.detail).join(' / ')}`);
    }), { numRuns: n, seed: 3 });
}, 600_000);
