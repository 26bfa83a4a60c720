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
it('stats', async () => {
  if (!process.env.STATS) return;
  const { FAULTS } = await import('./simulate.js');
  const [n, seed] = JSON.parse(process.env.STATS);
  const stats = new Map<string, { n: number; example: string }>();
  const t0 = performance.now();
  await fc.assert(fc.asyncProperty(
    fc.record({ scenario: fc.constantFrom(...SCENARIOS), faults: fc.array(fc.record({ kind: fc.constantFrom(...FAULTS), at: fc.nat({ max: 220 }) }), { maxLength: 2 }), scheduler: fc.scheduler() }),
    async ({ scenario, faults, scheduler }) => {
      const run = await new Simulation(scenario, faults, scheduler).run();
      const seen = new Set<string>();
      for (const v of check(run)) {
        const key = `${v.invariant}: ${v.detail.replace(/h\d/g, 'hN').replace(/\d+/g, 'N').slice(0, 110)}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const s = stats.get(key) ?? { n: 0, example: `${scenario.name} ${JSON.stringify(faults.map((f) => [f.kind, f.at]))}` };
        s.n++;
        stats.set(key, s);
      }
    }), { numRuns: n, seed });
  console.log(`${n} in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  console.log([...stats].sort((a, b) => b[1].n - a[1].n).map(([k, s]) => `${s.n}\t${k}\t| ${s.example}`).join('\n'));
}, 900_000);
