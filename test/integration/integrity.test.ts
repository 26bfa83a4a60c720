// Rollout integrity on the estate: hosts the old process deployed (containers started by hand)
// are adopted, drained and put back as they were; the plan is made from what the hosts run once
// the lock is held; a rollback goes only to a release the environment ran, at the digest it ran.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectHost } from '../../src/drivers/docker/host.js';
import { clearHosts, containersOn, runDeploy, versionsOn, type DeployRunOptions } from './support/deploy.js';
import { execIn, loadEstate, registryAuth, sshOptions, type Estate } from './support/estate.js';
import { startGitHub, type GitHubStandIn } from './support/github.js';
import { pushTestApp, type TestAppRelease } from './support/images.js';
import { underLoad as underLoadOf } from './support/load.js';

let estate: Estate;
let github: GitHubStandIn;
let hosts: string[];
const releases: Record<string, TestAppRelease> = {};
const REPOSITORY = () => `${estate.registry.address}/clay/demo`;

const everywhere = (version: string) => Object.fromEntries(hosts.map((h) => [h, { demo: `${version} running`, 'demo-backup': `${version} running` }]));
const underLoad = <T>(work: () => Promise<T>) => underLoadOf(`${estate.environments.staging.lb.frontend}/`, work);
const deploy = (options: Omit<DeployRunOptions, 'environment'>) => runDeploy(estate, { environment: 'staging', ...options });
const rollback = (to: string, options: Partial<DeployRunOptions> = {}) =>
  runDeploy(estate, { environment: 'staging', command: 'rollback', version: 'v0.0.0', rollbackTo: to, ...options });
const asides = async () => (await Promise.all(hosts.map((h) => containersOn(estate, h)))).flat().filter((c) => c.name.endsWith('-adopted'));

/** Every staging server READY, as an operator leaves them (earlier tests may have left one out). */
async function allServersReady(): Promise<void> {
  const { backend, socket } = estate.environments.staging.lb;
  const commands = hosts.flatMap((_, i) => [`set server ${backend}/h${i + 1}-master state ready`, `set server ${backend}/h${i + 1}-backup state ready`]);
  for (const command of commands) await execIn('lb-staging', 'sh', '-c', `echo "${command}" | socat - UNIX-CONNECT:${socket}`);
}

/** What the old process did: `docker run` of a tagged image, master and backup, no labels. */
async function runByHand(version: string): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const [i, host] of hosts.entries()) {
    const driver = await connectHost(sshOptions(estate, host));
    try {
      await driver.pull(`${REPOSITORY()}:${version}`, registryAuth(estate));
    } finally {
      driver.dispose();
    }
    for (const [name, port] of [['demo', 50000], ['demo-backup', 50001]] as const) {
      const id = await execIn(`stg${i + 1}`, 'docker', 'run', '-d', '--init', '--restart', 'always', '--name', name, '-p', `${port}:3000`, `${REPOSITORY()}:${version}`);
      ids.set(`${host}/${name}`, id.trim());
    }
  }
  return ids;
}

async function idsNow(): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  for (const host of hosts) for (const c of await containersOn(estate, host)) if (c.name === 'demo' || c.name === 'demo-backup') ids.set(`${host}/${c.name}`, c.id);
  return ids;
}

async function serving(version: string, seconds = 30): Promise<void> {
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const answer = await fetch(`${estate.environments.staging.lb.frontend}/`).then((r) => (r.ok ? r.text() : ''), () => '');
    if (answer.includes(version)) return;
    if (Date.now() > deadline) throw new Error(`the site does not serve ${version} after ${seconds}s: ${answer}`);
    await new Promise((r) => setTimeout(r, 500));
  }
}

beforeAll(async () => {
  estate = loadEstate();
  hosts = estate.environments.staging.hosts.slice(0, 2);
  github = await startGitHub();
  for (const [version, broken] of [['v0.9.0', false], ['v3.0.0', false], ['v3.1.0', false], ['v3.2.0', false], ['v3.4.0', true], ['v3.9.0', false]] as const) {
    releases[version] = await pushTestApp(estate, { version, broken });
  }
  await clearHosts(estate, estate.environments.staging.hosts);
  await allServersReady();
}, 600_000);

// Every request the action sent and every answer the stand-in gave was what GitHub's description allows.
afterEach(() => {
  expect(github?.violations.splice(0) ?? []).toEqual([]);
});

afterAll(async () => {
  await github?.close();
  // Other tests look for free server ports on these hosts.
  if (estate) await clearHosts(estate, hosts);
}, 120_000);

describe('adopting hosts the old process deployed', () => {
  it('a broken first release is rolled back onto the very hand-run containers, with zero failed requests', async () => {
    const handRun = await runByHand('v0.9.0');
    await serving('v0.9.0');
    const [run, load] = await underLoad(() => deploy({ version: 'v3.4.0' }));
    expect(run.code, run.log).toBe(1);
    expect(run.log).toContain('started without deploy-action: adopting it');
    expect(load.failures).toEqual([]);
    expect(load.versions['v0.9.0']).toBeGreaterThan(0);
    // The same containers, running again, still without labels; nothing left set aside.
    expect(await idsNow()).toEqual(handRun);
    expect(await versionsOn(estate, hosts)).toEqual(Object.fromEntries(hosts.map((h) => [h, { demo: ' running', 'demo-backup': ' running' }])));
    expect(await asides()).toEqual([]);
    await serving('v0.9.0');
  }, 300_000);

  it('the first good release replaces them under labels, and names what ran before', async () => {
    const [run, load] = await underLoad(() => deploy({ version: 'v3.0.0' }));
    expect(run.code, run.log).toBe(0);
    expect(load.failures).toEqual([]);
    expect(await versionsOn(estate, hosts)).toEqual(everywhere('v3.0.0'));
    expect(run.outputs['previous-version']).toBe('v0.9.0');
    expect(await asides()).toEqual([]);
  }, 300_000);
});

describe('one truth, read under the lock', () => {
  it('a rollback that waited for the lock plans from what the hosts run then, not from what it saw first', async () => {
    const lockHost = [...hosts].sort()[0]!;
    const [[forward, back], load] = await underLoad(async () => {
      const first = deploy({ version: 'v3.1.0', extra: 'lock: { wait: 120 }' });
      // Once the deploy holds the lock, a rollback to v3.0.0 starts: it sees v3.0.0 running.
      for (let i = 0; !(await containersOn(estate, lockHost)).some((c) => c.name === 'demo-deploy-lock'); i++) {
        if (i > 600) throw new Error('the deploy never took the lock');
        await new Promise((r) => setTimeout(r, 50));
      }
      const second = rollback('v3.0.0', { extra: 'lock: { wait: 120 }' });
      return Promise.all([first, second]);
    });
    expect(forward.code, forward.log).toBe(0);
    expect(back.code, back.log).toBe(0);
    expect(back.log).toContain('Waiting for the deploy lock');
    // What it replaced is what the deploy put there, not what it saw before the lock.
    expect(back.outputs['previous-version']).toBe('v3.1.0');
    expect(await versionsOn(estate, hosts)).toEqual(everywhere('v3.0.0'));
    expect(load.failures).toEqual([]);
  }, 300_000);
});

describe('rollback integrity', () => {
  it('goes to a release the environment ran, at the digest it ran, and refuses a tag pushed again since', async () => {
    expect((await deploy({ version: 'v3.2.0', githubUrl: github.url })).code).toBe(0);
    expect((await deploy({ version: 'v3.1.0', githubUrl: github.url })).code).toBe(0);
    const ran = releases['v3.2.0']!.digest;
    const moved = await pushTestApp(estate, { version: 'v3.2.0', startDelaySeconds: 1 });
    expect(moved.digest).not.toBe(ran);
    const before = await idsNow();
    const refused = await rollback('v3.2.0', { githubUrl: github.url });
    expect(refused.code).toBe(1);
    expect(refused.log).toContain(`now resolves to ${moved.digest}, not the digest v3.2.0 ran at in staging ${ran}: the tag moved since`);
    expect(await idsNow()).toEqual(before);
    // Put the tag back: the same rollback goes through, at the digest that ran.
    await pushTestApp(estate, { version: 'v3.2.0' });
    const [run, load] = await underLoad(() => rollback('v3.2.0', { githubUrl: github.url }));
    expect(run.code, run.log).toBe(0);
    expect(run.outputs.digest).toBe(ran);
    expect(load.failures).toEqual([]);
  }, 600_000);

  it('refuses a tag the environment never ran, unless told so, and then records it as such', async () => {
    const before = await idsNow();
    const refused = await rollback('v3.9.0', { githubUrl: github.url });
    expect(refused.code).toBe(1);
    expect(refused.log).toContain('version: v3.9.0 never ran in staging');
    expect(await idsNow()).toEqual(before);
    const run = await rollback('v3.9.0', { githubUrl: github.url, allowNeverDeployed: true });
    expect(run.code, run.log).toBe(0);
    expect(run.log).toContain('v3.9.0, which staging NEVER ran (allow-never-deployed: true)');
    expect(github.deployments.at(-1)).toMatchObject({ ref: 'v3.9.0', task: 'rollback', description: 'Rollback to v3.9.0 (never ran here: allow-never-deployed)' });
    expect(await versionsOn(estate, hosts)).toEqual(everywhere('v3.9.0'));
  }, 300_000);

  it('previous walks back through the containers history without GitHub, and stops where it ends', async () => {
    // v3.9.0 was put on top of v3.2.0 (rolled back to), whose history went back to v3.0.0.
    const run = await rollback('previous');
    expect(run.code, run.log).toBe(0);
    expect(run.log).toContain("Target: previous: v3.2.0, the release before v3.9.0 in the hosts' history (the deploy-action.history label)");
    expect(await versionsOn(estate, hosts)).toEqual(everywhere('v3.2.0'));
  }, 300_000);
});
