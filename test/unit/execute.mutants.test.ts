// The executor (src/rollout/execute.ts) where `npm run mutate -- --executor` found the tests
// silent: what its log says, what it tells the journal the post step reads, HAProxy that does not
// take a command or does not report a server UP, the order of a rollback, a cancel between steps
// or during the rollback, settling, and the times it reports. Against the in-memory estate (test/support/memory-estate.ts).
//
// What `npm run mutate -- --executor` still lets through (24 of 536 mutants, as measured on the
// code of CONTRIBUTING.md's table), none hidden by configuration:
// Equivalent (22; no input tells them apart):
// - `Cancelled` and `StepFailed`'s `name` made '' (2): errors reach the user by their message.
// - HostRun's first `role = 'backup'` made '' (1): every step sets the role before it can fail.
// - the hold's `if (!this.unproven)` branch (5): the plan puts a hold right after the canary's
//   master replace, which marked the host unproven already; the branch is never taken.
// - the check's `this.current[role]?.version ?? ''` (2): a check is planned only for a role that
//   runs something.
// - `server()`: `slots?.spares` (2) is reached in slot b only, which only `slots.active` gives;
//   `get(host)?.[role]` → `[role]` (1): pre-flight maps both roles of every host or fails
//   (findServers).
// - `!lb || !server` → `&&` (2) and confirmInService's `if (!lb) return` → false (1): without a
//   load balancer `server()` is undefined too, and the same return (or continue) follows.
// - the drain's and HAProxy UP's deadlines, `<` → `<=` and `>=` → `>` (2): a poll landing on the
//   deadline's very millisecond.
// - `verified.delete(role)` once a role's container is stopped, in a replace and after a stop that
//   failed (2): every reader of `verified` also needs the role's current release, deleted with it
//   (the replace that skips a repaired role, settling's proven master), or runs only after a batch
//   in which no step failed (confirmInService).
// - `asides.delete(role)` after a restore and in discardAsides (2): `asides` is read by
//   discardAsides only, once, after a rollout that succeeded; a restore happens only in a
//   rollback or a settle.
// Not killed yet (2), gaps left for tests to come:
// - `stoppedInPlace.delete(role)` once a set-aside succeeds (1): it matters only to a third
//   replace of the same role in one host's run after a set-aside that failed part way; no test
//   reaches it. (Looking for one found a defect, fixed: a settle removed the user's adopted
//   container that a rollback had put back when it did not answer healthy under a cancel.)
// - `unproven = false` once the canary's replacement is in service (1): nothing in the rest of a
//   rollback reads it (the journal is told false either way); only a settle of that same host
//   would, and a host rolled back is not settled.
// Killed by the tests at the end of this file (issue 25's second pass): a sick container's repair
// when the target lacks its role, a failed check without log lines, a remove without HAProxy and
// the slot it frees under no-gap, what a role runs after a failed stop, the roles beside the web
// role (how many at once, their undo errors), the journal after a restore, the break after a
// reload's put-back fails, a failed batch going straight to its rollback, the canary's unproven
// mark through a rollback that repairs a sick backup. Two guards no run reaches were removed
// from the source instead (a run met twice by collect(), `failures.length === 0` beside
// `interrupted.length === 0`).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { executeRollout, takeOutOfService, type Logger, type RolloutJournal } from '../../src/rollout/execute.js';
import { planHost } from '../../src/rollout/plan.js';
import type { RolePolicy } from '../../src/rollout/roles.js';
import { Estate, MemoryHost, memoryEstate, release } from '../support/memory-estate.js';

const v1 = release('v1.0.0');
const v2 = release('v2.0.0');
const broken = release('v3.0.0-broken');

/** The log as the runner shows it: each group's title, then its lines; warnings marked. */
function logged() {
  const lines: string[] = [];
  const log: Logger = {
    info: (line) => lines.push(line),
    warning: (line) => lines.push(`warning: ${line}`),
    group: (title, run) => {
      lines.push(`## ${title}`);
      return run();
    },
  };
  return { lines, log };
}

/** A journal that writes down every call, in order. */
function journaled() {
  const calls: string[] = [];
  const journal: RolloutJournal = {
    touched: (host, before) => void calls.push(`touched ${host} ${before.master?.version} ${before.backup?.version}`),
    outOfService: (server, out) => void calls.push(`${out ? 'out' : 'back'} ${server}`),
    unproven: (host, holding) => void calls.push(`unproven ${host} ${holding}`),
    changing: (host, role, yes) => void calls.push(`changing ${host}/${role} ${yes}`),
    aside: (host, role, yes) => void calls.push(`aside ${host}/${role} ${yes}`),
  };
  return { calls, journal };
}

/** A host whose master on v2.0.0 will not start healthy (its container runs `broken`). */
function failMasterOf(host: MemoryHost): void {
  const run = host.run.bind(host);
  host.run = async (spec) => run(spec.role === 'master' && spec.release === v2 ? { ...spec, release: broken } : spec);
}

/**
 * A cancel while h1's new backup starts (its second health check, the first being the check
 * before the deploy), which then does not answer healthy: the backup is unproven.
 */
function cancelAsNewBackupStarts(world: Estate): AbortController {
  const controller = new AbortController();
  let checks = 0;
  world.intercept = (call) => {
    if (call.op === 'health' && call.subject === 'app-backup' && ++checks === 2) {
      controller.abort();
      world.sickOnArrival.add('h1/backup');
    }
  };
  return controller;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('the log, line by line', () => {
  it('an upgrade says what each role runs, each drain, each server back UP in HAProxy and each phase\'s seconds, under a group per host; the outcome has the host\'s seconds', async () => {
    // Every call to a host or load balancer takes one second of a clock the test moves.
    vi.useFakeTimers({ toFake: ['Date'] });
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    world.latency = () => 1000;
    world.clock = { now: () => Date.now(), sleep: async (ms) => void vi.setSystemTime(Date.now() + ms) };
    const { lines, log } = logged();
    const result = await executeRollout(await plan(v2), { ...deps, log });
    expect(result.ok).toBe(true);
    expect(lines).toEqual([
      '## Deploy v2.0.0 to h1',
      '[h1] backup v1.0.0: HTTP 200',
      '[h1] master: v1.0.0 → v2.0.0',
      '[h1] h1-master drained',
      '[h1] h1-master is UP in HAProxy',
      // drain, status, maint, status; stop, remove; run; health; status, ready, status.
      '[h1] master: drain 4.0 s, stop 2.0 s, start 1.0 s, healthy 1.0 s, in service 3.0 s',
      '[h1] backup: v1.0.0 → v2.0.0',
      '[h1] h1-backup drained',
      '[h1] h1-backup is UP in HAProxy',
      '[h1] backup: drain 4.0 s, stop 2.0 s, start 1.0 s, healthy 1.0 s, in service 3.0 s',
    ]);
    // The backup's check (health, status), then 11 calls for each role.
    expect(result.hosts[0]!.seconds).toBe(24);
  });

  it('a first deploy says each role ran nothing before, and drains no empty slot', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], {});
    const { lines, log } = logged();
    expect((await executeRollout(await plan(v1), { ...deps, log })).ok).toBe(true);
    expect(lines.filter((l) => l.includes('→'))).toEqual(['[h1] backup: nothing → v1.0.0', '[h1] master: nothing → v1.0.0']);
    expect(world.events.filter((e) => e.startsWith('drain'))).toEqual([]);
  });
});

describe('a failure', () => {
  it('rolls the hosts back last touched first, each under its own group, and never starts the next host', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2', 'h3'], { master: v1, backup: v1 });
    failMasterOf(deps.hosts.get('h2') as unknown as MemoryHost);
    const { lines, log } = logged();
    const result = await executeRollout(await plan(v2), { ...deps, log });
    expect(result.ok).toBe(false);
    expect(lines.filter((l) => l.startsWith('## '))).toEqual(['## Deploy v2.0.0 to h1', '## Deploy v2.0.0 to h2', '## Roll back h2', '## Roll back h1']);
    expect(lines).toContain('[h2] master v2.0.0 did not become healthy: HTTP 500');
    expect(lines).toContain('[h2] h2/master says boom');
    expect(world.events.some((e) => e.includes('h3'))).toBe(false);
    expect(result.hosts.map((h) => h.health)).toEqual(['HTTP 200', 'HTTP 200', '']);
    expect(result.cancelled).toBeUndefined();
    expect(Object.values(world.served())).toEqual(Array(6).fill('v1.0.0'));
  });

  it('with rollBackOnFailure false (the post step\'s repair), is reported and nothing is rolled back', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    failMasterOf(deps.hosts.get('h2') as unknown as MemoryHost);
    const { lines, log } = logged();
    const result = await executeRollout(await plan(v2), { ...deps, log, rollBackOnFailure: false });
    expect(result.ok).toBe(false);
    expect(result.failure?.message).toBe('h2: master v2.0.0 did not become healthy: HTTP 500');
    expect(lines.filter((l) => l.startsWith('## Roll back'))).toEqual([]);
    expect(world.served()).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0', 'h2/backup': 'v1.0.0' });
  });

  it('the outcome\'s health is the master\'s last answer, not the backup\'s', async () => {
    const { deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    const host = deps.hosts.get('h1') as unknown as MemoryHost;
    const waitHealthy = host.waitHealthy.bind(host);
    host.waitHealthy = async (name) => {
      const verdict = await waitHealthy(name);
      return { ...verdict, detail: `${verdict.detail} from ${name}` };
    };
    const result = await executeRollout(await plan(v2), deps);
    expect(result.hosts[0]!.health).toBe('HTTP 200 from app');
  });

  it('a plan naming a host without a connection is refused before anything moves', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    const planned = await plan(v2);
    deps.hosts.delete('h2');
    await expect(executeRollout(planned, deps)).rejects.toThrow('no connection to h2');
    await expect(takeOutOfService('h2', 'master', { master: v1, backup: v1 }, deps)).rejects.toThrow('no connection to h2');
    expect(world.events).toEqual(['start']);
  });
});

describe('the journal the post step reads', () => {
  it('a drain that outlasts its timeout: the server is put back and said to be back, the role said unchanged', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    world.sessions.set('h1-master', 3);
    const { calls, journal } = journaled();
    const result = await executeRollout(await plan(v2), { ...deps, journal });
    expect(result.failure?.reason).toMatch(/^still had 3 sessions after the 0s drain timeout \(haproxy.drain-timeout\); h1-master was put back in service and nothing was stopped\. Raise haproxy.drain-timeout, or set haproxy.on-drain-timeout: cut to stop such sessions$/);
    expect(result.failure?.logs).toBe('');
    // Then the rollback's checks find both roles as they were, in service.
    expect(calls).toEqual(['back h1-backup', 'touched h1 v1.0.0 v1.0.0', 'changing h1/master true', 'out h1-master', 'back h1-master', 'changing h1/master false', 'back h1-backup', 'back h1-master']);
    // Put back at once, before the rollback begins.
    expect(world.events.slice(world.events.indexOf('drain h1-master'), world.events.indexOf('drain h1-master') + 2)).toEqual(['drain h1-master', 'ready h1-master']);
  });

  it('a cancel while a server drains: it goes back in service, said to be back, and nothing is stopped', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    world.sessions.set('h1-master', 3);
    deps.lb!.drainTimeoutSeconds = 600;
    const controller = new AbortController();
    let polls = 0;
    world.intercept = (call) => {
      if (call.op === 'lb-status' && ++polls === 3) controller.abort();
    };
    const { calls, journal } = journaled();
    const result = await executeRollout(await plan(v2), { ...deps, journal, signal: controller.signal });
    expect(result.cancelled).toBeDefined();
    // Then settling finds both roles as they were, in service.
    expect(calls).toEqual(['back h1-backup', 'touched h1 v1.0.0 v1.0.0', 'changing h1/master true', 'out h1-master', 'back h1-master', 'changing h1/master false', 'back h1-backup', 'back h1-master']);
    expect(world.lbState.get('h1-master')).toBe('ready');
    expect(world.events.filter((e) => e.startsWith('stop'))).toEqual([]);
    // Without a journal (a rollout the post step runs) the same.
    polls = 0;
    const again = new AbortController();
    world.intercept = (call) => {
      if (call.op === 'lb-status' && ++polls === 3) again.abort();
    };
    const unjournaled = await executeRollout(await plan(v2), { ...deps, signal: again.signal });
    expect(unjournaled.cancelled).toEqual({ settled: true, unsettled: [] });
    expect(unjournaled.failures).toEqual([]);
  });

  it('a role removed (a rollback of a first deploy): changing from before the drain until it is gone, and said in the log', async () => {
    const { deps } = memoryEstate(['h1'], { backup: v2 });
    const { calls, journal } = journaled();
    const { lines, log } = logged();
    const result = await executeRollout({ target: v1, batches: [['h1']], hosts: [planHost('h1', { backup: v2 }, {})] } as never, { ...deps, journal, log });
    expect(result.ok).toBe(true);
    expect(lines).toContain('[h1] backup: removed');
    expect(calls).toEqual(['back h1-backup', 'touched h1 undefined v2.0.0', 'changing h1/backup true', 'out h1-backup', 'changing h1/backup false']);
  });
});

describe('HAProxy that does not do as told', () => {
  /** Each HAProxy poll waits `pollMs` on a clock the test moves; health.timeoutSeconds is 1. */
  function polled() {
    vi.useFakeTimers({ toFake: ['Date'] });
    const env = memoryEstate(['h1'], { master: v1, backup: v1 });
    env.deps.pollMs = 300;
    env.deps.sleep = async (ms) => void vi.setSystemTime(Date.now() + ms);
    return env;
  }

  it('a server HAProxy reports DOWN for three polls after ready is waited for, within the health timeout', async () => {
    const { world, deps, plan, lines } = polled();
    const fleet = deps.lb!.driver;
    const status = fleet.status.bind(fleet);
    let down = 3;
    let ready = false;
    const setState = fleet.setState.bind(fleet);
    fleet.setState = async (server, state) => {
      if (server === 'h1-master' && state === 'ready') ready = true;
      await setState(server, state);
    };
    fleet.status = async (server) => (server === 'h1-master' && ready && down-- > 0 ? { ...(await status(server)), status: 'DOWN' } : status(server));
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    expect(down).toBeLessThan(0);
    // DOWN is waited out; ready is sent again only to a server that reads MAINT.
    expect(world.events.filter((e) => e === 'ready h1-master')).toHaveLength(1);
    expect(lines).toContain('[h1] h1-master is UP in HAProxy');
  });

  it('a server HAProxy never reports UP fails the step after the health timeout, and the host is rolled back', async () => {
    const { world, deps, plan } = polled();
    const fleet = deps.lb!.driver;
    const status = fleet.status.bind(fleet);
    fleet.status = async (server) => {
      const s = await status(server);
      return server === 'h1-master' && world.boxes.get('h1/master')?.release.version === 'v2.0.0' && s.status === 'UP' ? { ...s, status: 'DOWN' } : s;
    };
    const result = await executeRollout(await plan(v2), deps);
    expect(result.failure?.message).toBe('h1: master v2.0.0 is healthy but HAProxy reports h1-master DOWN after 1s');
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0' });
  });

  it('maintenance that does not hold (a load balancer reloaded) is sent again; when it still does not hold, nothing is stopped', async () => {
    for (const reverts of [1, Infinity]) {
      const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
      const fleet = deps.lb!.driver;
      const setState = fleet.setState.bind(fleet);
      let left = reverts;
      fleet.setState = async (server, state) => {
        await setState(server, state);
        if (server === 'h1-master' && state === 'maint' && left-- > 0) world.lbState.set('h1-master', 'ready');
      };
      const result = await executeRollout(await plan(v2), deps);
      if (reverts === 1) {
        expect(result.ok).toBe(true);
        expect(world.events.filter((e) => e === 'maint h1-master')).toHaveLength(2);
      } else {
        expect(result.failure?.message).toBe('h1: master v1.0.0 was not stopped: h1-master is UP after it was put in maintenance (a load balancer reloaded?)');
        expect(world.events.filter((e) => e.startsWith('stop'))).toEqual([]);
        expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0' });
      }
    }
  });
});

describe('a cancel', () => {
  it('between two steps: the next step does not start', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    const controller = new AbortController();
    world.intercept = (call) => {
      if (call.op === 'health' && call.subject === 'app-backup') controller.abort();
    };
    const result = await executeRollout(await plan(v2), { ...deps, signal: controller.signal });
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    expect(result.failures).toEqual([]);
    expect(world.events.filter((e) => !e.startsWith('health'))).toEqual(['start']);
  });

  it('during the last step of a batch: the next batch does not start', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    const controller = new AbortController();
    world.intercept = (call) => {
      if (call.op === 'lb-set' && call.subject === 'h1-backup' && world.lbState.get('h1-backup') === 'maint') controller.abort();
    };
    const result = await executeRollout(await plan(v2), { ...deps, signal: controller.signal });
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    expect(result.failures).toEqual([]);
    expect(world.events.filter((e) => e.includes('h2'))).toEqual([]);
  });
});

describe('draining and HAProxy\'s words for UP', () => {
  /** Each HAProxy poll waits `pollMs` on a clock the test moves. */
  function polled(drainTimeoutSeconds: number) {
    vi.useFakeTimers({ toFake: ['Date'] });
    const env = memoryEstate(['h1'], { master: v1, backup: v1 });
    env.deps.pollMs = 300;
    env.deps.sleep = async (ms) => void vi.setSystemTime(Date.now() + ms);
    env.deps.lb!.drainTimeoutSeconds = drainTimeoutSeconds;
    return env;
  }

  it('sessions and queued requests that end within the drain timeout are waited for, then the container changes', async () => {
    const { world, deps, plan } = polled(2);
    const fleet = deps.lb!.driver;
    const status = fleet.status.bind(fleet);
    // Two polls with sessions, two with requests queued, then none (1.2 s of a 2 s timeout).
    const busy = [{ sessions: 2, queued: 0 }, { sessions: 1, queued: 0 }, { sessions: 0, queued: 2 }, { sessions: 0, queued: 1 }];
    fleet.status = async (server) => {
      const s = await status(server);
      return server === 'h1-master' && s.status === 'DRAIN' ? { ...s, ...(busy.shift() ?? { sessions: 0, queued: 0 }) } : s;
    };
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(true);
    expect(busy).toEqual([]);
    expect(world.served()).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0' });
  });

  it('"UP 1/3" (up, one check failed) counts as UP; the status is logged as HAProxy words it, and ready is sent once', async () => {
    const { world, deps, plan, lines, warnings } = polled(0);
    const fleet = deps.lb!.driver;
    const status = fleet.status.bind(fleet);
    fleet.status = async (server) => {
      const s = await status(server);
      return s.status === 'UP' ? { ...s, status: 'UP 1/3' } : s;
    };
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    expect(lines).toContain('[h1] h1-master is UP 1/3 in HAProxy');
    expect(warnings).toEqual([]);
    expect(world.events.filter((e) => e === 'ready h1-master')).toHaveLength(1);
    // The backup, checked UP 1/3 before the deploy, is not sent ready then either.
    expect(world.events.filter((e) => e === 'ready h1-backup')).toHaveLength(1);
  });
});

describe('settling after a cancel', () => {
  /**
   * A cancel while h1's new backup starts, which then does not answer healthy: the master has
   * moved to v2.0.0 (held as a canary when `hold`), the backup is unproven.
   */
  async function cancelledAtBackupStop(hold: number) {
    const env = memoryEstate(['h1'], { master: v1, backup: v1 });
    const controller = cancelAsNewBackupStarts(env.world);
    const { lines, log } = logged();
    const { calls, journal } = journaled();
    const canary = { hold: async () => undefined, check: async () => undefined };
    const result = await executeRollout(await env.plan(v2, hold), { ...env.deps, log, journal, canary, signal: controller.signal });
    return { ...env, result, lines, calls };
  }

  it('a host whose new master was proven settles on the new release, under its own group; the cancel is no failure', async () => {
    const { world, result, lines } = await cancelledAtBackupStop(0);
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    expect(result.failures).toEqual([]);
    expect(lines).toContain('## Settle h1 after the cancel');
    expect(world.served()).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0' });
  });

  it('so does one whose canary passed its hold: it is judged, and said to be once only', async () => {
    const { world, result, calls } = await cancelledAtBackupStop(30);
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    expect(calls.filter((c) => c.startsWith('unproven'))).toEqual(['unproven h1 true', 'unproven h1 false']);
    expect(world.served()).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0' });
  });

  it('a host that cannot be settled within the time left is named for the post step, with why', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    const controller = new AbortController();
    world.intercept = (call) => {
      if (call.op === 'stop' && call.subject === 'app-backup') controller.abort();
      if (controller.signal.aborted && call.op === 'health') throw new Error('h1: connection lost');
    };
    const { lines, log } = logged();
    const result = await executeRollout(await plan(v2), { ...deps, log, signal: controller.signal });
    expect(result.cancelled).toEqual({ settled: false, unsettled: ['h1'] });
    expect(lines).toContain('warning: [h1] not settled before the deadline (h1: connection lost): the post step finishes it');
  });
});

describe('the canary\'s hold and the containers the user started', () => {
  it('a failed hold whose rollback must first repair a sick backup: the master stays unproven until the old one is back, not once the backup is', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    const { calls, journal } = journaled();
    const canary = {
      hold: async () => {
        world.sickOnArrival.add('h1/backup');
        return 'v2.0.0 answered 40 of 40 requests with 5xx';
      },
      check: async () => undefined,
    };
    const result = await executeRollout(await plan(v2, 30), { ...deps, journal, canary });
    expect(result.failure?.message).toBe('h1: master v2.0.0 answered 40 of 40 requests with 5xx');
    expect(calls.filter((c) => c.startsWith('unproven'))).toEqual(['unproven h1 true', 'unproven h1 false']);
    expect(calls.indexOf('unproven h1 false')).toBeGreaterThan(calls.lastIndexOf('changing h1/master false'));
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0' });
  });

  it('a release that fails its hold is rolled back; the host\'s master is unproven from before the hold until the old one is back', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    const { calls, journal } = journaled();
    const canary = { hold: async () => 'v2.0.0 answered 40 of 40 requests with 5xx', check: async () => undefined };
    const result = await executeRollout(await plan(v2, 30), { ...deps, journal, canary });
    expect(result.failure?.message).toBe('h1: master v2.0.0 answered 40 of 40 requests with 5xx');
    expect(calls.filter((c) => c.startsWith('unproven'))).toEqual(['unproven h1 true', 'unproven h1 false']);
    expect(calls.indexOf('unproven h1 false')).toBeGreaterThan(calls.lastIndexOf('changing h1/master false'));
    expect(Object.values(world.served())).toEqual(Array(4).fill('v1.0.0'));
  });

  it('a hold without a canary gate (nothing to judge by) goes on', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    expect((await executeRollout(await plan(v2, 30), deps)).ok).toBe(true);
    expect(world.served()).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0' });
  });

  it('a sick container repaired before the rollout is judged like any other: not a canary, checked against the budget', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    world.sickOnArrival.add('h1/backup');
    const { calls, journal } = journaled();
    const checked: string[] = [];
    const canary = { hold: async () => undefined, check: async (r: { version: string }) => void checked.push(r.version) };
    expect((await executeRollout(await plan(v2), { ...deps, journal, canary })).ok).toBe(true);
    expect(calls.filter((c) => c.startsWith('unproven'))).toEqual([]);
    expect(checked).toEqual(['v2.0.0', 'v2.0.0']);
  });

  it('a failure not rolled back (the post step\'s repair) keeps the user\'s containers set aside', async () => {
    const handRun = { version: 'v0.9.0', ref: 'r/app:v0.9.0', digest: '', adopted: true };
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: handRun, backup: handRun });
    failMasterOf(deps.hosts.get('h2') as unknown as MemoryHost);
    const result = await executeRollout(await plan(v2), { ...deps, rollBackOnFailure: false });
    expect(result.ok).toBe(false);
    expect([...world.asides.keys()].sort()).toEqual(['h1/backup', 'h1/master', 'h2/master']);
    expect(world.events.filter((e) => e.startsWith('discard'))).toEqual([]);
  });

  it('the health check\'s progress lines reach the log under the host', async () => {
    const { deps, plan, lines } = memoryEstate(['h1'], { master: v1, backup: v1 });
    const host = deps.hosts.get('h1')!;
    const waitHealthy = host.waitHealthy.bind(host);
    host.waitHealthy = async (name, port, health, onProgress, signal) => {
      onProgress?.(`${name}: waiting for /healthcheck`);
      return waitHealthy(name, port, health, onProgress, signal);
    };
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    expect(lines.filter((l) => l.includes('waiting'))).toEqual(['[h1] app-backup: waiting for /healthcheck', '[h1] app: waiting for /healthcheck', '[h1] app-backup: waiting for /healthcheck']);
  });
});

describe('servers the operator holds out of service', () => {
  it('are not taken for servers a reload put in MAINT: no warning, no ready sent', async () => {
    const held = new Map<string, 'maint' | 'drain'>([['h1-master', 'maint']]);
    const { world, deps, plan, warnings } = memoryEstate(['h1'], { master: v1, backup: v1 }, { held });
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    expect(warnings).toEqual([]);
    expect(world.events).not.toContain('ready h1-master');
  });
});

describe('more of what HAProxy and the hosts say', () => {
  it('a host that failed before it changed anything is not rolled back', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    world.intercept = (call) => {
      if (call.at === 'h2' && call.op === 'health') throw new Error('h2: connection lost');
    };
    const { lines, log } = logged();
    const result = await executeRollout(await plan(v2), { ...deps, log });
    expect(result.failure?.message).toBe('h2: backup v1.0.0 failed: h2: connection lost');
    expect(lines.filter((l) => l.startsWith('## '))).toEqual(['## Deploy v2.0.0 to h1', '## Deploy v2.0.0 to h2', '## Roll back h1']);
  });

  it('a server in maintenance that HAProxy words "MAINT (resolution)" counts as in maintenance, at the first asking and the second', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    const fleet = deps.lb!.driver;
    const status = fleet.status.bind(fleet);
    fleet.status = async (server) => {
      const s = await status(server);
      return s.status === 'MAINT' ? { ...s, status: 'MAINT (resolution)' } : s;
    };
    const setState = fleet.setState.bind(fleet);
    let revert = 1;
    fleet.setState = async (server, state) => {
      await setState(server, state);
      // The backup's first maintenance does not hold (a reload): it is asked again.
      if (server === 'h1-backup' && state === 'maint' && revert-- > 0) world.lbState.set('h1-backup', 'ready');
    };
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    expect(world.events.filter((e) => e.startsWith('maint'))).toEqual(['maint h1-master', 'maint h1-backup', 'maint h1-backup']);
  });

  it('an adopted container put back by a rollback that does not answer healthy stays, for its owner to look at', async () => {
    const handRun = { version: 'v0.9.0', ref: 'r/app:v0.9.0', digest: '', adopted: true };
    const { world, deps, plan } = memoryEstate(['h1'], { master: handRun, backup: handRun });
    const original = world.boxes.get('h1/master')!;
    failMasterOf(deps.hosts.get('h1') as unknown as MemoryHost);
    world.intercept = (call) => {
      if (call.op === 'rename' && call.subject === 'app-adopted') world.sickOnArrival.add('h1/master');
    };
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(false);
    expect(result.rollbackErrors).toEqual(['h1: master v0.9.0 did not become healthy: HTTP 500']);
    expect(world.boxes.get('h1/master')).toBe(original);
  });

  it('on-drain-timeout cut with nothing left to cut says the server drained, and warns of nothing', async () => {
    const { deps, plan, lines, warnings } = memoryEstate(['h1'], { master: v1, backup: v1 }, { onDrainTimeout: 'cut' });
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    expect(lines).toContain('[h1] h1-master drained');
    expect(warnings).toEqual([]);
  });

  it('requests queued at the drain timeout count with the sessions', async () => {
    const { deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    const fleet = deps.lb!.driver;
    const status = fleet.status.bind(fleet);
    fleet.status = async (server) => {
      const s = await status(server);
      return server === 'h1-master' && s.status === 'DRAIN' ? { ...s, sessions: 1, queued: 2 } : s;
    };
    const result = await executeRollout(await plan(v2), deps);
    expect(result.failure?.reason).toMatch(/^still had 3 sessions after the 0s drain timeout/);
  });

  it('a cancel while HAProxy has not reported the new server UP ends the wait at once, as a cancel', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    const controller = new AbortController();
    const fleet = deps.lb!.driver;
    const status = fleet.status.bind(fleet);
    let polls = 0;
    fleet.status = async (server) => {
      const s = await status(server);
      if (server !== 'h1-master' || world.boxes.get('h1/master')?.release !== v2 || s.status !== 'UP') return s;
      if (++polls === 3) controller.abort();
      return { ...s, status: 'DOWN' };
    };
    // A health timeout no poll reaches: only the cancel ends the wait.
    deps.health = { ...deps.health, timeoutSeconds: 3600 };
    const result = await executeRollout(await plan(v2), { ...deps, signal: controller.signal });
    expect(result.cancelled).toBeDefined();
    expect(result.failures).toEqual([]);
  });

  it('a role that only had to be checked counts as proven: a half-moved host cancelled while its backup changes settles on its master\'s release', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v2, backup: v1 });
    const controller = cancelAsNewBackupStarts(world);
    const result = await executeRollout(await plan(v2), { ...deps, signal: controller.signal });
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    expect(world.served()).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0' });
  });

  it('a server a reload put back in MAINT is told to the journal as out of service before it is put back', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    const fleet = deps.lb!.driver;
    const setState = fleet.setState.bind(fleet);
    fleet.setState = async (server, state) => {
      if (server === 'h1-backup' && state === 'drain') world.lbState.set('h1-master', 'maint');
      await setState(server, state);
    };
    const { calls, journal } = journaled();
    expect((await executeRollout(await plan(v2), { ...deps, journal })).ok).toBe(true);
    const h1Master = calls.filter((c) => c.endsWith(' h1-master'));
    expect(h1Master).toEqual(['out h1-master', 'back h1-master', 'out h1-master', 'back h1-master']);
  });

  it('the adopted containers set aside are removed once the rollout succeeded, each said; one that cannot be is a warning, not a failure', async () => {
    const handRun = { version: 'v0.9.0', ref: 'r/app:v0.9.0', digest: '', adopted: true };
    const { world, deps, plan, lines, warnings } = memoryEstate(['h1'], { master: handRun, backup: handRun });
    world.intercept = (call) => {
      if (call.op === 'remove' && call.subject === 'app-backup-adopted') throw new Error('h1: remove app-backup-adopted failed');
    };
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    expect(lines).toContain('[h1] removed the adopted master container it had set aside');
    expect(warnings).toEqual(['[h1] could not remove an adopted container set aside: h1: remove app-backup-adopted failed']);
  });
});

describe('a cancel during the automatic rollback', () => {
  it('as one host\'s rollback ends: no other host\'s rollback begins; the hosts not back are settled', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    failMasterOf(deps.hosts.get('h2') as unknown as MemoryHost);
    const controller = new AbortController();
    let checks = 0;
    world.intercept = (call) => {
      // h2's backup: checked before the deploy, then as the rollback's last step.
      if (call.at === 'h2' && call.op === 'health' && call.subject === 'app-backup' && ++checks === 2) controller.abort();
    };
    const { lines, log } = logged();
    const result = await executeRollout(await plan(v2), { ...deps, log, signal: controller.signal });
    expect(lines.filter((l) => l.startsWith('## '))).toEqual(['## Deploy v2.0.0 to h1', '## Deploy v2.0.0 to h2', '## Roll back h2', '## Settle h1 after the cancel']);
    expect(result.rollbackErrors).toEqual([]);
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    expect(world.served()).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
  });

  it('as a host\'s rollback begins: it is settled instead, no rollback error; a host that cannot be settled is named', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    failMasterOf(deps.hosts.get('h2') as unknown as MemoryHost);
    const controller = new AbortController();
    world.intercept = (call) => {
      if (controller.signal.aborted && call.at === 'h1') throw new Error('h1: connection lost');
    };
    const { lines, log } = logged();
    const group = log.group;
    log.group = (title, run) => {
      if (title === 'Roll back h2') controller.abort();
      return group(title, run);
    };
    const result = await executeRollout(await plan(v2), { ...deps, log, signal: controller.signal });
    expect(result.rollbackErrors).toEqual([]);
    expect(result.cancelled).toEqual({ settled: false, unsettled: ['h1'] });
    expect(lines.filter((l) => l.startsWith('## '))).toEqual(['## Deploy v2.0.0 to h1', '## Deploy v2.0.0 to h2', '## Roll back h2', '## Settle h2 after the cancel', '## Settle h1 after the cancel']);
    expect(world.served()).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
  });
});

describe('settling within its deadline', () => {
  it('a settle that runs out of time says so, and leaves the host to the post step', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    // Every call takes 5 ms of real time; settling gets 1 ms.
    world.latency = () => 5;
    world.clock = { now: () => Date.now(), sleep: (ms) => new Promise((done) => setTimeout(done, ms)) };
    const controller = cancelAsNewBackupStarts(world);
    const { lines, log } = logged();
    const result = await executeRollout(await plan(v2), { ...deps, log, signal: controller.signal, settleMs: 1 });
    expect(result.cancelled).toEqual({ settled: false, unsettled: ['h1'] });
    expect(lines).toContain('warning: [h1] not settled before the deadline (cancelled): the post step finishes it');
  });
});

describe('a sick container on a host whose target lacks its role', () => {
  it('is repaired with the release the host ends on, the master\'s when the target has no backup', async () => {
    const { world, deps } = memoryEstate(['h1'], { master: v2, backup: v2 });
    world.sickOnArrival.add('h1/backup');
    const { lines, log } = logged();
    const warnings: string[] = [];
    const target = { master: v1 };
    const result = await executeRollout({ target: v1, batches: [['h1']], hosts: [planHost('h1', { master: v2, backup: v2 }, target)] } as never, {
      ...deps,
      log: { ...log, warning: (line) => void warnings.push(line) },
    });
    expect(result.failure?.message).toBeUndefined();
    expect(warnings).toEqual(['[h1] backup is not healthy (HTTP 500): replacing it with v1.0.0']);
    expect(lines).toContain('[h1] backup: v2.0.0 → v1.0.0');
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0' });
  });

  it('with no release to repair it with (every role removed), fails naming the role, its release and the health answer', async () => {
    const { world, deps } = memoryEstate(['h1'], { master: v2, backup: v2 });
    world.sickOnArrival.add('h1/backup');
    const result = await executeRollout({ target: v1, batches: [['h1']], hosts: [planHost('h1', { master: v2, backup: v2 }, {})] } as never, { ...deps, rollBackOnFailure: false });
    expect(result.failure?.message).toBe('h1: backup v2.0.0 is not healthy: HTTP 500');
    expect(result.failure?.logs).toBe('h1/backup says boom');
    // Nothing was changed: both containers still run.
    expect(world.events.filter((e) => e.startsWith('stop'))).toEqual([]);
  });
});

describe('a new container that fails its health check', () => {
  it('without log lines logs none: no empty line under the host', async () => {
    const { deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    const host = deps.hosts.get('h1') as unknown as MemoryHost;
    failMasterOf(host);
    const waitHealthy = host.waitHealthy.bind(host);
    host.waitHealthy = async (name) => {
      const verdict = await waitHealthy(name);
      return verdict.healthy ? verdict : { healthy: false as const, detail: verdict.detail, logs: '' };
    };
    const { lines, log } = logged();
    const result = await executeRollout(await plan(v2), { ...deps, log, rollBackOnFailure: false });
    expect(result.failure?.message).toBe('h1: master v2.0.0 did not become healthy: HTTP 500');
    // Why is the last thing the log says (not rolled back: the post step's repair).
    expect(lines.at(-1)).toBe('[h1] master v2.0.0 did not become healthy: HTTP 500');
  });
});

describe('a role removed', () => {
  it('without HAProxy (no haproxy section) is stopped and removed all the same', async () => {
    const { world, deps } = memoryEstate(['h1'], { backup: v2 }, { lb: false });
    const result = await executeRollout({ target: v1, batches: [['h1']], hosts: [planHost('h1', { backup: v2 }, {})] } as never, deps);
    expect(result.ok).toBe(true);
    expect(world.served()).toEqual({});
  });

  it('under no-gap frees its slot: the role\'s next container starts in slot a, on its own port', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 }, { noGap: true });
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    // No-gap moved both roles to their spare slot.
    expect(deps.lb!.slots!.active.get('h1')).toEqual({ master: 'b', backup: 'b' });
    const current = { master: v2, backup: v2 };
    const removed = await executeRollout({ target: v2, batches: [['h1']], hosts: [planHost('h1', current, { master: v2 })] } as never, deps);
    expect(removed.ok).toBe(true);
    expect(deps.lb!.slots!.active.get('h1')).toEqual({ master: 'b' });
    const back = await executeRollout({ target: v2, batches: [['h1']], hosts: [planHost('h1', { master: v2 }, current)] } as never, deps);
    expect(back.ok).toBe(true);
    expect(world.boxes.get('h1/backup')?.slot).toBeUndefined();
  });
});

describe('a stop that fails: what the role runs is read back from the host', () => {
  /** The host's `op` on the master container throws once; `vanish` first removes the container. */
  function failing(world: Estate, op: string, vanish = false) {
    let failed = false;
    world.intercept = (call) => {
      if (call.op !== op || call.subject !== 'app' || failed) return;
      failed = true;
      if (vanish) world.boxes.delete('h1/master');
      throw new Error(`${op} app: the engine answered 500`);
    };
  }

  it('a stop refused with the container still running: the failure names the release it still runs', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    failing(world, 'stop');
    const result = await executeRollout(await plan(v2), { ...deps, rollBackOnFailure: false });
    expect(result.failure?.message).toBe('h1: master v1.0.0 failed: stop app: the engine answered 500');
    expect(result.hosts[0]!.after.master).toEqual(v1);
  });

  it('a remove that failed after the stop: the role runs nothing, so the rollback starts it again', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    failing(world, 'remove');
    const { lines, log } = logged();
    const result = await executeRollout(await plan(v2), { ...deps, log });
    expect(result.failure?.message).toBe('h1: master failed: remove app: the engine answered 500');
    expect(result.hosts[0]!.after).toEqual({ master: v1, backup: v1 });
    expect(lines).toContain('[h1] master: nothing → v1.0.0');
  });

  it('a container gone with the error: the role runs nothing', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    failing(world, 'remove', true);
    const result = await executeRollout(await plan(v2), { ...deps, rollBackOnFailure: false });
    expect(result.failure?.message).toBe('h1: master failed: remove app: the engine answered 500');
    expect(result.hosts[0]!.after.master).toBeUndefined();
  });

  it('the host cut off as it fails (nothing can be read back): the belief stays as it was', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    failing(world, 'remove');
    const planned = await plan(v2);
    const host = deps.hosts.get('h1')!;
    host.containers = async () => {
      throw new Error('h1: connection lost');
    };
    const result = await executeRollout(planned, { ...deps, rollBackOnFailure: false });
    expect(result.failure?.message).toBe('h1: master v1.0.0 failed: remove app: the engine answered 500');
  });

  it('the host is asked for the app\'s containers by the app\'s name, which finds both roles', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 });
    failing(world, 'stop');
    const host = deps.hosts.get('h1')!;
    const containers = host.containers.bind(host);
    // As Docker's name filter does: another name finds nothing.
    host.containers = async (name) => (name === 'app' ? containers(name) : {});
    const result = await executeRollout(await plan(v2), { ...deps, rollBackOnFailure: false });
    // Found still running: the failure names what it runs.
    expect(result.failure?.message).toBe('h1: master v1.0.0 failed: stop app: the engine answered 500');
  });
});

describe('the roles beside the web role', () => {
  const worker: RolePolicy = { name: 'worker', hosts: ['h1', 'h2'], count: 1, stopTimeout: 30, ready: { running: 5 } };
  const workerEvents = (world: Estate) => world.events.filter((e) => e.includes('app-worker'));

  it('move as many hosts at once as the web batches did', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 }, { roles: [worker], maxParallel: 2 });
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    // Side by side: both set aside, both started, both asked whether ready.
    expect(workerEvents(world).slice(0, 6)).toEqual(['aside h1/app-worker-1', 'aside h2/app-worker-1', 'run h1/app-worker-1 v2.0.0', 'run h2/app-worker-1 v2.0.0', 'ready? h1/app-worker-1', 'ready? h2/app-worker-1']);
    expect(world.roleServed()).toEqual({ 'h1/app-worker-1': 'v2.0.0', 'h2/app-worker-1': 'v2.0.0' });
  });

  it('move one host at a time after web batches of one', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 }, { roles: [worker] });
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    // h1's worker proven ready before h2's is touched.
    expect(workerEvents(world).slice(0, 6)).toEqual(['aside h1/app-worker-1', 'run h1/app-worker-1 v2.0.0', 'ready? h1/app-worker-1', 'aside h2/app-worker-1', 'run h2/app-worker-1 v2.0.0', 'ready? h2/app-worker-1']);
  });

  it('a worker that cannot be put back after a failed move is a rollback error the user reads, naming host and container', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: v1, backup: v1 }, { roles: [{ ...worker, hosts: ['h1'] }] });
    world.rolesNotReady.add('v2.0.0');
    world.intercept = (call) => {
      if (call.op === 'start' && call.subject === 'app-worker-1-previous') throw new Error('h1: the engine answered 500');
    };
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(false);
    expect(result.rollbackErrors).toEqual(['h1: app-worker-1: h1: the engine answered 500']);
  });
});

describe('what the journal and the next batch are told', () => {
  it('an adopted container a rollback put back is no longer set aside: the journal says so, and the post step leaves it be', async () => {
    const handRun = { version: 'v0.9.0', ref: 'r/app:v0.9.0', digest: '', adopted: true };
    const { world, deps, plan } = memoryEstate(['h1'], { master: handRun, backup: handRun });
    failMasterOf(deps.hosts.get('h1') as unknown as MemoryHost);
    const { calls, journal } = journaled();
    const result = await executeRollout(await plan(v2), { ...deps, journal });
    expect(result.failure?.message).toBe('h1: master v2.0.0 did not become healthy: HTTP 500');
    expect(calls.filter((c) => c.startsWith('aside'))).toEqual(['aside h1/master true', 'aside h1/master false']);
    expect(world.asides.size).toBe(0);
  });

  it('a server that cannot be put back in service after a reload stops the rollout before the next batch', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    const fleet = deps.lb!.driver;
    const setState = fleet.setState.bind(fleet);
    let armed = false;
    fleet.setState = async (server, state) => {
      if (server === 'h1-master' && state === 'ready' && armed) {
        armed = false;
        throw new Error('lb: the admin socket refused the command');
      }
      await setState(server, state);
      // A reload as h1's batch ends puts h1's master back in MAINT.
      if (server === 'h1-backup' && state === 'ready') {
        world.lbState.set('h1-master', 'maint');
        armed = true;
      }
    };
    const result = await executeRollout(await plan(v2), deps);
    expect(result.failure?.message).toBe('h1: master v2.0.0 failed: lb: the admin socket refused the command');
    expect(world.events.filter((e) => e.includes('h2/'))).toEqual([]);
    expect(world.served()).toMatchObject({ 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
  });
});

describe('a batch that failed', () => {
  it('goes straight to its rollback: its servers are not checked for a reload first, and no warning says one happened', async () => {
    const { world, deps, plan, warnings } = memoryEstate(['h1'], { master: v1, backup: v1 });
    failMasterOf(deps.hosts.get('h1') as unknown as MemoryHost);
    world.intercept = (call) => {
      // h1's backup, proven at the start, is in MAINT by the time the batch has failed.
      if (call.op === 'health' && call.subject === 'app' && world.boxes.get('h1/master')?.release === broken) world.lbState.set('h1-backup', 'maint');
    };
    const result = await executeRollout(await plan(v2), deps);
    expect(result.failure?.message).toBe('h1: master v2.0.0 did not become healthy: HTTP 500');
    expect(warnings).toEqual([]);
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0' });
  });
});

describe('an adopted container put back that does not answer healthy, then a cancel', () => {
  it('is never removed by the settle that follows: the user\'s own container stays', async () => {
    const handRun = { version: 'v0.9.0', ref: 'r/app:v0.9.0', digest: '', adopted: true };
    const { world, deps, plan, warnings } = memoryEstate(['h1'], { master: handRun, backup: handRun });
    const original = world.boxes.get('h1/master')!;
    failMasterOf(deps.hosts.get('h1') as unknown as MemoryHost);
    const controller = new AbortController();
    world.intercept = (call) => {
      // The rollback puts the user's master back; it does not answer healthy, and the job is cancelled meanwhile.
      if (call.op === 'rename' && call.subject === 'app-adopted') {
        world.sickOnArrival.add('h1/master');
        controller.abort();
      }
    };
    const result = await executeRollout(await plan(v2), { ...deps, signal: controller.signal });
    expect(result.ok).toBe(false);
    // Set aside and put back again by the settle, which cannot make it healthy either: the post step's.
    expect(world.boxes.get('h1/master')).toBe(original);
    expect(result.cancelled).toEqual({ settled: false, unsettled: ['h1'] });
    expect(warnings).toEqual(['[h1] not settled before the deadline (h1: master v0.9.0 did not become healthy: HTTP 500): the post step finishes it']);
    expect(world.events.filter((e) => e.startsWith('restore'))).toEqual(['restore h1/master v0.9.0', 'restore h1/master v0.9.0']);
  });
});
