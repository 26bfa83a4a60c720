// Faults caused for real on the estate: the job cancelled the way GitHub cancels it (SIGINT,
// SIGTERM 7.5 s later, SIGKILL 2.5 s after that, then the post step), and the runner killed
// outright mid-rollout followed by the post step. Afterwards every server is UP on both load
// balancers, every host runs one release in both roles, no lock is left, and no request failed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearHosts, containersOn, runDeploy, versionsOn, type DeployRunOptions } from './support/deploy.js';
import { loadEstate, onMasterStop, serverStatus, type Estate } from './support/estate.js';
import { startGitHub, type GitHubStandIn } from './support/github.js';
import { pushTestApp } from './support/images.js';
import { underLoadThrough } from './support/load.js';

let estate: Estate;
let github: GitHubStandIn;
const hosts = () => estate.environments.production.hosts.slice(0, 2);
const deploy = (options: Omit<DeployRunOptions, 'environment'>) => runDeploy(estate, { environment: 'production', githubUrl: github.url, ...options });

const onFirstMasterStop = (then: () => void) => onMasterStop(estate, hosts()[0]!, then);

const underLoad = <T>(work: () => Promise<T>) => underLoadThrough(estate.environments.production.lbs.map((lb) => lb.frontend), work);

/** The clean state every fault must end in. */
async function expectClean(): Promise<void> {
  for (const lb of estate.environments.production.lbs) {
    for (const [i] of hosts().entries()) {
      for (const role of ['master', 'backup']) expect(await serverStatus(estate, lb, `h${i + 1}-${role}`), `${lb.address} h${i + 1}-${role}`).toMatch(/^UP/);
    }
  }
  for (const [host, roles] of Object.entries(await versionsOn(estate, hosts()))) {
    expect(roles.demo, host).toMatch(/ running$/);
    expect(roles['demo-backup'], host).toBe(roles.demo);
  }
  const lockHost = [...hosts()].sort()[0]!;
  expect((await containersOn(estate, lockHost)).map((c) => c.name)).not.toContain('demo-deploy-lock');
}

beforeAll(async () => {
  estate = loadEstate();
  github = await startGitHub();
  for (const version of ['v6.0.0', 'v6.1.0']) await pushTestApp(estate, { version });
  await clearHosts(estate, estate.environments.production.hosts);
  const first = await deploy({ version: 'v6.0.0' });
  if (first.code !== 0) throw new Error(first.log);
}, 600_000);

afterAll(async () => {
  await github?.close();
  if (estate) await clearHosts(estate, estate.environments.production.hosts);
}, 120_000);

describe('a cancelled job', () => {
  it('exits on its own before the runner SIGTERMs it, settled; the post step leaves nothing behind', async () => {
    let sigint = 0;
    let exited = 0;
    const timers: NodeJS.Timeout[] = [];
    const [[run, post], loads] = await underLoad(async () => {
      let stopWatching = () => {};
      const run = await deploy({
        version: 'v6.1.0',
        onStart: (pid) => {
          stopWatching = onFirstMasterStop(() => {
            sigint = Date.now();
            process.kill(pid, 'SIGINT');
            // The runner's sequence, should the action still run.
            timers.push(setTimeout(() => process.kill(pid, 'SIGTERM'), 7_500), setTimeout(() => process.kill(pid, 'SIGKILL'), 10_000));
          });
        },
      }).finally(() => {
        exited = Date.now();
        timers.forEach(clearTimeout);
        stopWatching();
      });
      const post = await deploy({ version: 'v6.1.0', post: { state: run.state } });
      return [run, post] as const;
    });
    expect(sigint).toBeGreaterThan(0);
    expect(exited - sigint).toBeLessThan(7_500);
    expect(run.code).toBe(1);
    expect(run.log).toContain('SIGINT: the job is being cancelled');
    expect(run.log).toMatch(/cancelled in production: every host serves, in service/);
    expect(post.code, post.log).toBe(0);
    for (const load of loads) expect(load.failures).toEqual([]);
    await expectClean();
    // Host 1 went back to what its backup ran; host 2 never started.
    expect(await versionsOn(estate, hosts())).toEqual(Object.fromEntries(hosts().map((h) => [h, { demo: 'v6.0.0 running', 'demo-backup': 'v6.0.0 running' }])));
    const record = github.deployments.at(-1)!;
    expect(record.statuses.at(-1)).toMatchObject({ state: 'failure' });
    expect(record.statuses.at(-1)?.description).toContain('cancelled');
  }, 300_000);
});

describe('a runner killed mid-rollout', () => {
  it('the post step settles every host it touched, puts every server back, and releases the lock', async () => {
    const [[run, post], loads] = await underLoad(async () => {
      let stopWatching = () => {};
      const run = await deploy({
        version: 'v6.1.0',
        onStart: (pid) => {
          // Killed a moment into the first master's replacement: it is out of service, its old
          // container stopping or gone.
          stopWatching = onFirstMasterStop(() => setTimeout(() => process.kill(pid, 'SIGKILL'), 300));
        },
      }).finally(() => stopWatching());
      const post = await deploy({ version: 'v6.1.0', post: { state: run.state } });
      return [run, post] as const;
    });
    expect(run.code).toBeNull();
    expect(post.code, post.log).toBe(0);
    expect(post.log).toContain('The rollout of production was cut short: settling 10.231.0.21');
    for (const load of loads) expect(load.failures).toEqual([]);
    await expectClean();
    const record = github.deployments.at(-1)!;
    expect(record.statuses.at(-1)?.description).toContain('the post step settled every host');
    // The next deploy needs nothing: no stale lock, nothing held.
    const next = await deploy({ version: 'v6.1.0' });
    expect(next.code, next.log).toBe(0);
    expect(next.log).not.toContain('not READY');
  }, 300_000);
});
