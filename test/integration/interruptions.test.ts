// Two interruption defects of issue 19, caused for real on the estate under load through both
// production load balancers: the job cancelled the way the runner cancels it (SIGINT, SIGTERM
// 7.5 s later, SIGKILL 2.5 s after that, then the post step) while a hand-run master that ignores
// SIGTERM uses its whole 30 s stop-timeout; and a runner SIGKILLed with no post step while an
// operator holds a server out, the next run taking the lock over. Nothing that served is lost,
// the operator's server stays held, and no request fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectHost } from '../../src/drivers/docker/host.js';
import { clearHosts, containersOn, runDeploy, versionsOn, type DeployRunOptions } from './support/deploy.js';
import { execIn, lbCommand, nodeOf, registryAuth, serverStatus, sshOptions, type Estate } from './support/estate.js';
import { aftermath, strikeAtMasterStop } from './support/faults.js';
import type { GitHubStandIn } from './support/github.js';
import { underLoadThrough } from './support/load.js';
import { leaveProduction, startOnProduction } from './support/suite.js';

let estate: Estate;
let github: GitHubStandIn;
const hosts = () => estate.environments.production.hosts.slice(0, 2);
const repository = () => `${estate.registry.address}/clay/demo`;
const deploy = (options: Omit<DeployRunOptions, 'environment'>) => runDeploy(estate, { environment: 'production', githubUrl: github.url, ...options });
const underLoad = <T>(work: () => Promise<T>) => underLoadThrough(estate.environments.production.lbs.map((lb) => lb.frontend), work);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** Every server of the two hosts on every load balancer: `LB SERVER STATUS` of those not UP. */
const outOfRotation = async () => (await aftermath(estate, 'production', hosts())).outOfRotation;

/** Waits until HAProxy's own checks see every server of the two hosts UP (containers started by hand). */
async function allUp(): Promise<void> {
  for (let i = 0; i < 100 && (await outOfRotation()).length > 0; i++) await sleep(200);
  expect(await outOfRotation()).toEqual([]);
}

/** What the old process did: `docker run` of a tagged image, no labels; the master without an init, so it ignores SIGTERM. */
async function runByHand(version: string): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const host of hosts()) {
    const driver = await connectHost(sshOptions(estate, host));
    try {
      await driver.pull(`${repository()}:${version}`, registryAuth(estate));
    } finally {
      driver.dispose();
    }
    for (const [name, port, init] of [['demo', 50000, []], ['demo-backup', 50001, ['--init']]] as const) {
      const id = await execIn(nodeOf(estate, host), 'docker', 'run', '-d', ...init, '--restart', 'always', '--name', name, '-p', `${port}:3000`, `${repository()}:${version}`);
      ids.set(`${host}/${name}`, id.trim());
    }
  }
  return ids;
}

async function idsNow(): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const host of hosts()) for (const c of await containersOn(estate, host)) if (c.name === 'demo' || c.name === 'demo-backup') ids.set(`${host}/${c.name}`, c.id);
  return ids;
}

const asides = async () => (await Promise.all(hosts().map((h) => containersOn(estate, h)))).flat().filter((c) => c.name.endsWith('-adopted'));

beforeAll(async () => {
  ({ estate, github } = await startOnProduction([{ version: 'v8.0.0' }, { version: 'v8.1.0' }], 'v8.0.0'));
}, 600_000);

afterAll(() => leaveProduction(estate, github), 120_000);

describe('defect 1: a hand-run master that ignores SIGTERM, the job cancelled during its 30 s stop', () => {
  it('the post step waits out the stop and puts the very hand-run container back; no request fails', async () => {
    await clearHosts(estate, estate.environments.production.hosts);
    const handRun = await runByHand('v8.0.0');
    await allUp();
    const timers: NodeJS.Timeout[] = [];
    const [[struck, post], loads] = await underLoad(async () => {
      const struck = await strikeAtMasterStop(
        estate,
        hosts()[0]!,
        (onStart) => deploy({ version: 'v8.1.0', stopTimeout: 30, onStart }),
        (pid) => {
          // 1 s into the master's stop, the runner's sequence: SIGINT, SIGTERM 7.5 s later, SIGKILL 2.5 s after that.
          timers.push(
            setTimeout(() => process.kill(pid, 'SIGINT'), 1_000),
            setTimeout(() => process.kill(pid, 'SIGTERM'), 8_500),
            setTimeout(() => process.kill(pid, 'SIGKILL'), 11_000),
          );
        },
      ).finally(() => timers.forEach(clearTimeout));
      const post = await deploy({ version: 'v8.1.0', stopTimeout: 30, post: { state: struck.run.state } });
      // Under load until the engine's first stop is over for sure (30 s after it began): a post
      // step that put the dying master back would lose it, and requests, only then.
      await sleep(Math.max(0, struck.struckAt + 32_000 - Date.now()));
      return [struck, post] as const;
    });
    // Soft: every way the outcome differs is reported, not only the first.
    expect.soft(struck.struckAt).toBeGreaterThan(0);
    // Still waiting on the master's stop when the runner killed it.
    expect.soft(struck.run.code).toBeNull();
    expect.soft(post.code, post.log).toBe(0);
    expect.soft(post.log).toContain('finishing the set-aside of the adopted container the cut-short run was stopping');
    for (const load of loads) expect.soft(load.failures).toEqual([]);
    // The very hand-run containers serve again, nothing is left set aside, every server is UP.
    expect.soft(await idsNow()).toEqual(handRun);
    expect.soft(await versionsOn(estate, hosts())).toEqual(Object.fromEntries(hosts().map((h) => [h, { demo: ' running', 'demo-backup': ' running' }])));
    expect.soft(await asides()).toEqual([]);
    expect.soft(await aftermath(estate, 'production', hosts())).toEqual({ outOfRotation: [], mixed: [], lockLeft: false });
    const record = github.deployments.at(-1)!;
    expect.soft(record.statuses.at(-1)?.description).toMatch(/^Runner stopped mid-rollout; the post step settled [\d.]+ on the old release v8\.0\.0$/);
    // The next deploy adopts them as before.
    const next = await deploy({ version: 'v8.1.0' });
    expect(next.code, next.log).toBe(0);
    expect(await asides()).toEqual([]);
  }, 300_000);
});

describe('defect 6: an operator-held server, the runner SIGKILLed with no post step, the next run taking the lock over', () => {
  it('finishes what the dead run left and leaves the operator\'s server held; no request fails', async () => {
    const first = await deploy({ version: 'v8.0.0' });
    expect(first.code, first.log).toBe(0);
    const { lbs } = estate.environments.production;
    // The operator takes host 2's backup out on both load balancers before the deploy.
    for (const lb of lbs) await lbCommand(estate, lb, `set server ${lb.backend}/h2-backup state maint`);
    const dead = 4343;
    github.runs.set(dead, { status: 'in_progress' });
    try {
      const [[killed, next], loads] = await underLoad(async () => {
        const struck = await strikeAtMasterStop(
          estate,
          hosts()[0]!,
          (onStart) => deploy({ version: 'v8.1.0', runId: String(dead), onStart }),
          (pid) => process.kill(pid, 'SIGKILL'),
        );
        // No post step: the runner itself is gone. GitHub then reports the run ended.
        github.runs.set(dead, { status: 'completed', conclusion: 'failure' });
        const next = await deploy({ version: 'v8.1.0', extra: 'lock: { takeover: true }' });
        return [struck.run, next] as const;
      });
      // Soft: every way the outcome differs is reported, not only the first.
      expect.soft(killed.code).toBeNull();
      expect.soft(next.code, next.log).toBe(0);
      expect.soft(next.log).toMatch(/Taking over a stale deploy lock \(its run has ended\)/);
      expect.soft(next.log).toContain('The rollout of production was cut short: settling');
      expect.soft(next.log).toMatch(/:50000 is out of service \(.*\), taken out by the run cut short/);
      for (const load of loads) expect.soft(load.failures).toEqual([]);
      // Host 2's backup is still the operator's: MAINT on both load balancers; everything else UP.
      for (const lb of lbs) expect.soft(await serverStatus(estate, lb, 'h2-backup')).toMatch(/^MAINT/);
      expect.soft(await outOfRotation()).toEqual(lbs.map((lb) => `${lb.address} h2-backup MAINT`));
      expect.soft(await versionsOn(estate, hosts())).toEqual(Object.fromEntries(hosts().map((h) => [h, { demo: 'v8.1.0 running', 'demo-backup': 'v8.1.0 running' }])));
      expect.soft((await aftermath(estate, 'production', hosts())).lockLeft).toBe(false);
    } finally {
      for (const lb of lbs) await lbCommand(estate, lb, `set server ${lb.backend}/h2-backup state ready`);
    }
  }, 300_000);
});
