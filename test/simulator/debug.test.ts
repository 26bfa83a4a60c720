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
it('debug', async () => {
  const [name, faults] = JSON.parse(process.env.DBG!);
  const run = await new Simulation(SCENARIOS.find((s) => s.name === name)!, faults).run();
  console.log(run.trace.filter((t) => new RegExp(process.env.WHO ?? '^\\d+ main ').test(t)).slice(-Number(process.env.TAIL ?? 40)).join('\n'));
  for (const p of [run.main, run.second, run.final]) console.log(p?.name, p?.dead, p?.done, p?.failed, '\n  ' + p?.logs.filter(l=>!l.startsWith('::')).slice(-25).join('\n  '));
  console.log(check(run));
});
it('summary', async () => {
  if (!process.env.SUM) return;
  const [name, faults] = JSON.parse(process.env.SUM);
  const run = await new Simulation(SCENARIOS.find((s) => s.name === name)!, faults).run();
  console.log(JSON.stringify(run.main.tables), run.main.summary.join('\n'));
});
