// Several load balancers and many hosts: production has two HAProxy peers in front of the same
// hosts, traffic goes through both, and a server must be drained on both before its container
// stops; a deploy to eight hosts keeps every request.
import { execFile, spawn } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearHosts, containersOn, runDeploy, versionsOn } from './support/deploy.js';
import { REPO_ROOT, loadEstate, nodeOf, serverStatus, type Estate } from './support/estate.js';
import { pushTestApp } from './support/images.js';
import { underLoadThrough } from './support/load.js';

let estate: Estate;
const production = () => estate.environments.production.hosts.slice(0, 2);
const everywhere = (hosts: string[], version: string) => Object.fromEntries(hosts.map((h) => [h, { demo: `${version} running`, 'demo-backup': `${version} running` }]));

const statusOn = (lb: Estate['environments']['production']['lb'], server: string) => serverStatus(estate, lb, server);

/**
 * Watches host 1's master while `work` runs: at each signal Docker sends its container (the
 * start of a stop), both load balancers are asked for the server's state, which must be MAINT on
 * both (it stays so until the replacement is healthy, well after the answer comes back).
 */
async function watchStops<T>(work: () => Promise<T>): Promise<[T, { stops: string[][] }]> {
  const node = nodeOf(estate, production()[0]!);
  const lbs = estate.environments.production.lbs;
  const events = spawn('bash', [join(REPO_ROOT, 'test/estate/estate.sh'), 'exec', node, 'docker', 'events', '--filter', 'container=demo', '--filter', 'event=kill', '--format', '{{.Actor.Attributes.name}}']);
  const stops: Promise<string[]>[] = [];
  events.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    for (const name of chunk.split('\n').filter(Boolean)) if (name === 'demo') stops.push(Promise.all(lbs.map((lb) => statusOn(lb, 'h1-master'))));
  });
  await new Promise((r) => setTimeout(r, 500));
  try {
    return [await work(), { stops: await Promise.all(stops) }];
  } finally {
    events.kill();
  }
}

beforeAll(async () => {
  estate = loadEstate();
  for (const [version, broken] of [['v5.0.0', false], ['v5.1.0', false], ['v5.2.0', true]] as const) await pushTestApp(estate, { version, broken });
  await clearHosts(estate, estate.environments.production.hosts);
}, 600_000);

describe('two load balancers in front of production', () => {
  const frontends = () => estate.environments.production.lbs.map((lb) => lb.frontend);

  it('first deploy, then a deploy and an automatic rollback, each dropping no request through either', async () => {
    expect(estate.environments.production.lbs).toHaveLength(2);
    const first = await runDeploy(estate, { environment: 'production', version: 'v5.0.0' });
    expect(first.code, first.log).toBe(0);

    const [[run, watched], loads] = await underLoadThrough(frontends(), () => watchStops(() => runDeploy(estate, { environment: 'production', version: 'v5.1.0' })));
    expect(run.code, run.log).toBe(0);
    // Host 1's master was stopped once, and at that moment both load balancers had it in MAINT.
    expect(watched.stops).toEqual([['MAINT', 'MAINT']]);
    for (const load of loads) {
      expect(load.failures).toEqual([]);
      expect(load.ok).toBeGreaterThan(50);
    }
    expect(await versionsOn(estate, production())).toEqual(everywhere(production(), 'v5.1.0'));
    expect(run.log).toMatch(/\[10\.231\.0\.21\] master: drain [\d.]+ s, stop [\d.]+ s, start [\d.]+ s, healthy [\d.]+ s, in service [\d.]+ s/);

    const [broken, brokenLoads] = await underLoadThrough(frontends(), () => runDeploy(estate, { environment: 'production', version: 'v5.2.0' }));
    expect(broken.code).toBe(1);
    for (const load of brokenLoads) expect(load.failures).toEqual([]);
    expect(await versionsOn(estate, production())).toEqual(everywhere(production(), 'v5.1.0'));
    // Both load balancers route to every server again.
    for (const lb of estate.environments.production.lbs) {
      for (const server of ['h1-master', 'h2-master']) expect(await statusOn(lb, server)).toMatch(/^UP/);
    }
  }, 600_000);

  it('one load balancer unreachable at pre-flight: the deploy fails naming it, and nothing changes', async () => {
    const before = await Promise.all(production().map((h) => containersOn(estate, h)));
    const run = await runDeploy(estate, { environment: 'production', version: 'v5.0.0', loadBalancers: [estate.environments.production.lb.address, '127.0.0.1'] });
    expect(run.code).toBe(1);
    expect(run.log).toMatch(/cannot reach the production environment:[\s\S]*127\.0\.0\.1/);
    expect(await Promise.all(production().map((h) => containersOn(estate, h)))).toEqual(before);
  }, 120_000);
});

describe('eight hosts', () => {
  const ESTATE = join(REPO_ROOT, 'test/estate/estate.sh');
  let eight: string[];

  beforeAll(async () => {
    await promisify(execFile)('bash', [ESTATE, 'up', '--staging', '8'], { maxBuffer: 16 * 1024 * 1024 });
    estate = loadEstate();
    eight = estate.environments.staging.hosts;
    await clearHosts(estate, eight);
  }, 600_000);

  afterAll(async () => {
    if (eight) await clearHosts(estate, eight);
    // Back to the estate every other test expects.
    await promisify(execFile)('bash', [ESTATE, 'up'], { maxBuffer: 16 * 1024 * 1024 });
    estate = loadEstate();
  }, 600_000);

  it('a deploy to eight hosts ends with every host on the new release and zero failed requests', async () => {
    expect(eight).toHaveLength(8);
    const first = await runDeploy(estate, { environment: 'staging', version: 'v5.0.0', hosts: eight });
    expect(first.code, first.log).toBe(0);
    const [run, [load]] = await underLoadThrough([estate.environments.staging.lb.frontend], () =>
      runDeploy(estate, { environment: 'staging', version: 'v5.1.0', hosts: eight }),
    );
    expect(run.code, run.log).toBe(0);
    // Half the hosts at once (max-parallel defaults to 50%): two batches of four.
    expect(run.log).toContain('Batch 2: ');
    expect(run.log).not.toContain('Batch 3: ');
    expect(load!.failures).toEqual([]);
    expect(await versionsOn(estate, eight)).toEqual(everywhere(eight, 'v5.1.0'));
  }, 600_000);
});

afterAll(async () => {
  if (estate) await clearHosts(estate, estate.environments.production.hosts);
}, 120_000);
