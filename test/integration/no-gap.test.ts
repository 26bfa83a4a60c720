// rollout.procedure: no-gap on the estate (production: 2 hosts behind two HAProxy peers whose
// backend has the spare servers command: haproxy-config prints), under load through both load
// balancers, every host at once (max-parallel: 100%): an upgrade, a broken release rolled back,
// both load balancers reloaded in the middle, a cancel in the middle, a kill in the middle (then its post step). Each ends with 0 failed
// requests (but for what a reload itself closes), each host's roles on one release, each role's
// server of the slot its container runs in UP on both load balancers (a backup behind every
// master) and the other slot's MAINT, no APP-old left, no lock.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execIn, lbCommand, nodeOf, serverStatus, watchEvents, type Estate } from './support/estate.js';
import { containersOn, runDeploy, versionsOn, type DeployRunOptions } from './support/deploy.js';
import { cancelAsRunner, reloadLoadBalancers } from './support/faults.js';
import type { GitHubStandIn } from './support/github.js';
import { underLoadThrough, type LoadReport } from './support/load.js';
import { leaveProduction, startOnProduction } from './support/suite.js';

let estate: Estate;
let github: GitHubStandIn;
const production = () => estate.environments.production;
const hosts = () => production().hosts.slice(0, 2);
const NO_GAP = 'rollout: { procedure: no-gap }\nmax-parallel: 100%\n';
const deploy = (options: Omit<DeployRunOptions, 'environment'>) =>
  runDeploy(estate, { environment: 'production', githubUrl: github.url, extra: NO_GAP, ...options });
const underLoad = <T>(work: () => Promise<T>) => underLoadThrough(production().lbs.map((lb) => lb.frontend), work);
const bothRun = (version: string) => Object.fromEntries(hosts().map((h) => [h, { demo: `${version} running`, 'demo-backup': `${version} running` }]));

/** The slot label of each role's container on a host (b, or a when absent). */
async function slotsOn(host: string): Promise<Record<'master' | 'backup', 'a' | 'b'>> {
  const out = await execIn(nodeOf(estate, host), 'docker', 'inspect', '-f', '{{index .Config.Labels "deploy-action.slot"}}', 'demo', 'demo-backup');
  const [master, backup] = out.split('\n').map((line) => (line.trim() === 'b' ? 'b' : 'a'));
  return { master: master!, backup: backup! };
}

/** Every way the estate differs from clean after a no-gap deploy, as text (empty: clean). */
async function problems(): Promise<string[]> {
  const found: string[] = [];
  for (const [i, host] of hosts().entries()) {
    const slots = await slotsOn(host);
    for (const role of ['master', 'backup'] as const) {
      const [active, idle] = slots[role] === 'b' ? [`h${i + 1}-${role}-spare`, `h${i + 1}-${role}`] : [`h${i + 1}-${role}`, `h${i + 1}-${role}-spare`];
      for (const lb of production().lbs) {
        const up = await serverStatus(estate, lb, active);
        if (!up.startsWith('UP')) found.push(`${lb.address} ${active} ${up}`);
        const out = await serverStatus(estate, lb, idle);
        if (!out.startsWith('MAINT')) found.push(`${lb.address} ${idle} ${out}`);
      }
    }
    const left = (await containersOn(estate, host)).map((c) => c.name).filter((name) => name.endsWith('-old') || name === 'demo-deploy-lock');
    if (left.length > 0) found.push(`${host}: ${left.join(', ')} left`);
  }
  return found;
}

/** Failed requests, but a reload's own: the old process closing a kept-alive connection once per client (faults-network.test.ts). */
function failedBut(load: LoadReport, reload?: { began: number; ended: number }) {
  const closedOnce = new Set<number>();
  return load.errors.filter((failure) => {
    const theReloads =
      reload !== undefined &&
      failure.kind === 'closed-before-response' &&
      failure.reusedSocket &&
      failure.at >= reload.began &&
      failure.at <= reload.ended + 2_000 &&
      !closedOnce.has(failure.client);
    if (theReloads) closedOnce.add(failure.client);
    return !theReloads;
  });
}

/** Runs a deploy and calls `then` with its pid when host 1's master steps aside (renamed demo-old). */
async function atFirstSwitch(options: Omit<DeployRunOptions, 'environment'>, then: (pid: number) => unknown) {
  let struckAt = 0;
  let stop = () => {};
  const run = await deploy({
    ...options,
    onStart: (pid) => {
      const watch = watchEvents(estate, hosts()[0]!, 'rename', (name) => {
        if (struckAt === 0 && name === 'demo-old') {
          struckAt = Date.now();
          void then(pid);
        }
      });
      stop = () => watch.stop();
    },
  }).finally(() => stop());
  return { run, struckAt };
}

/** What host 1 runs now, and the other of v24.1.0 and v24.2.0: each later test deploys the other. */
async function releases(): Promise<{ running: string; other: string }> {
  const running = (await versionsOn(estate, [hosts()[0]!]))[hosts()[0]!]!.demo!.split(' ')[0]!;
  return { running, other: running === 'v24.2.0' ? 'v24.1.0' : 'v24.2.0' };
}

beforeAll(async () => {
  ({ estate, github } = await startOnProduction(
    [{ version: 'v24.0.0' }, { version: 'v24.1.0' }, { version: 'v24.2.0' }, { version: 'v24.3.0', broken: true }],
    'v24.0.0',
  ));
}, 600_000);

afterAll(async () => {
  await leaveProduction(estate, github);
  // The next test file starts with the spare servers as the configuration has them.
  for (const lb of production()?.lbs ?? []) {
    for (const [i] of hosts().entries()) {
      for (const role of ['master', 'backup']) await lbCommand(estate, lb, `set server ${lb.backend}/h${i + 1}-${role}-spare state maint`);
    }
  }
}, 120_000);

describe('no-gap under load through both load balancers', () => {
  it('upgrades every host at once: each new container serves from its spare port before the old one stops', async () => {
    const [run, loads] = await underLoad(() => deploy({ version: 'v24.1.0' }));
    expect(run.code, run.log).toBe(0);
    expect(run.log).toContain('without a gap (');
    for (const load of loads) expect(load.errors).toEqual([]);
    expect(await versionsOn(estate, hosts())).toEqual(bothRun('v24.1.0'));
    for (const host of hosts()) expect(await slotsOn(host)).toEqual({ master: 'b', backup: 'b' });
    expect(await problems()).toEqual([]);
  }, 300_000);

  it('a broken release never serves: every host goes back, without a gap', async () => {
    const [run, loads] = await underLoad(() => deploy({ version: 'v24.3.0' }));
    expect(run.code).toBe(1);
    expect(run.log).toContain('did not become healthy');
    for (const load of loads) expect(load.errors).toEqual([]);
    expect(await versionsOn(estate, hosts())).toEqual(bothRun('v24.1.0'));
    expect(await problems()).toEqual([]);
  }, 300_000);

  it('both load balancers reloaded as host 1\'s master switches: the deploy succeeds or rolls back cleanly, every slot right', async () => {
    const { running, other } = await releases();
    let reload: { began: number; ended: number } | undefined;
    const [{ run, struckAt }, loads] = await underLoad(() =>
      atFirstSwitch({ version: other }, async () => {
        reload = await reloadLoadBalancers('production');
      }),
    );
    expect(struckAt).toBeGreaterThan(0);
    expect(reload).toBeDefined();
    // A command that reaches the old process as it stops is refused ("Proxy is disabled", seen
    // here once in five runs): the step fails and every host is rolled back, without a gap
    // too. Otherwise the slots' states survive the reload through the state file, and what a
    // command lost to it is redone (ready sent again, the new server checked UP before the old
    // container stops): the deploy succeeds. Both end clean.
    if (run.code === 0) {
      expect(await versionsOn(estate, hosts())).toEqual(bothRun(other));
    } else {
      expect(run.log).toContain('every host touched was rolled back to the release it ran before');
      expect(await versionsOn(estate, hosts())).toEqual(bothRun(running));
    }
    for (const load of loads) expect(failedBut(load, reload)).toEqual([]);
    expect(await problems()).toEqual([]);
  }, 300_000);

  it('cancelled as host 1\'s master switches: the switch is undone or finished, the post step leaves nothing behind', async () => {
    const { running, other } = await releases();
    let clearSignals = () => {};
    const [[{ run, struckAt }, post], loads] = await underLoad(async () => {
      const struck = await atFirstSwitch({ version: other }, (pid) => {
        clearSignals = cancelAsRunner(pid);
      }).finally(() => clearSignals());
      const post = await deploy({ version: other, post: { state: struck.run.state } });
      return [struck, post] as const;
    });
    expect(struckAt).toBeGreaterThan(0);
    expect(run.code).toBe(1);
    expect(run.log).toContain('SIGINT: the job is being cancelled');
    expect(post.code, post.log).toBe(0);
    for (const load of loads) expect(load.errors).toEqual([]);
    // Each host on one release in both roles (host 1 back on what it ran: its switch was undone).
    const versions = await versionsOn(estate, hosts());
    expect(versions[hosts()[0]!]).toEqual({ demo: `${running} running`, 'demo-backup': `${running} running` });
    for (const host of hosts()) expect(versions[host]!.demo).toBe(versions[host]!['demo-backup']);
    expect(await problems()).toEqual([]);
  }, 300_000);

  it('killed (SIGKILL) as host 1\'s master switches: the post step finishes or undoes each switch from what the hosts and load balancers say, no APP-old left', async () => {
    const { running, other } = await releases();
    const [[{ run, struckAt }, post], loads] = await underLoad(async () => {
      const struck = await atFirstSwitch({ version: other }, (pid) => process.kill(pid, 'SIGKILL'));
      const post = await deploy({ version: other, post: { state: struck.run.state } });
      return [struck, post] as const;
    });
    expect(struckAt).toBeGreaterThan(0);
    expect(run.code).not.toBe(0);
    expect(post.code, post.log).toBe(0);
    expect(post.log).toContain("the cut-short run's switch");
    for (const load of loads) expect(load.errors).toEqual([]);
    const versions = await versionsOn(estate, hosts());
    for (const host of hosts()) {
      expect(versions[host]!.demo).toBe(versions[host]!['demo-backup']);
      expect([`${running} running`, `${other} running`]).toContain(versions[host]!.demo);
    }
    expect(await problems()).toEqual([]);
  }, 300_000);

  it('an APP-old a killed switch left: command: check reports it (and each spare server), the next no-gap deploy stops on it in pre-flight, nothing changed', async () => {
    const host = hosts()[0]!;
    const before = await versionsOn(estate, hosts());
    const image = (await containersOn(estate, host)).find((c) => c.name === 'demo')!.image;
    await execIn(nodeOf(estate, host), 'docker', 'create', '--name', 'demo-old', image);
    try {
      const checked = await deploy({ command: 'check', version: 'v24.0.0' });
      expect(checked.code, checked.log).toBe(1);
      // The table's rows only (not the error lines, which list every failure).
      const rowsOf = (where: string, check: string) => checked.log.split('\n').filter((line) => /^(ok|FAIL|warn) /.test(line) && line.includes(` ${where} `) && line.includes(check));
      expect(rowsOf(host, 'master switch finished')[0], checked.log).toMatch(/^FAIL .*demo-old exists \(created\): a no-gap deploy was cut short/);
      expect(rowsOf(hosts()[1]!, 'master switch finished'), checked.log).toEqual([]);
      for (const lb of production().lbs) {
        for (const h of hosts()) {
          // Both slots' servers pass, whichever serves (the idle one in MAINT, unchecked by HAProxy).
          for (const check of [`master server for ${h}:50000`, `backup server for ${h}:50001`, `master spare server for ${h}:50002`, `backup spare server for ${h}:50003`]) {
            expect(rowsOf(lb.address, check)[0], `${lb.address} ${check}\n${checked.log}`).toMatch(/^ok /);
          }
        }
      }
      expect(await versionsOn(estate, hosts())).toEqual(before);
      const run = await deploy({ version: 'v24.0.0' });
      expect(run.code).toBe(1);
      expect(run.log).toContain(`${host}: demo-old exists (created): a no-gap deploy was cut short while it switched the master`);
      expect(await versionsOn(estate, hosts())).toEqual(before);
    } finally {
      await execIn(nodeOf(estate, host), 'docker', 'rm', '-f', 'demo-old');
    }
    expect(await problems()).toEqual([]);
  }, 300_000);
});
