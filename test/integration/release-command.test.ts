// The release command on the estate's staging, run as the runner runs it, under steady load
// through HAProxy. A migration stand-in: the command appends the release it runs in to a file
// in a directory every host mounts (the estate's hosts share one file system, as the app's hosts
// share a database), which the app serves at /shared/ran. Then: a command exiting 1, a cancel
// (SIGINT) and a kill (SIGKILL, then the post step) while it runs: none changes a container.
import { readFileSync, rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearHosts, containersOn, runDeploy, type DeployRunOptions } from './support/deploy.js';
import { execIn, loadEstate, nodeOf, type Estate } from './support/estate.js';
import { startGitHub, type GitHubStandIn } from './support/github.js';
import { pushTestApp } from './support/images.js';
import { underLoad as underLoadOf } from './support/load.js';

const SHARED = '/var/lib/deploy-action-release-test';
let estate: Estate;
let github: GitHubStandIn;
let repository: string;
let hosts: string[];
let lockAt: string;
let frontend: string;

const releaseCommand = (command: string, more = '') => `release-command: { command: ${command}${more} }\n`;
function deploy(version: string, command: string, options: Partial<DeployRunOptions> = {}) {
  return runDeploy(estate, {
    environment: 'staging',
    version,
    repository,
    githubUrl: github.url,
    extra: releaseCommand(command),
    bothEnvironments: { staging: `container: { volumes: ["${SHARED}:/www/shared"] }\n`, production: '' },
    ...options,
  });
}
const underLoad = <T>(work: () => Promise<T>) => underLoadOf(`${frontend}/`, work);
/** Every container of the staging hosts: ID, name, state, release. */
const snapshot = async () => Promise.all(hosts.map(async (host) => (await containersOn(estate, host)).map((c) => `${c.id} ${c.name} ${c.state} ${c.version}`)));
const ran = () => {
  try {
    return readFileSync(`${SHARED}/ran`, 'utf8');
  } catch {
    return '';
  }
};

/** Calls `then` once the release command's container runs on the lock's host. */
function whenReleaseCommandRuns(then: () => void): (pid: number) => void {
  return () => {
    let done = false;
    const poll = setInterval(async () => {
      if (!done && (await containersOn(estate, lockAt)).some((c) => c.name === 'demo-release-command' && c.state === 'running')) {
        done = true;
        clearInterval(poll);
        then();
      }
    }, 100);
  };
}

beforeAll(async () => {
  estate = loadEstate();
  github = await startGitHub();
  repository = `${estate.registry.address}/clay/release-test`;
  hosts = estate.environments.staging.hosts.slice(0, 2);
  lockAt = [...hosts].sort()[0]!;
  frontend = estate.environments.staging.lb.frontend;
  for (const version of ['v24.0.0', 'v24.1.0', 'v24.2.0']) await pushTestApp(estate, { repository, version });
  await clearHosts(estate, hosts);
  rmSync(SHARED, { recursive: true, force: true });
  const first = await deploy('v24.0.0', '"true"');
  if (first.code !== 0) throw new Error(first.log);
  rmSync(`${SHARED}/ran`, { force: true });
}, 600_000);

afterAll(async () => {
  await github?.close();
  if (estate) await clearHosts(estate, hosts);
  rmSync(SHARED, { recursive: true, force: true });
}, 120_000);

describe('release-command', () => {
  it('runs once, in the new image, before any traffic moves; the new release serves what it wrote; no request fails', async () => {
    const [run, load] = await underLoad(() => deploy('v24.1.0', '[sh, -c, "cat /www/index.html >>/www/shared/ran; echo migrated"]'));
    expect(run.code, run.log).toBe(0);
    expect(load.failures).toEqual([]);
    // Exactly once, by the new image (its index.html), before the first container changed.
    expect(ran()).toBe('v24.1.0\n');
    expect(run.log).toContain(`[${lockAt}] migrated`);
    expect(run.log.indexOf(`[${lockAt}] migrated`)).toBeLessThan(run.log.indexOf('Deploy v24.1.0 to '));
    for (const host of hosts) expect(await execIn(nodeOf(estate, host), 'curl', '-sS', 'http://127.0.0.1:50000/shared/ran')).toBe('v24.1.0\n');
    const receipt = JSON.parse(run.outputs.receipt!) as { releaseCommand?: unknown };
    expect(receipt.releaseCommand).toMatchObject({ host: lockAt, command: ['sh', '-c', 'cat /www/index.html >>/www/shared/ran; echo migrated'], outcome: 'exited', exitCode: 0 });
    expect(run.summary).toContain('Release command of v24.1.0 in staging');
    expect((await containersOn(estate, lockAt)).map((c) => c.name)).not.toContain('demo-release-command');
  }, 300_000);

  it('a rollback does not run it, unless on-rollback is set', async () => {
    const back = await deploy('v24.1.0', '[sh, -c, "echo rollback >>/www/shared/ran"]', { command: 'rollback', rollbackTo: 'v24.0.0' });
    expect(back.code, back.log).toBe(0);
    expect(back.log).toContain('release-command: not run on a rollback');
    expect(ran()).toBe('v24.1.0\n');
    const forward = await deploy('v24.1.0', '[sh, -c, "echo forward >>/www/shared/ran"]');
    expect(forward.code, forward.log).toBe(0);
    expect(ran()).toBe('v24.1.0\nforward\n');
    const opted = await deploy('v24.1.0', '[sh, -c, "echo opted-in >>/www/shared/ran"]', {
      command: 'rollback',
      rollbackTo: 'v24.0.0',
      extra: releaseCommand('[sh, -c, "echo opted-in >>/www/shared/ran"]', ', on-rollback: true'),
    });
    expect(opted.code, opted.log).toBe(0);
    expect(ran()).toBe('v24.1.0\nforward\nopted-in\n');
    // Back on v24.1.0 for what follows.
    expect((await deploy('v24.1.0', '"true"')).code).toBe(0);
  }, 300_000);

  it('exiting 1 stops the deploy with no container changed anywhere, its last lines in the error', async () => {
    const before = await snapshot();
    const [run, load] = await underLoad(() => deploy('v24.2.0', '[sh, -c, "echo applying 0042_users; echo relation users does not exist >&2; exit 1"]'));
    expect(run.code).toBe(1);
    expect(load.failures).toEqual([]);
    // stdout and stderr reach Docker's log on two pipes: their lines come in either order.
    const error = run.log.split('\n').find((line) => line.startsWith('::error::release-command'));
    expect(error).toMatch(/^::error::release-command \["sh","-c",.*\] on 10\.231\.0\.\d+ exited with code 1; its last lines:%0A.*%0ANo container was changed in staging\.$/);
    expect(error).toContain('%0Aapplying 0042_users%0A');
    expect(error).toContain('%0Arelation users does not exist%0A');
    expect(await snapshot()).toEqual(before);
    expect(github.deployments.at(-1)?.statuses.at(-1)?.state).toBe('failure');
  }, 300_000);

  it('a cancel while it runs stops it and changes no container; the post step finds nothing left', async () => {
    const before = await snapshot();
    const cancelled = await deploy('v24.2.0', '[sleep, "300"]', {
      onStart: (pid) => whenReleaseCommandRuns(() => process.kill(pid, 'SIGINT'))(pid),
    });
    expect(cancelled.code).toBe(1);
    expect(cancelled.log).toContain('cancelled during the release command in staging: no container was changed');
    expect(await snapshot()).toEqual(before);
    const post = await deploy('v24.2.0', '[sleep, "300"]', { post: { state: cancelled.state } });
    expect(post.code, post.log).toBe(0);
    expect(await snapshot()).toEqual(before);
  }, 300_000);

  it('a kill while it runs leaves it to the post step, which stops it and releases the lock; no container changed', async () => {
    const before = await snapshot();
    const runId = '24242';
    const killed = await deploy('v24.2.0', '[sleep, "300"]', {
      runId,
      onStart: (pid) => whenReleaseCommandRuns(() => process.kill(pid, 'SIGKILL'))(pid),
    });
    expect(killed.code).toBeNull();
    const names = (await containersOn(estate, lockAt)).map((c) => c.name);
    expect(names).toEqual(expect.arrayContaining(['demo-release-command', 'demo-deploy-lock']));
    const post = await deploy('v24.2.0', '[sleep, "300"]', { runId, post: { state: killed.state } });
    expect(post.code, post.log).toBe(0);
    expect(post.log).toContain(`Stopped and removed demo-release-command on ${lockAt}, left by this run`);
    expect(post.log).toContain('Released the deploy lock demo-deploy-lock');
    expect(await snapshot()).toEqual(before);
    // The next deploy goes through.
    const next = await deploy('v24.2.0', '"true"');
    expect(next.code, next.log).toBe(0);
  }, 300_000);
});
