// command: deploy on the estate, run as the runner runs it, under steady traffic through HAProxy.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { APP_SECRET, clearHosts, containersOn, runDeploy, versionsOn } from './support/deploy.js';
import { connectHost } from '../../src/drivers/docker/host.js';
import { execIn, loadEstate, nodeOf, sshOptions, type Estate } from './support/estate.js';
import { startGitHub, type GitHubStandIn } from './support/github.js';
import { pushTestApp, type TestAppRelease } from './support/images.js';
import { killWhen } from './support/faults.js';
import { underLoad as underLoadOf } from './support/load.js';

let estate: Estate;
let github: GitHubStandIn;
let hosts: string[];
let frontend: string;
const releases: Record<string, TestAppRelease> = {};

const both = (version: string) => ({ demo: `${version} running`, 'demo-backup': `${version} running` });
const everywhere = (version: string) => Object.fromEntries(hosts.map((h) => [h, both(version)]));

/** Runs `work` under steady load through the staging frontend. */
const underLoad = <T>(work: () => Promise<T>, waitUntilServing = false) => underLoadOf(`${frontend}/`, work, waitUntilServing);

beforeAll(async () => {
  estate = loadEstate();
  hosts = estate.environments.staging.hosts.slice(0, 2);
  frontend = estate.environments.staging.lb.frontend;
  github = await startGitHub();
  for (const [version, broken] of [['v1.0.0', false], ['v1.1.0', false], ['v1.2.0', true]] as const) {
    releases[version] = await pushTestApp(estate, { version, broken });
  }
  await clearHosts(estate, estate.environments.staging.hosts);
}, 600_000);

// Every request the action sent and every answer the stand-in gave was what GitHub's description allows.
afterEach(() => {
  expect(github?.violations.splice(0) ?? []).toEqual([]);
});

afterAll(async () => {
  await github?.close();
  // The drivers tests look for free server ports on these hosts, whichever file runs first.
  if (estate) await clearHosts(estate, estate.environments.staging.hosts);
}, 120_000);

describe('command: deploy, backup-first behind HAProxy', () => {
  it('(1) first deploy onto empty hosts: zero failed requests once the site answers', async () => {
    const [run, load] = await underLoad(() => runDeploy(estate, { environment: 'staging', version: 'v1.0.0', digest: releases['v1.0.0']!.digest, githubUrl: github.url }), true);
    expect(run.code, run.log).toBe(0);
    expect(await versionsOn(estate, hosts)).toEqual(everywhere('v1.0.0'));
    expect(load.failures).toEqual([]);
    expect(load.ok).toBeGreaterThan(100);
    expect(load.versions['v1.0.0']).toBeGreaterThan(0);
    expect(run.outputs).toMatchObject({ version: 'v1.0.0', digest: releases['v1.0.0']!.digest, 'previous-version': '' });
  }, 300_000);

  it('(2) v1.0.0 → v1.1.0 on 2 hosts: zero failed requests, the served version moves', async () => {
    const [run, load] = await underLoad(() => runDeploy(estate, { environment: 'staging', version: 'v1.1.0', githubUrl: github.url }));
    expect(run.code, run.log).toBe(0);
    expect(load.failures).toEqual([]);
    expect(load.sent).toBeGreaterThan(300);
    expect(load.versions['v1.0.0']).toBeGreaterThan(0);
    expect(load.versions['v1.1.0']).toBeGreaterThan(0);
    expect(await versionsOn(estate, hosts)).toEqual(everywhere('v1.1.0'));
    expect(run.outputs['previous-version']).toBe('v1.0.0');
    expect(run.outputs['image-ref']).toBe(releases['v1.1.0']!.ref);
    // The deploy's own account of itself: folded phases, a summary row per host.
    expect(run.log).toContain('::group::Pre-flight');
    expect(run.log).toMatch(/drained/);
    for (const host of hosts) expect(run.summary).toContain(`<td>${host}</td><td>v1.0.0 → v1.1.0</td>`);
  }, 300_000);

  it('runs containers with init, the restart policy, env, labels and secrets, and keeps secrets out of the log and summary', async () => {
    const inspect = JSON.parse(
      await execIn('stg1', 'docker', 'inspect', 'demo'),
    ) as [{ HostConfig: { Init: boolean; RestartPolicy: { Name: string } }; Config: { Env: string[]; Labels: Record<string, string>; Image: string } }];
    const [container] = inspect;
    expect(container.HostConfig.Init).toBe(true);
    expect(container.HostConfig.RestartPolicy.Name).toBe('on-failure');
    expect(container.Config.Env).toContain('GREETING=hello');
    expect(container.Config.Env).toContain(`APP_SECRET=${APP_SECRET}`);
    expect(container.Config.Image).toBe(releases['v1.1.0']!.ref);
    expect(container.Config.Labels).toMatchObject({
      'deploy-action.app': 'demo',
      'deploy-action.role': 'master',
      'deploy-action.environment': 'staging',
      'deploy-action.version': 'v1.1.0',
      'deploy-action.digest': releases['v1.1.0']!.digest,
    });
    const again = await runDeploy(estate, { environment: 'staging', version: 'v1.1.0', githubUrl: github.url });
    expect(again.code, again.log).toBe(0);
    for (const text of [again.log, again.summary]) {
      expect(text).not.toContain(APP_SECRET);
      expect(text).not.toContain(estate.registry.password);
      expect(text).not.toContain(readFileSync(estate.sshKey, 'utf8').split('\n')[1]!);
    }
  }, 300_000);

  it('(3) a release whose health check fails is rolled back on every host, with zero failed requests', async () => {
    const before = await Promise.all(hosts.map((h) => containersOn(estate, h)));
    const [run, load] = await underLoad(() => runDeploy(estate, { environment: 'staging', version: 'v1.2.0', githubUrl: github.url }));
    expect(run.code).toBe(1);
    expect(run.log).toMatch(new RegExp(`::error::v1\\.2\\.0 to staging failed on ${hosts[0]!.replace(/\./g, '\\.')}: master did not become healthy`));
    expect(run.log).toContain('every host touched was rolled back');
    expect(run.log).toMatch(/last 30 log lines of demo/);
    expect(run.log).toMatch(/Docker health checks of demo \(status unhealthy\)/);
    expect(load.failures).toEqual([]);
    expect(load.versions['v1.2.0'] ?? 0).toBe(0);
    expect(await versionsOn(estate, hosts)).toEqual(everywhere('v1.1.0'));
    // The second host was never touched: same containers as before.
    expect((await containersOn(estate, hosts[1]!)).map((c) => c.id)).toEqual(before[1]!.map((c) => c.id));
    expect(run.summary).toContain('Failed on');
  }, 300_000);

  it('with ssh.max-connections: 1, one connection to the hosts at a time, zero failed requests there and back', async () => {
    const dir = process.env.ESTATE_DIR || '/var/lib/deploy-action-estate';
    const logins = () =>
      hosts.reduce((n, h) => n + readFileSync(join(dir, `hosts/dae-${nodeOf(estate, h)}`, 'sshd.log'), 'utf8').split('\n').filter((l) => l.includes('Accepted publickey for deploy')).length, 0);
    for (const version of ['v1.0.0', 'v1.1.0']) {
      const before = logins();
      const [run, load] = await underLoad(() => runDeploy(estate, { environment: 'staging', version, githubUrl: github.url, ssh: 'max-connections: 1' }));
      expect(run.code, run.log).toBe(0);
      expect(load.failures).toEqual([]);
      expect(await versionsOn(estate, hosts)).toEqual(everywhere(version));
      // Held for the whole run, it would be one login per host; taking turns, the hosts log in again.
      expect(logins() - before).toBeGreaterThan(hosts.length);
    }
  }, 300_000);
});

describe('command: deploy refuses before any container changes', () => {
  const untouched = async (run: () => Promise<{ code: number | null; log: string }>, message: RegExp) => {
    const before = await Promise.all(hosts.map((h) => containersOn(estate, h)));
    const result = await run();
    expect(result.code).toBe(1);
    expect(result.log).toMatch(message);
    expect(await Promise.all(hosts.map((h) => containersOn(estate, h)))).toEqual(before);
  };

  it('a changed host key, naming the host and the fingerprint seen', async () => {
    const knownHosts = readFileSync(estate.knownHosts, 'utf8').replace(
      new RegExp(`^${hosts[1]!.replace(/\./g, '\\.')} (\\S+) \\S+$`, 'm'),
      `${hosts[1]} $1 ${readFileSync(estate.knownHosts, 'utf8').split('\n')[0]!.split(' ')[2]}`,
    );
    await untouched(
      () => runDeploy(estate, { environment: 'staging', version: 'v1.1.0', knownHosts }),
      new RegExp(`${hosts[1]!.replace(/\./g, '\\.')}.*SHA256:[A-Za-z0-9+/]{43}`),
    );
  }, 120_000);

  it('an unreachable host', async () => {
    await untouched(
      () => runDeploy(estate, { environment: 'staging', version: 'v1.1.0', hosts: [...hosts, '10.231.0.19'] }),
      /cannot reach the staging environment:[\s\S]*10\.231\.0\.19/,
    );
  }, 120_000);

  it('a wrong registry password', async () => {
    await untouched(
      () => runDeploy(estate, { environment: 'staging', version: 'v1.1.0', registryPassword: 'not-the-password' }),
      /10\.231\.0\.2:5000\/clay\/demo:v1\.1\.0/,
    );
  }, 120_000);

  it('a tag missing from the registry', async () => {
    await untouched(
      () => runDeploy(estate, { environment: 'staging', version: 'v9.9.9' }),
      /10\.231\.0\.2:5000\/clay\/demo:v9\.9\.9 is not in the registry/,
    );
  }, 120_000);

  it('a digest the tag no longer points to', async () => {
    await untouched(
      () => runDeploy(estate, { environment: 'staging', version: 'v1.1.0', digest: releases['v1.0.0']!.digest }),
      /now resolves to sha256:[a-f0-9]{64}, not the digest input/,
    );
  }, 120_000);
});

describe('a deploy killed mid-way', () => {
  it('leaves the site serving; the next deploy reports the stale lock and proceeds with lock.takeover', async () => {
    const runId = '4242';
    github.runs.set(4242, { status: 'in_progress' });
    let killed = () => false;
    const [killedRun, load] = await underLoad(async () => {
      const pending = runDeploy(estate, {
        environment: 'staging',
        version: 'v1.0.0',
        runId,
        githubUrl: github.url,
        onStart: (pid) => {
          // Kill once it is replacing the first master (the lock is taken by then).
          killed = killWhen(
            pid,
            async () => {
              const names = (await containersOn(estate, hosts[0]!)).map((c) => `${c.name} ${c.version}`);
              return names.includes('demo v1.0.0') || names.every((n) => !n.startsWith('demo '));
            },
            100,
          );
        },
      });
      return pending;
    });
    expect(killed()).toBe(true);
    expect(killedRun.code).toBeNull();
    expect(load.failures).toEqual([]);
    github.runs.set(4242, { status: 'completed', conclusion: 'cancelled' });

    const refused = await runDeploy(estate, { environment: 'staging', version: 'v1.0.0', githubUrl: github.url });
    expect(refused.code).toBe(1);
    expect(refused.log).toMatch(/the deploy lock is stale \(its run has ended\): held by octocat \(release run 4242/);
    expect(refused.log).toContain('lock.takeover: true');

    const [resumed, load2] = await underLoad(() =>
      runDeploy(estate, { environment: 'staging', version: 'v1.0.0', githubUrl: github.url, extra: 'lock: { takeover: true }' }),
    );
    expect(resumed.code, resumed.log).toBe(0);
    expect(resumed.log).toMatch(/Taking over a stale deploy lock/);
    expect(load2.failures).toEqual([]);
    expect(await versionsOn(estate, hosts)).toEqual(everywhere('v1.0.0'));
    expect((await containersOn(estate, hosts[0]!)).map((c) => c.name)).not.toContain('demo-deploy-lock');
  }, 300_000);

  it('the post step of a cancelled run releases its lock, and only its own', async () => {
    const host = await connectHost(sshOptions(estate, hosts[0]!));
    try {
      const lock = { holder: 'octocat (release run 5151, attempt 1)', runUrl: '', runId: '5151', attempt: '1', version: 'v1.0.0', since: new Date() };
      expect(await host.acquireLock('demo-deploy-lock', lock, releases['v1.0.0']!.ref)).toEqual({ acquired: true });
      const post = (runId: string) => runDeploy(estate, {
        environment: 'staging',
        version: 'v1.0.0',
        runId,
        post: { state: { post: 'true', 'deploy-lock': JSON.stringify({ host: hosts[0], name: 'demo-deploy-lock', runId, attempt: '1' }) } },
      });
      const other = await post('6161');
      expect(other.code, other.log).toBe(0);
      expect(other.log).toContain('No deploy lock of this run was left');
      expect((await containersOn(estate, hosts[0]!)).map((c) => c.name)).toContain('demo-deploy-lock');
      const own = await post('5151');
      expect(own.code, own.log).toBe(0);
      expect(own.log).toContain(`Released the deploy lock demo-deploy-lock on ${hosts[0]} left by this run`);
      expect((await containersOn(estate, hosts[0]!)).map((c) => c.name)).not.toContain('demo-deploy-lock');
    } finally {
      host.dispose();
    }
  }, 120_000);
});

describe('command: deploy without a haproxy section (the seed\'s way)', () => {
  it('(4) still finishes on the new release, warning that requests may fail', async () => {
    const [run, load] = await underLoad(() => runDeploy(estate, { environment: 'staging', version: 'v1.1.0', withoutHaproxy: true }));
    expect(run.code, run.log).toBe(0);
    expect(run.log).toContain('No haproxy section');
    expect(await versionsOn(estate, hosts)).toEqual(everywhere('v1.1.0'));
    expect(load.versions['v1.1.0']).toBeGreaterThan(0);
    console.log(`without haproxy: ${load.failed} of ${load.sent} requests failed`);
  }, 300_000);
});

describe('command: plan and haproxy-config', () => {
  it('plan prints what a deploy would do and changes nothing', async () => {
    const before = await Promise.all(hosts.map((h) => containersOn(estate, h)));
    const run = await runDeploy(estate, { command: 'plan', environment: 'staging', version: 'v1.0.0' });
    expect(run.code, run.log).toBe(0);
    expect(run.outputs.plan).toContain(`  ${hosts[0]} (master v1.1.0, backup v1.1.0)`);
    expect(run.outputs.plan).toContain('    - master: v1.1.0 → v1.0.0');
    expect(await Promise.all(hosts.map((h) => containersOn(estate, h)))).toEqual(before);
  }, 120_000);

  it('haproxy-config prints a configuration HAProxy itself accepts, with every host\'s servers', async () => {
    const run = await runDeploy(estate, { command: 'haproxy-config', environment: 'staging', version: 'v1.0.0' });
    expect(run.code, run.log).toBe(0);
    const config = run.outputs['haproxy-config']!;
    for (const host of hosts) {
      expect(config).toContain(`server ${host}-master ${host}:50000`);
      expect(config).toContain(`server ${host}-backup ${host}:50001 backup`);
    }
    const file = join(mkdtempSync(join(tmpdir(), 'haproxy-')), 'haproxy.cfg');
    writeFileSync(file, config);
    const { stdout, stderr } = await promisify(execFile)('haproxy', ['-c', '-f', file]);
    expect(`${stdout}${stderr}`).toMatch(/Configuration file is valid/);
  }, 60_000);
});
