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
it('find', async () => {
  const [name, kinds, pattern, extra = []] = JSON.parse(process.env.FIND!);
  const scenario = SCENARIOS.find((s) => s.name === name)!;
  const clean = await new Simulation(scenario, extra).run();
  if (process.env.TRACE) console.log(clean.trace.filter((t) => t.includes(' main ')).map((t, i) => `${i} ${t}`).join('\n'));
  for (let at = 0; at < clean.mainCalls; at++) for (const kind of kinds) {
    const run = await new Simulation(scenario, [...extra, { kind, at }]).run();
    const hits = check(run).filter((v) => new RegExp(pattern).test(`${v.invariant}: ${v.detail}`));
    if (hits.length) console.log(`HIT ${kind} at ${at} [${run.trace.filter(t=>t.includes(' main ')).at(-1)}]: ${hits.map((h) => h.detail).join(' / ')}`);
  }
});
