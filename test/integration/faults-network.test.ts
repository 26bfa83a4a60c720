// Faults from around the action, caused for real during a production deploy (2 hosts behind two
// HAProxy peers) under load through both load balancers: HAProxy reloaded, a host or a load
// balancer cut off the network, requests longer than a drain, two deploys at once. Each ends,
// after the action (and its post step) exited, with every server UP on both load balancers
// (but a lost host's), every reachable host on one release in both roles, no lock, the
// deployment record marked, and no failed request but those the fault itself explains.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { runDeploy, versionsOn, type DeployRunOptions } from './support/deploy.js';
import { serverStat, watchKills, type Estate, type KillWatch } from './support/estate.js';
import { aftermath, backInRotation, reloadLoadBalancers, setLink, strikeAtMasterStop } from './support/faults.js';
import type { GitHubStandIn } from './support/github.js';
import { underLoadThrough, type LoadFailure, type LoadReport } from './support/load.js';
import { leaveProduction, startOnProduction } from './support/suite.js';

let estate: Estate;
let github: GitHubStandIn;
const production = () => estate.environments.production;
const hosts = () => production().hosts.slice(0, 2);
const host1 = () => hosts()[0]!;
const host2 = () => hosts()[1]!;
const lb2 = () => production().lbs[1]!;
const deploy = (options: Omit<DeployRunOptions, 'environment'>) => runDeploy(estate, { environment: 'production', githubUrl: github.url, ...options });
const underLoad = <T>(work: () => Promise<T>) => underLoadThrough(production().lbs.map((lb) => lb.frontend), work);
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/** The deploy, with `strike` called when host 1's master begins to stop. */
const strikeAtFirstStop = (options: Omit<DeployRunOptions, 'environment'>, strike: (pid: number) => unknown) =>
  strikeAtMasterStop(estate, host1(), (onStart) => deploy({ ...options, onStart }), strike);

/** The release the hosts run now, and the other one: each test deploys the other. */
async function releases(): Promise<{ running: string; other: string }> {
  const running = (await versionsOn(estate, [host1()]))[host1()]!.demo!.split(' ')[0]!;
  return { running, other: running === 'v6.0.0' ? 'v6.1.0' : 'v6.0.0' };
}

const bothRun = (version: string, on = hosts()) => Object.fromEntries(on.map((h) => [h, { demo: `${version} running`, 'demo-backup': `${version} running` }]));

async function expectClean(lost?: string): Promise<void> {
  expect(await aftermath(estate, 'production', hosts(), lost)).toEqual({ outOfRotation: [], mixed: [], lockLeft: false });
}

/** Clean, both hosts on `version`, and the last deployment record marked `state`. */
async function expectEnd(version: string, state: 'success' | 'failure'): Promise<void> {
  await expectClean();
  expect(await versionsOn(estate, hosts())).toEqual(bothRun(version));
  expect(github.deployments.at(-1)!.statuses.at(-1)).toMatchObject({ state });
}

/**
 * A lost host or load balancer is found by the SSH keepalive: ssh2 gives up after 3 unanswered
 * keepalives (ssh.keepalive-interval, 10 s by default: `npm run chaos` measured 39 s from the cut
 * to the action's exit, the keepalive's 30-40 s plus the rollback). Engine calls (30 s) and
 * Runtime API commands (10 s) have their own timeouts, but over a cut link the channel does not
 * even open: the keepalive is what ends it. The tests set 2 s, so the same path takes seconds:
 * measured here, 9.0 s from the cut to the exit for a lost host (its rollback included) and 6.8 s
 * for a lost load balancer.
 */
const FAST_KEEPALIVE = 'keepalive-interval: 2';

beforeAll(async () => {
  ({ estate, github } = await startOnProduction([{ version: 'v6.0.0' }, { version: 'v6.1.0' }], 'v6.0.0'));
}, 600_000);

// A failing test must not leave the estate cut off for the next one (or for anyone else).
afterEach(async () => {
  await setLink(host2(), 'up');
  await setLink(lb2().address, 'up');
});

afterAll(() => leaveProduction(estate, github), 120_000);

describe('HAProxy reloaded mid-rollout', () => {
  /**
   * Which failed requests are the reload's. A reload starts a new HAProxy process and stops the
   * old one, and HAProxy 2.6 closes the old process's idle keep-alive connections when it stops
   * (`idle-close-on-response`, which lets them answer once more, came after 2.6). A client that
   * sends on such a connection at that instant sees it closed before any byte of an answer. So a
   * failure is the reload's only when it is (1) a connection closed or reset before any response
   * byte, (2) on a kept-alive connection that had served before, (3) between the reload's start
   * and 2 s after it ended, and (4) the first such failure of its client: each client has one
   * connection, which the old process can close once; the next one goes to the new process.
   * Anything else (an HTTP error, a timeout, a failure on a fresh connection or outside the
   * window) is the deploy's: a container stopped while a load balancer still routed to it.
   * Measured here: all 4 clients of one load balancer, each once, 1.3 s after the reload began.
   */
  function notTheReloads(load: LoadReport, reload: { began: number; ended: number }): LoadFailure[] {
    const closedOnce = new Set<number>();
    return load.errors.filter((failure) => {
      const reloads =
        failure.kind === 'closed-before-response' &&
        failure.reusedSocket &&
        failure.at >= reload.began &&
        failure.at <= reload.ended + 2_000 &&
        !closedOnce.has(failure.client);
      if (reloads) closedOnce.add(failure.client);
      return !reloads;
    });
  }

  it('both load balancers reloaded as host 1\'s master stops: the deploy succeeds or fails cleanly, nothing is left out of service', async () => {
    const { running, other } = await releases();
    let reload: { began: number; ended: number } | undefined;
    const [[struck, post], loads] = await underLoad(async () => {
      const struck = await strikeAtFirstStop({ version: other }, async () => {
        reload = await reloadLoadBalancers('production');
      });
      const post = await deploy({ version: other, post: { state: struck.run.state } });
      return [struck, post] as const;
    });
    expect(struck.struckAt).toBeGreaterThan(0);
    expect(reload).toBeDefined();
    // The states survive the reload through the server-state file (the estate's HAProxy has
    // one, as the generated config does), but a command sent while a load balancer reloads can
    // be lost (the first run of this test, before the executor knew, ended with host 1's master
    // MAINT on load balancer 2). The executor sends `ready` again while a server it waits for
    // reads MAINT, and after each batch puts back a server it put in service that reads MAINT
    // again: the deploy succeeds. Or it finds a server it put in maintenance not MAINT before a
    // stop, stops nothing and fails the step (rolled back). Both end clean.
    const record = github.deployments.at(-1)!.statuses.at(-1)!;
    if (struck.run.code === 0) {
      expect(record.state).toBe('success');
      expect(await versionsOn(estate, hosts())).toEqual(bothRun(other));
    } else {
      expect(struck.run.log).toMatch(/was not stopped: \S+ is .* after it was put in maintenance \(a load balancer reloaded\?\)/);
      expect(struck.run.log).toContain('every host touched was rolled back to the release it ran before');
      expect(record.state).toBe('failure');
      expect(await versionsOn(estate, hosts())).toEqual(bothRun(running));
    }
    expect(post.code, post.log).toBe(0);
    await expectClean();
    for (const load of loads) expect(notTheReloads(load, reload!)).toEqual([]);
  }, 300_000);
});

describe('a host lost mid-rollout', () => {
  it('fails naming the host, rolls the other back; with the link back, the post step and the next deploy succeed', async () => {
    const { running, other } = await releases();
    // The link stays down while the aftermath is read (afterEach restores it should that fail).
    const [struck, loads] = await underLoad(() => strikeAtFirstStop({ version: other, ssh: FAST_KEEPALIVE }, () => setLink(host2(), 'down')));
    expect(struck.struckAt).toBeGreaterThan(0);
    expect(struck.run.code).toBe(1);
    expect(struck.run.log).toMatch(new RegExp(`::error::v\\S+ to production failed on ${host2().replaceAll('.', '\\.')}: .*SSH connection to ${host2().replaceAll('.', '\\.')} lost`));
    expect(struck.run.log).toContain(`every host touched was rolled back to the release it ran before (${host1()})`);
    expect(github.deployments.at(-1)!.statuses.at(-1)).toMatchObject({ state: 'failure' });
    expect(github.deployments.at(-1)!.statuses.at(-1)!.description).toContain(host2());
    // Host 1 back on what it ran, both roles, in service on both load balancers; the lock (on
    // host 1, whose address sorts first) released by the main step itself, since nothing it
    // took out of service was left out.
    await expectClean(host2());
    expect(await versionsOn(estate, [host1()])).toEqual(bothRun(running, [host1()]));
    // Requests HAProxy had sent to host 2 when it dropped off (still unanswered at the cut: one
    // timed out here, sent just before it), or sent before its checks marked it DOWN (fall 2 ×
    // inter 1 s, timeout check 2 s: about 4 s), are the fault's: failed after the cut, sent
    // before host 2 was out.
    const theFaults = (failure: LoadFailure) => failure.at >= struck.struckAt && failure.sentAt <= struck.struckAt + 5_000;
    for (const load of loads) expect(load.errors.filter((failure) => !theFaults(failure))).toEqual([]);

    await setLink(host2(), 'up');
    expect(await backInRotation(estate, 'production', hosts())).toEqual([]);
    const post = await deploy({ version: other, post: { state: struck.run.state } });
    expect(post.code, post.log).toBe(0);
    // No lock was left, so no takeover is needed.
    const [next, nextLoads] = await underLoad(() => deploy({ version: other }));
    expect(next.code, next.log).toBe(0);
    for (const load of nextLoads) expect(load.errors).toEqual([]);
    await expectClean();
    expect(await versionsOn(estate, hosts())).toEqual(bothRun(other));
  }, 300_000);
});

describe('a load balancer lost mid-rollout', () => {
  it('stops the rollout naming it, stops no container it may still route to; the post step puts everything back', async () => {
    const { running, other } = await releases();
    const kills: KillWatch[] = hosts().map((host) => watchKills(estate, host));
    const [struck, loads] = await underLoad(() =>
      strikeAtFirstStop({ version: other, ssh: FAST_KEEPALIVE }, () => setLink(lb2().address, 'down')),
    ).finally(() => kills.forEach((watch) => watch.stop()));
    expect(struck.struckAt).toBeGreaterThan(0);
    expect(struck.run.code).toBe(1);
    expect(struck.run.log).toMatch(new RegExp(`::error::.*SSH connection to ${lb2().address.replaceAll('.', '\\.')} lost`));
    // The one container stopped is host 1's old master, whose stop struck the fault: it had been
    // verified MAINT on both load balancers first. After the cut, nothing may stop: a container
    // is stopped only once its server is MAINT on every load balancer, which load balancer 2
    // can no longer confirm (the rollback's drain fails there, so the new master keeps serving).
    expect(kills.map((watch) => watch.names)).toEqual([['demo'], []]);
    // Clients of load balancer 1 never noticed; those of load balancer 2 lost it.
    expect(loads[0]!.errors).toEqual([]);
    for (const failure of loads[1]!.errors) expect(failure.at).toBeGreaterThanOrEqual(struck.struckAt);
    expect(github.deployments.at(-1)!.statuses.at(-1)).toMatchObject({ state: 'failure' });

    const closed = [...github.deployments.at(-1)!.statuses];
    await setLink(lb2().address, 'up');
    const post = await deploy({ version: other, post: { state: struck.run.state } });
    expect(post.code, post.log).toBe(0);
    // Host 2's servers, which no run took out, went DOWN on load balancer 2 by its own checks
    // while it was cut off; they come back by those checks (rise 2), not by the post step.
    expect(await backInRotation(estate, 'production', hosts())).toEqual([]);
    await expectClean();
    // The post step settles host 1 on what its backup runs: the release it ran before.
    expect(await versionsOn(estate, hosts())).toEqual(bothRun(running));
    // The main step closed the record saying what failed (its first 140 characters): the post
    // step leaves its precise word as it was.
    expect(closed.at(-1)).toMatchObject({ state: 'failure', description: expect.stringMatching(new RegExp(`^${other.replaceAll('.', '\\.')} to production failed on [\\d.]+: master failed: HAProxy backend app on ${lb2().address.replaceAll('.', '\\.')}`)) });
    expect(github.deployments.at(-1)!.statuses).toEqual(closed);
  }, 300_000);
});

describe('requests longer than a drain', () => {
  /**
   * Sends `/cgi-bin/slow?SECONDS` through load balancer 1, before any other traffic, until one
   * is held by host 1's master (round robin over the two masters: at most two), and returns
   * each with the host whose master holds it, seen in that server's current sessions.
   */
  async function slowRequests(seconds: number) {
    const lb = production().lb;
    const sessions = async () => Promise.all(hosts().map(async (_, i) => Number(await serverStat(estate, lb, `h${i + 1}-master`, 'scur'))));
    const sent: { host: string; answer: Promise<{ status: number | string; body: string; at: number }> }[] = [];
    while (!sent.some((request) => request.host === host1())) {
      if (sent.length >= 2) throw new Error('round robin gave host 1\'s master neither slow request');
      const before = await sessions();
      const answer = fetch(`${lb.frontend}/cgi-bin/slow?${seconds}`).then(
        async (response) => ({ status: response.status, body: await response.text(), at: Date.now() }),
        (error: Error) => ({ status: error.message, body: '', at: Date.now() }),
      );
      let holder = -1;
      for (let poll = 0; poll < 30 && holder < 0; poll++) {
        await sleep(100);
        const now = await sessions();
        holder = now.findIndex((count, i) => count > before[i]!);
      }
      if (holder < 0) throw new Error('no master took the slow request');
      sent.push({ host: hosts()[holder]!, answer });
    }
    return sent;
  }

  it('one running when its server is drained completes (the drain waits for it) before its container stops', async () => {
    const { other } = await releases();
    const slow = await slowRequests(5);
    const stops = new Map<string, number>();
    const kills = hosts().map((host) => watchKills(estate, host, (name) => name === 'demo' && !stops.has(host) && stops.set(host, Date.now())));
    const [run, loads] = await underLoad(() => deploy({ version: other })).finally(() => kills.forEach((watch) => watch.stop()));
    expect(run.code, run.log).toBe(0);
    for (const { host, answer } of slow) {
      const { status, body, at } = await answer;
      expect({ status, body }).toEqual({ status: 200, body: 'slow\n' });
      // Its server's container was told to stop only after the answer went out.
      expect(stops.get(host), host).toBeGreaterThan(at);
    }
    for (const load of loads) expect(load.errors).toEqual([]);
    await expectEnd(other, 'success');
  }, 300_000);

  it('one longer than haproxy.drain-timeout fails the step (default): the server goes back, nothing stops, the request completes', async () => {
    const { running, other } = await releases();
    const slow = (await slowRequests(6)).find((request) => request.host === host1())!;
    const kills = hosts().map((host) => watchKills(estate, host));
    const [run, loads] = await underLoad(() => deploy({ version: other, haproxy: 'drain-timeout: 1' })).finally(() => kills.forEach((watch) => watch.stop()));
    expect(run.code).toBe(1);
    expect(run.log).toContain(`failed on ${host1()}: master still had 1 sessions after the 1s drain timeout (haproxy.drain-timeout); ${host1()}:50000 was put back in service and nothing was stopped`);
    expect(kills.map((watch) => watch.names)).toEqual([[], []]);
    expect(await slow.answer).toMatchObject({ status: 200, body: 'slow\n' });
    for (const load of loads) expect(load.errors).toEqual([]);
    await expectEnd(running, 'failure');
  }, 300_000);

  it('with on-drain-timeout: cut, it is cut and the log says how many sessions on which server', async () => {
    const { other } = await releases();
    const slow = (await slowRequests(6)).find((request) => request.host === host1())!;
    const [run, loads] = await underLoad(() => deploy({ version: other, haproxy: 'drain-timeout: 1, on-drain-timeout: cut' }));
    expect(run.code, run.log).toBe(0);
    expect(run.log).toContain(`[${host1()}] ${host1()}:50000 still had 1 sessions after the 1s drain timeout: cutting them (haproxy.on-drain-timeout: cut)`);
    // The cut request is the fault's. Here it was answered 200 all the same: the estate's HAProxy
    // sends a GET whose server closed without an answer to another server (`retry-on
    // empty-response`), which is its configuration, not the action's doing; only its end is awaited.
    await slow.answer;
    for (const load of loads) expect(load.errors).toEqual([]);
    await expectEnd(other, 'success');
  }, 300_000);
});

describe('two deploys at once', () => {
  const runIds = ['880001', '880002'];

  it('with lock.wait, the second waits for the first and then plans from what it left: they never interleave', async () => {
    const { other } = await releases();
    for (const id of runIds) github.runs.set(Number(id), { status: 'in_progress' });
    const records = github.deployments.length;
    const extra = 'lock: { wait: 120 }';
    const [runs, loads] = await underLoad(async () => {
      const mains = await Promise.all(runIds.map((runId, i) => sleep(300 * i).then(() => deploy({ version: other, extra, runId }))));
      // As the runner does, each job's post step.
      const posts = await Promise.all(mains.map((main, i) => deploy({ version: other, extra, runId: runIds[i]!, post: { state: main.state } })));
      return [...mains, ...posts];
    });
    for (const run of runs) expect(run.code, run.log).toBe(0);
    const waited = runs.slice(0, 2).findIndex((run) => run.log.includes('Waiting for the deploy lock held by'));
    expect(waited).toBeGreaterThanOrEqual(0);
    const [first, second] = waited === 1 ? [0, 1] : [1, 0];
    expect(runs[second]!.log).toContain(`release run ${runIds[first]}, attempt 1`);
    // The first replaced every container; the second found the release running everywhere.
    expect(runs[first]!.log).toMatch(/master: v\S+ → /);
    expect(runs[second]!.log).not.toMatch(/(master|backup): \S+ → /);
    // Its records in order: the second deploy's record was opened (under the lock) only after
    // the first's was marked a success.
    const made = github.deployments.slice(records);
    expect(made.map((d) => (d.statuses[0]!.log_url.endsWith(`/runs/${runIds[first]}`) ? 'first' : 'second'))).toEqual(['first', 'second']);
    // (The second's success then made the first's record inactive, as GitHub does.)
    expect(made.map((d) => d.statuses.map((s) => s.state))).toEqual([['in_progress', 'success', 'inactive'], ['in_progress', 'success']]);
    expect(made[0]!.statuses[1]!.id).toBeLessThan(made[1]!.statuses[0]!.id);
    for (const load of loads) expect(load.errors).toEqual([]);
    await expectClean();
    expect(await versionsOn(estate, hosts())).toEqual(bothRun(other));
  }, 300_000);

  it('without lock.wait, the second fails naming the holder and changes nothing', async () => {
    const { other } = await releases();
    const [runs, loads] = await underLoad(() => Promise.all(runIds.map((runId, i) => sleep(300 * i).then(() => deploy({ version: other, runId })))));
    expect(runs.map((run) => run.code).sort()).toEqual([0, 1]);
    const winner = runs.findIndex((run) => run.code === 0);
    const loser = runs[1 - winner]!;
    expect(loser.log).toMatch(new RegExp(`::error::.*another deploy holds the lock: octocat \\(release run ${runIds[winner]}, attempt 1\\).*set lock\\.wait to wait for it`));
    expect(loser.log).not.toMatch(/(master|backup): \S+ → /);
    const post = await deploy({ version: other, runId: runIds[1 - winner]!, post: { state: loser.state } });
    expect(post.code, post.log).toBe(0);
    for (const load of loads) expect(load.errors).toEqual([]);
    await expectClean();
    expect(await versionsOn(estate, hosts())).toEqual(bothRun(other));
  }, 300_000);
});
