// Faults caused for real on the estate: the job cancelled the way GitHub cancels it (SIGINT,
// SIGTERM 7.5 s later, SIGKILL 2.5 s after that, then the post step), and the runner killed
// outright mid-rollout followed by the post step. Afterwards every server is UP on both load
// balancers, every host runs one release in both roles, no lock is left, and no request failed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDeploy, versionsOn, type DeployRunOptions } from './support/deploy.js';
import type { Estate } from './support/estate.js';
import { aftermath, cancelAsRunner, strikeAtMasterStop } from './support/faults.js';
import type { GitHubStandIn } from './support/github.js';
import { underLoadThrough } from './support/load.js';
import { leaveProduction, startOnProduction } from './support/suite.js';

let estate: Estate;
let github: GitHubStandIn;
const hosts = () => estate.environments.production.hosts.slice(0, 2);
const deploy = (options: Omit<DeployRunOptions, 'environment'>) => runDeploy(estate, { environment: 'production', githubUrl: github.url, ...options });

/** The deploy, with `strike` called when host 1's master begins to stop. */
const strikeAtFirstStop = (options: Omit<DeployRunOptions, 'environment'>, strike: (pid: number) => unknown) =>
  strikeAtMasterStop(estate, hosts()[0]!, (onStart) => deploy({ ...options, onStart }), strike);

const underLoad = <T>(work: () => Promise<T>) => underLoadThrough(estate.environments.production.lbs.map((lb) => lb.frontend), work);

/** The clean state every fault must end in. */
async function expectClean(): Promise<void> {
  expect(await aftermath(estate, 'production', hosts())).toEqual({ outOfRotation: [], mixed: [], lockLeft: false });
}

beforeAll(async () => {
  ({ estate, github } = await startOnProduction([{ version: 'v6.0.0' }, { version: 'v6.1.0' }], 'v6.0.0'));
}, 600_000);

afterAll(() => leaveProduction(estate, github), 120_000);

describe('a cancelled job', () => {
  it('exits on its own before the runner SIGTERMs it, settled; the post step leaves nothing behind', async () => {
    let clearSignals = () => {};
    const [[{ run, struckAt: sigint, exitedAt: exited }, post], loads] = await underLoad(async () => {
      const struck = await strikeAtFirstStop({ version: 'v6.1.0' }, (pid) => {
        clearSignals = cancelAsRunner(pid);
      }).finally(() => clearSignals());
      const post = await deploy({ version: 'v6.1.0', post: { state: struck.run.state } });
      return [struck, post] as const;
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
      // Killed a moment into the first master's replacement: it is out of service, its old
      // container stopping or gone.
      const { run } = await strikeAtFirstStop({ version: 'v6.1.0' }, (pid) => setTimeout(() => process.kill(pid, 'SIGKILL'), 300));
      const post = await deploy({ version: 'v6.1.0', post: { state: run.state } });
      return [run, post] as const;
    });
    expect(run.code).toBeNull();
    expect(post.code, post.log).toBe(0);
    expect(post.log).toContain('The rollout of production was cut short: settling 10.231.0.21');
    for (const load of loads) expect(load.failures).toEqual([]);
    await expectClean();
    const record = github.deployments.at(-1)!;
    // The main step died with the record open: the post step's closes it, saying what it did
    // with the host it settled (here: back on v6.0.0, or on v6.1.0 had the new master been proven).
    expect(record.statuses.at(-1)?.description).toMatch(/^Runner stopped mid-rollout; the post step (settled 10\.231\.0\.21 on the old release v6\.0\.0|kept the new release v6\.1\.0 on 10\.231\.0\.21)/);
    // The next deploy needs nothing: no stale lock, nothing held.
    const next = await deploy({ version: 'v6.1.0' });
    expect(next.code, next.log).toBe(0);
    expect(next.log).not.toContain('not READY');
  }, 300_000);
});
