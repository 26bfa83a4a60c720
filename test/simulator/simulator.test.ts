// The simulator's fixed budget in `npm test`: SIMULATOR_RUNS schedules (5,000 by default) drawn
// from a seed, each checked against every invariant. `npm run simulate -- --runs N` runs more;
// `npm run simulate -- --seed S --path P` replays one schedule a failure printed.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { runtime } from './runtime.js';

vi.mock('@actions/core', async () => (await import('./runtime.js')).core);
vi.mock('../../src/drivers/github.js', async (original) => ({ ...(await original<object>()), GitHubApi: (await import('./runtime.js')).FakeGitHubApi }));
vi.mock('../../src/drivers/docker/host.js', async (original) => ({ ...(await original<object>()), connectHost: (o: { host: string }) => runtime().host(o.host) }));
vi.mock('../../src/drivers/haproxy.js', async (original) => ({ ...(await original<object>()), connectLoadBalancer: (o: { host: string }) => runtime().loadBalancer(o.host) }));

const { check } = await import('./invariants.js');
const { FAULTS, SCENARIOS, Simulation, installTime } = await import('./simulate.js');

let uninstall: () => void;
beforeAll(() => {
  uninstall = installTime();
});
afterAll(() => uninstall());

describe('the simulator', () => {
  it('clean runs of every scenario', async () => {
    for (const scenario of SCENARIOS) {
      const run = await new Simulation(scenario, []).run();
      console.log(scenario.name, run.mainCalls, run.main.failed?.split('\n')[0] ?? 'ok', check(run).map((v) => `${v.invariant}: ${v.detail}`));
    }
  });
  it('random', async () => {
    const stats = new Map<string, number>();
    const t0 = performance.now();
    await fc.assert(
      fc.asyncProperty(
        fc.record({ scenario: fc.constantFrom(...SCENARIOS), faults: fc.array(fc.record({ kind: fc.constantFrom(...FAULTS), at: fc.nat({ max: 150 }) }), { maxLength: 2 }), scheduler: fc.scheduler() }),
        async ({ scenario, faults, scheduler }) => {
          const run = await new Simulation(scenario, faults, scheduler).run();
          for (const v of check(run)) {
            const key = `${v.invariant}: ${v.detail.replace(/h\d/g, 'hN').slice(0, 100)}`;
            if (!stats.has(key)) console.log(key, '|', scenario.name, JSON.stringify(faults));
            stats.set(key, (stats.get(key) ?? 0) + 1);
          }
        },
      ),
      { numRuns: 500, seed: 1 },
    );
    console.log(`500 in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    console.log([...stats].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${n} ${k}`).join('\n'));
  }, 600_000);
});
