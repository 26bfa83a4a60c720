// A rollout cut short at the moments where the defects of issue 19 lived, over the shared
// in-memory estate: the main step cancelled or killed (its runner dying: it never takes another
// step, while the engine finishes what it was asked), then the post step or the run that takes
// the lock over finishing from the journal the main step kept. Each case failed on the code
// before its fix.
import { AsyncLocalStorage } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import type { EnvironmentConfig } from '../../src/config/schema.js';
import { repairInterrupted } from '../../src/pipeline/interrupted.js';
import { JournalWriter, newestJournal, type Journal } from '../../src/pipeline/journal.js';
import { postStepRecord } from '../../src/pipeline/index.js';
import { findServers, type Connected } from '../../src/pipeline/preflight.js';
import { rolloutSummary } from '../../src/report/summary.js';
import { executeRollout, type CanaryGate, type RolloutDeps } from '../../src/rollout/execute.js';
import { acquireDeployLock, type LockPolicy } from '../../src/rollout/lock.js';
import type { HostTarget } from '../../src/rollout/plan.js';
import type { DeployLock, HostDriver, Release } from '../../src/rollout/ports.js';
import { lockOf } from '../support/deploy-lock.js';
import { Estate, MemoryHost, MemoryLoadBalancer, hostTarget, memoryEstate, release, type Box, type Call, type Clock } from '../support/memory-estate.js';

const v1 = release('v1.0.0');
const v2 = release('v2.0.0');
const broken = release('v3.0.0-broken');
const handRun: Release = { version: 'v0.9.0', ref: 'r/app:v0.9.0', digest: '', adopted: true };

/** One process of the runner: a main step, a post step, the next run. Dead: it never takes another step. */
interface Proc {
  name: string;
  dead: boolean;
}
const procs = new AsyncLocalStorage<Proc>();
const never = () => new Promise<never>(() => undefined);

/**
 * Runs processes over one estate: every call a dead process makes blocks for good at the
 * estate's gate, while what the engine was already doing for it goes on (a stop ends on its own
 * clock, as Docker's does after its client is gone). `at` sees every call, and may kill.
 */
function runner(world: Estate, at?: (call: Call, proc: Proc) => Promise<void> | void) {
  world.intercept = async (call) => {
    const proc = procs.getStore();
    if (proc?.dead) return never();
    if (proc && at) await at(call, proc);
    if (proc?.dead) return never();
  };
  let killed: () => void = () => undefined;
  const died = new Promise<void>((done) => (killed = done));
  return {
    /** Starts `run` as process `name`; its promise never settles once it is killed. */
    start<T>(name: string, run: () => Promise<T>): Promise<T> {
      return procs.run({ name, dead: false }, run);
    },
    kill(proc: Proc) {
      proc.dead = true;
      killed();
    },
    died,
  };
}

/** The journal a main step keeps, as its post step reads it from the step state. */
function journalFor(environment = 'production'): { data: Journal; writer: JournalWriter } {
  const data: Journal = { environment, version: 'v2.0.0', touched: [], outOfService: [], heldOn: [] };
  return { data, writer: new JournalWriter(data, undefined, () => undefined) };
}

/** What each host runs now, as the post step reads it (a stopped container counts as absent). */
async function readCurrent(deps: RolloutDeps): Promise<Map<string, HostTarget>> {
  return new Map(await Promise.all([...deps.hosts].map(async ([host, driver]) => [host, hostTarget(await driver.containers('app'))] as const)));
}

/** The post step: the interrupted-run repair from `journal`, as its own process. */
async function postStep(run: ReturnType<typeof runner>, journal: Journal, deps: RolloutDeps) {
  return run.start('post', async () => repairInterrupted(journal, await readCurrent(deps), { ...deps, journal: new JournalWriter(journal, undefined, () => undefined) }));
}

/** A clock whose stop-timeout-long sleeps (a container ignoring SIGTERM) hold until released. */
class HeldStops implements Clock {
  private ms = 0;
  private held: (() => void)[] = [];
  private holding = true;
  now() {
    return this.ms;
  }
  sleep(ms: number): Promise<void> {
    if (ms < 30_000 || !this.holding) {
      this.ms += ms;
      return Promise.resolve();
    }
    return new Promise((done) => this.held.push(() => ((this.ms += ms), done())));
  }
  /** The stops in flight end: the engine killed their containers at the timeout. */
  release() {
    this.holding = false;
    for (const done of this.held.splice(0)) done();
  }
  get stopping() {
    return this.held.length;
  }
}

const settle = () => new Promise((done) => setImmediate(done));

/** h1's very hand-run master serves again: nothing left set aside, no rule broken, every server in service. */
function expectPutBack(world: Estate, original: Box): void {
  expect(world.boxes.get('h1/master')).toBe(original);
  expect(original.running).toBe(true);
  expect(world.asides.size).toBe(0);
  expect(world.violations).toEqual([]);
  expect([...world.lbState.values()]).toEqual(Array(4).fill('ready'));
}

describe('defect 1: the post step and a hand-run (adopted) master whose stop was cut short', () => {
  it('killed between the stop and the rename: the post step puts the very container back, it never removes it', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: handRun, backup: handRun });
    const original = world.boxes.get('h1/master')!;
    const run = runner(world, (call, proc) => {
      if (proc.name === 'main' && call.at === 'h1' && call.op === 'rename' && call.subject === 'app') run.kill(proc);
    });
    const { data, writer } = journalFor();
    void run.start('main', async () => executeRollout(await plan(v2), { ...deps, journal: writer }));
    await run.died;
    expect(world.boxes.get('h1/master')?.running).toBe(false);

    await postStep(run, data, deps);
    expectPutBack(world, original);
  });

  it('killed while the engine still stops it (SIGTERM ignored, stop-timeout 30 s): the post step does not put it back before the stop ends', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: handRun, backup: handRun });
    const clock = new HeldStops();
    world.clock = clock;
    const original = world.boxes.get('h1/master')!;
    original.ignoresSigterm = true;
    const slow = { ...deps, stopTimeoutSeconds: 30 };
    const run = runner(world, async (call, proc) => {
      if (proc.name === 'main' && call.at === 'h1' && call.op === 'stop' && call.subject === 'app') {
        // The job is cancelled 1 s into the master's stop, and the runner kills the main step.
        setImmediate(() => run.kill(proc));
      }
      // A second stop of a container being stopped ends when the first one does.
      if (proc.name === 'post' && call.op === 'stop') clock.release();
    });
    const { data, writer } = journalFor();
    void run.start('main', async () => executeRollout(await plan(v2), { ...slow, journal: writer }));
    await run.died;
    await settle();
    expect(clock.stopping).toBe(1);

    await postStep(run, data, slow);
    // 30 s after it began, the engine ends the first stop, whatever the post step did meanwhile.
    clock.release();
    await settle();
    expect(world.violations).toEqual([]);
    expect(world.boxes.get('h1/master')).toBe(original);
    expect(original.running).toBe(true);
    expect([...world.lbState.values()]).toEqual(Array(4).fill('ready'));
  });

  it('a labelled master whose stop was in flight is stopped for good and replaced, never judged while it dies', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    const clock = new HeldStops();
    world.clock = clock;
    world.boxes.get('h1/master')!.ignoresSigterm = true;
    const slow = { ...deps, stopTimeoutSeconds: 30 };
    const run = runner(world, (call, proc) => {
      if (proc.name === 'main' && call.at === 'h1' && call.op === 'stop' && call.subject === 'app') setImmediate(() => run.kill(proc));
      if (proc.name === 'post' && call.op === 'stop') clock.release();
    });
    const { data, writer } = journalFor();
    void run.start('main', async () => executeRollout(await plan(v2), { ...slow, journal: writer }));
    await run.died;
    await settle();
    await postStep(run, data, slow);
    clock.release();
    await settle();
    expect(world.violations).toEqual([]);
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
    expect(world.boxes.get('h1/master')!.running).not.toBe(false);
  });
});

describe('an adopted (hand-run) container whose set-aside did not finish', () => {
  it('a set-aside the repair could not finish (its rename failed) is not recorded as done: the next repair puts the very container back', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: handRun, backup: handRun });
    const original = world.boxes.get('h1/master')!;
    let repairRenames = 0;
    const run = runner(world, (call, proc) => {
      if (proc.name === 'main' && call.at === 'h1' && call.op === 'rename' && call.subject === 'app') run.kill(proc);
      if (proc.name === 'post' && call.op === 'rename' && call.subject === 'app' && repairRenames++ === 0) throw new Error('h1: rename app failed');
    });
    const { data, writer } = journalFor();
    void run.start('main', async () => executeRollout(await plan(v2), { ...deps, journal: writer }));
    await run.died;

    await expect(postStep(run, data, deps)).rejects.toThrow('h1: could not set the hand-run master aside (h1: rename app failed): it stays as app');
    expect(data.asides ?? []).toEqual([]);
    expect(data.changing).toEqual(['h1/master']);
    // Whoever finishes next (the next run, from the journal kept next to the lock) finishes it.
    await postStep(run, data, deps);
    expectPutBack(world, original);
  });

  it('one the journal says is set aside that the run had put back under its name (killed before its note): set aside again, never removed', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: handRun, backup: handRun });
    const original = world.boxes.get('h1/master')!;
    let renames = 0;
    const run = runner(world, (call, proc) => {
      // The set-aside's rename fails; the rollback sets it aside and renames it back, and the
      // runner dies as it would start it.
      if (proc.name === 'main' && call.op === 'rename' && call.subject === 'app' && renames++ === 0) throw new Error('h1: rename app failed');
      if (proc.name === 'main' && call.op === 'start' && call.subject === 'app') run.kill(proc);
    });
    const { data, writer } = journalFor();
    void run.start('main', async () => executeRollout(await plan(v2), { ...deps, journal: writer }));
    await run.died;
    expect(data.asides).toEqual(['h1/master']);
    expect(world.boxes.get('h1/master')).toBe(original);

    await postStep(run, data, deps);
    expectPutBack(world, original);
  });

  it('one the journal says is set aside but is gone (a run that got further than its journal): the host settles on the release of ours it runs', async () => {
    const { world, deps, plan, warnings } = memoryEstate(['h1'], { master: handRun, backup: handRun });
    const { data, writer } = journalFor();
    let lagging: Journal | undefined;
    world.intercept = (call) => {
      // The journal as it stood while the new master started: what a lock host cut off keeps.
      if (call.op === 'run' && call.subject === 'app') lagging = JSON.parse(JSON.stringify(data)) as Journal;
    };
    expect((await executeRollout(await plan(v2), { ...deps, journal: writer })).ok).toBe(true);
    expect(world.asides.size).toBe(0);
    expect(lagging?.asides).toEqual(['h1/master']);

    world.intercept = undefined;
    await repairInterrupted(lagging!, await readCurrent(deps), { ...deps, journal: new JournalWriter(lagging!, undefined, () => undefined) });
    expect(warnings.join('\n')).toContain('[h1] the hand-run master it ran before is gone (no app-adopted): settling on v2.0.0, which it runs');
    expect(world.served()).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0' });
    expect(world.violations).toEqual([]);
    expect([...world.lbState.values()]).toEqual(['ready', 'ready']);
  });
});

describe('the repair and a server the cut-short run put back in service before it journaled so', () => {
  /**
   * Host 1's new master goes drain, MAINT, then `ready` (the third set); the runner dies on the
   * read that follows, before the journal says it is back in service. `lbDown()`: from then on,
   * the load balancer cannot be reached.
   */
  async function diedAfterReady() {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    let sets = 0;
    let down = false;
    const run = runner(world, (call, proc) => {
      if (down && call.at === 'lb') throw new Error('lb: connection refused');
      if (proc.name !== 'main' || call.at !== 'lb') return;
      if (call.op === 'lb-set' && call.subject === 'h1-master') sets++;
      else if (call.op === 'lb-status' && sets === 3) run.kill(proc);
    });
    const { data, writer } = journalFor();
    void run.start('main', async () => executeRollout(await plan(v2), { ...deps, journal: writer }));
    await run.died;
    expect(world.lbState.get('h1-master')).toBe('ready');
    expect(data.changing).toContain('h1/master');
    expect(data.outOfService).toContain('h1-master');
    return { world, deps, run, data, lbDown: () => (down = true) };
  }

  it('takes the server out of service on every load balancer before it stops the container, never stopping it in service', async () => {
    const { world, deps, run, data } = await diedAfterReady();
    await postStep(run, data, deps);
    expect(world.violations).toEqual([]);
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
  });

  it('a load balancer out of reach fails the repair and leaves the container running', async () => {
    const { world, deps, run, data, lbDown } = await diedAfterReady();
    const serving = world.boxes.get('h1/master')!;
    lbDown();
    await expect(postStep(run, data, deps)).rejects.toThrow(/connection refused/);
    expect(world.violations).toEqual([]);
    expect(world.boxes.get('h1/master')).toBe(serving);
    expect(serving.running).not.toBe(false);
  });
});

describe('defect 2: a canary between "in service" and its hold is unjudged', () => {
  /** A canary that lets every release through. */
  const canary: CanaryGate = { hold: async () => undefined, check: async () => undefined };
  /** `cut` runs the moment h1's new master is in service, before its hold began. */
  const at = (cut: () => void) => ({
    changing: async () => {},
    serving: (host: string, role: string) => {
      if (host === 'h1' && role === 'master') cut();
    },
  });

  it('cancelled there: the host goes back to what it ran, not onto the release never judged', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    const controller = new AbortController();
    const result = await executeRollout(await plan(v2, 60), { ...deps, signal: controller.signal, canary, observer: at(() => controller.abort()) });
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
    expect(world.violations).toEqual([]);
  });

  it('killed there: the journal already says unproven, so the post step takes the host back', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    const run = runner(world);
    const { data, writer } = journalFor();
    void run.start('main', async () =>
      executeRollout(await plan(v2, 60), {
        ...deps,
        journal: writer,
        // Killed as the hold begins, the first moment a process can die after the master went in service.
        canary: { ...canary, hold: () => (run.kill(procs.getStore()!), never()) },
      }),
    );
    await run.died;
    expect(world.boxes.get('h1/master')!.release).toBe(v2);
    expect(data.unproven).toEqual(['h1']);

    await postStep(run, data, deps);
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
    expect(world.violations).toEqual([]);
  });
});

describe('defect 3: the post step without a haproxy section', () => {
  it('a master killed while starting is not proven: the host goes back to what it ran, and the repair ends', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 }, { lb: false });
    const run = runner(world, (call, proc) => {
      if (proc.name === 'main' && call.at === 'h1' && call.op === 'health' && call.subject === 'app' && world.boxes.get('h1/master')?.release === broken) run.kill(proc);
    });
    const { data, writer } = journalFor();
    void run.start('main', async () => executeRollout(await plan(broken), { ...deps, journal: writer }));
    await run.died;

    await postStep(run, data, deps);
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
  });
});

describe('defect 4: a cancel during the automatic rollback', () => {
  it('settles the host it cut short: no host stays split with every server in service', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
    const host2 = deps.hosts.get('h2')! as unknown as MemoryHost;
    const runOn2 = host2.run.bind(host2);
    host2.run = async (spec) => runOn2(spec.role === 'master' && spec.release === v2 ? { ...spec, release: broken } : spec);
    const controller = new AbortController();
    let runsOn1 = 0;
    world.intercept = (call) => {
      // h1's third container start is its master going back to v1.0.0: the job is cancelled then.
      if (call.at === 'h1' && call.op === 'run' && ++runsOn1 === 3) controller.abort();
    };
    const { writer } = journalFor();
    const result = await executeRollout(await plan(v2), { ...deps, signal: controller.signal, journal: writer });
    expect(result.failure?.host).toBe('h2');
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
    expect(world.violations).toEqual([]);
    expect(writer.pending()).toBe(false);
  });
});

describe('defect 5: a failure and a cancel in the same batch', () => {
  it('the summary does not call a host that stays on the new release rolled back', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 }, { maxParallel: 2 });
    const host1 = deps.hosts.get('h1')! as unknown as MemoryHost;
    const runOn1 = host1.run.bind(host1);
    host1.run = async (spec) => runOn1(spec.role === 'master' && spec.release === v2 ? { ...spec, release: broken } : spec);
    const controller = new AbortController();
    world.intercept = async (call) => {
      // h1's new master failed; as it is removed, h2 is done and the job is cancelled.
      if (call.at === 'h1' && call.op === 'stop' && world.boxes.get('h1/master')?.release === broken) {
        while (!world.events.includes('ready h2-backup')) await settle();
        controller.abort();
      }
    };
    const result = await executeRollout(await plan(v2), { ...deps, signal: controller.signal });
    expect(result.failure?.host).toBe('h1');
    expect(result.cancelled?.settled).toBe(true);
    expect(world.served()['h2/master']).toBe('v2.0.0');
    expect(result.hosts.map((h) => [h.host, h.rolledBack])).toEqual([['h1', false], ['h2', false]]);
    let text = '';
    const summary = { addHeading: () => summary, addRaw: (t: string) => ((text += t), summary), addTable: () => summary, addDetails: () => summary };
    rolloutSummary(summary as never, { environment: 'production', target: v2, result });
    expect(text).not.toContain('Rolled back');
    expect(text).toContain('Cancelled before the rollback: each host runs one release, in service');
  });
});

/** An environment over the estate's hosts and its one load balancer, connected as pre-flight connects it. */
function connectedTo(world: Estate, deps: RolloutDeps): Connected {
  const env = {
    name: 'production',
    hosts: world.hosts,
    ports: { master: 50000, backup: 50001, 'master-spare': 50002, 'backup-spare': 50003 },
    rollout: { procedure: 'backup-first' },
    haproxy: { hosts: ['lb'], backend: 'app', 'drain-timeout': 0, 'on-drain-timeout': 'fail' },
  } as unknown as EnvironmentConfig;
  return { env, image: 'r/app', hosts: deps.hosts as never, lbs: [{ host: 'lb', runtime: new MemoryLoadBalancer('lb', world) as never }], dispose: () => undefined };
}

/** A run that took a dead run's lock over: finishes what its journal `left` says, then deploys v2, which succeeds. */
async function finishThenDeploy(connected: Connected, deps: RolloutDeps, plan: ReturnType<typeof memoryEstate>['plan'], left: Journal) {
  const current = await readCurrent(deps);
  const lb = (await findServers(connected, { tookOverLock: true, leftBy: left, running: current }))!;
  await repairInterrupted(left, current, { ...deps, lb });
  const result = await executeRollout(await plan(v2), { ...deps, lb });
  expect(result.ok).toBe(true);
}

/** Two hosts on v1, host 2's backup set to MAINT by the operator before any deploy. */
function operatorHeldEstate() {
  const estate = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 });
  estate.world.lbState.set('h2-backup', 'maint');
  estate.world.lbConfig.get('lb')!.set('h2-backup', 'maint');
  return { ...estate, connected: connectedTo(estate.world, estate.deps) };
}

describe('defect 6: a takeover after a dead runner, with a server the operator held', () => {
  it('finishes what the dead run left and leaves the operator\'s server held', async () => {
    const { world, deps, plan, connected } = operatorHeldEstate();
    const run = runner(world, (call, proc) => {
      // Run A's runner dies while host 1's master is out of service.
      if (proc.name === 'A' && call.at === 'h1' && call.op === 'run') run.kill(proc);
    });
    const { data, writer } = journalFor();
    void run.start('A', async () => {
      const current = await readCurrent(deps);
      const lb = (await findServers(connected, { tookOverLock: false, running: current }))!;
      data.heldOn = lb.heldOn;
      return executeRollout(await plan(v2), { ...deps, lb, journal: writer });
    });
    await run.died;
    expect(world.lbState.get('h1-master')).toBe('maint');

    // Run B takes the stale lock over, reads A's journal from it, and finishes what A left.
    await run.start('B', () => finishThenDeploy(connected, deps, plan, data));
    expect(world.lbState.get('h2-backup')).toBe('maint');
    expect(world.lbState.get('h1-master')).toBe('ready');
    expect(world.violations).toEqual([]);
    expect(Object.values(world.served())).toEqual(Array(4).fill('v2.0.0'));
  });

  it('adopted containers a dead run set aside are discarded once their host settles on a release of ours', async () => {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: handRun, backup: handRun });
    const run = runner(world, (call, proc) => {
      // The new master is proven and in service; the runner dies while the backup is replaced.
      if (proc.name === 'main' && call.at === 'h1' && call.op === 'run' && call.subject === 'app-backup') run.kill(proc);
    });
    const { data, writer } = journalFor();
    void run.start('main', async () => executeRollout(await plan(v2), { ...deps, journal: writer }));
    await run.died;
    expect(world.asides.size).toBe(2);

    await postStep(run, data, deps);
    expect(world.asides.size).toBe(0);
    expect(world.served()).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0', 'h2/master': 'v0.9.0', 'h2/backup': 'v0.9.0' });
    expect(world.violations).toEqual([]);
  });
});

describe('finding: the journal next to the lock stops following the run when the lock\'s host cannot take it', () => {
  it('no change is made that the journal next to the lock does not announce: a takeover puts back every server the run took out, and the operator\'s stay held', async () => {
    const { world, deps, plan, connected } = operatorHeldEstate();
    const h1 = deps.hosts.get('h1')!;
    await h1.acquireLock('app-deploy-lock', lockOf('1'), 'img');
    // Once run A reaches host 2, the lock's host takes no more journal writes from it (cut
    // off from the runner, its disk full); A's runner dies as it stops host 2's master.
    let lockHostLost = false;
    const run = runner(world, (call, proc) => {
      if (proc.name !== 'A') return;
      if (call.at === 'h2' && call.op === 'health') lockHostLost = true;
      if (call.at === 'h2' && call.op === 'stop' && call.subject === 'app') run.kill(proc);
      if (lockHostLost && call.op === 'journal') throw new Error('h1: connection lost (journal app-deploy-lock)');
    });
    const data: Journal = { environment: 'production', version: 'v2.0.0', touched: [], outOfService: [], heldOn: [] };
    const writer = new JournalWriter(data, { host: h1, lock: 'app-deploy-lock', warn: () => undefined }, () => undefined);
    const a = run.start('A', async () => {
      await writer.save();
      const lb = (await findServers(connected, { tookOverLock: false, running: await readCurrent(deps) }))!;
      await writer.note({ heldOn: lb.heldOn });
      return executeRollout(await plan(v2), { ...deps, lb, journal: writer });
    });
    await Promise.race([run.died, a]);

    // Run B takes the lock over (A's run has ended) and finishes what A left, from the journal kept in the lock.
    await run.start('B', async () => {
      const taken = await acquireDeployLock(h1, 'app-deploy-lock', lockOf('2'), 'img', {
        config: { wait: 0, 'stale-after': 3600, takeover: true },
        runEnded: async () => true,
        sleep: async () => undefined,
        now: () => new Date(),
        warn: () => undefined,
        info: () => undefined,
      });
      await finishThenDeploy(connected, deps, plan, newestJournal(taken.journal ?? [])!);
    });
    expect(world.lbState.get('h2-master')).toBe('ready');
    expect(world.lbState.get('h2-backup')).toBe('maint');
    expect(world.violations).toEqual([]);
    expect(Object.values(world.served())).toEqual(Array(4).fill('v2.0.0'));
  });
});

describe('a journal write that fails right after an adopted container was set aside', () => {
  it('the outcome says the role runs nothing, not the container set aside', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], { master: handRun, backup: handRun });
    const h1 = deps.hosts.get('h1')!;
    await h1.acquireLock('l', lockOf('1'), 'img');
    // The lock's host takes no journal write once the master is renamed aside.
    world.intercept = (call) => {
      if (call.op === 'journal' && world.asides.size > 0) throw new Error('h1: connection lost (journal l)');
    };
    const data: Journal = { environment: 'production', touched: [], outOfService: [], heldOn: [] };
    const result = await executeRollout(await plan(v2), { ...deps, journal: new JournalWriter(data, { host: h1, lock: 'l', warn: () => undefined }, () => undefined) });
    expect(result.ok).toBe(false);
    expect(result.failure?.message).toContain('could not keep the journal next to the deploy lock on h1');
    expect(world.asides.has('h1/master')).toBe(true);
    expect(result.hosts[0]!.after.master).toBeUndefined();
  });
});

describe('the journal kept next to the lock', () => {
  const t0 = new Date('2026-01-01T00:00:00Z');
  const lock = (runId: string, since = t0): DeployLock => ({ holder: `octocat (#${runId})`, runUrl: '', runId, attempt: '1', version: 'v2.0.0', since });
  const policy = (overrides: Partial<LockPolicy> = {}) => {
    let now = t0.getTime();
    const lines: string[] = [];
    const p: LockPolicy = {
      config: { wait: 0, 'stale-after': 3600, takeover: true },
      runEnded: async () => undefined,
      signOfLife: (texts) => {
        const aliveAt = newestJournal(texts)?.aliveAt;
        return aliveAt ? new Date(aliveAt) : undefined;
      },
      sleep: async (ms) => void (now += ms),
      now: () => new Date(now),
      warn: (l) => lines.push(`warn: ${l}`),
      info: (l) => lines.push(`info: ${l}`),
      ...overrides,
    };
    return { p, lines, at: (ms: number) => (now = ms), advance: (ms: number) => (now += ms) };
  };

  it('is written before each change, in two copies: a takeover reads the newest whole one', async () => {
    const world = new Estate(['h1']);
    const host: HostDriver = new MemoryHost('h1', world);
    await host.acquireLock('app-deploy-lock', lock('1'), 'img');
    const data: Journal = { environment: 'production', touched: [], outOfService: [], heldOn: [] };
    const writer = new JournalWriter(data, { host, lock: 'app-deploy-lock', warn: () => undefined }, () => undefined);
    await writer.touched('h1', { master: v1, backup: v1 });
    await writer.outOfService('h1:50000', true);
    const texts = world.lockJournals.get('h1/app-deploy-lock')!;
    expect(texts).toHaveLength(2);
    expect(newestJournal(texts)?.outOfService).toEqual(['h1:50000']);
    // A copy cut off mid-write: the other one is whole.
    expect(newestJournal([texts[0]!.slice(0, 20), texts[1]!])?.touched).toEqual(['h1']);

    const { p } = policy({ runEnded: async () => true });
    const taken = await acquireDeployLock(host, 'app-deploy-lock', lock('2'), 'img', p);
    expect(taken.tookOverFrom?.runId).toBe('1');
    expect(newestJournal(taken.journal!)?.outOfService).toEqual(['h1:50000']);
    expect(world.lockJournals.has('h1/app-deploy-lock')).toBe(false);
  });

  it('a write cut off mid-way is retried in the same file: two in a row still leave the last whole copy', async () => {
    const world = new Estate(['h1']);
    const host = new MemoryHost('h1', world);
    await host.acquireLock('l', lock('1'));
    let cut = false;
    const cutting: HostDriver = Object.assign(Object.create(host) as MemoryHost, {
      writeLockJournal: async (name: string, slot: 0 | 1, text: string) => {
        await host.writeLockJournal(name, slot, cut ? text.slice(0, 20) : text);
        if (cut) throw new Error('h1: connection lost (journal l)');
      },
    });
    const data: Journal = { environment: 'production', touched: [], outOfService: [], heldOn: [] };
    const writer = new JournalWriter(data, { host: cutting, lock: 'l', warn: () => undefined }, () => undefined);
    await writer.touched('h1', { master: v1, backup: v1 });
    cut = true;
    await expect(writer.outOfService('h1:50000', true)).rejects.toThrow('could not keep the journal next to the deploy lock on h1');
    await expect(writer.outOfService('h1:50000', false)).rejects.toThrow('no change is made that a run taking the lock over would not know of');
    expect(newestJournal(world.lockJournals.get('h1/l')!)?.touched).toEqual(['h1']);
    // Once the host takes writes again, the next one carries everything, even with nothing new to say.
    cut = false;
    await writer.outOfService('h1:50000', false);
    expect(newestJournal(world.lockJournals.get('h1/l')!)?.seq).toBe(4);
  });

  it('refreshed while its run lives: a lock older than stale-after with a recent sign of life is live', async () => {
    const world = new Estate(['h1']);
    const host: HostDriver = new MemoryHost('h1', world);
    await host.acquireLock('l', lock('1'), 'img');
    const data: Journal = { environment: 'production', touched: [], outOfService: [], heldOn: [] };
    const later = new Date(t0.getTime() + 7000_000);
    await new JournalWriter(data, { host, lock: 'l', warn: () => undefined }, () => undefined, () => later).save();
    const { p, at } = policy();
    at(later.getTime() + 60_000);
    await expect(acquireDeployLock(host, 'l', lock('2'), 'img', p)).rejects.toThrow('another deploy holds the lock');
    // No sign of life for longer than stale-after: stale.
    at(later.getTime() + 3601_000);
    expect((await acquireDeployLock(host, 'l', lock('2'), 'img', p)).tookOverFrom?.runId).toBe('1');
  });

  it('an error from GitHub never counts as "not running": an old lock stays live', async () => {
    const world = new Estate(['h1']);
    const host: HostDriver = new MemoryHost('h1', world);
    await host.acquireLock('l', lock('1'), 'img');
    const { p, lines, at } = policy({ runEnded: async () => Promise.reject(new Error('GitHub answered 502')) });
    at(t0.getTime() + 7200_000);
    await expect(acquireDeployLock(host, 'l', lock('2'), 'img', p)).rejects.toThrow('another deploy holds the lock');
    expect(world.locks.get('h1/l')?.runId).toBe('1');
    expect(lines.join('\n')).toContain('GitHub gave no answer on whether run 1 has ended (GitHub answered 502): its lock counts as live');
  });

  it('the wait for a live lock ends at once when the job is cancelled', async () => {
    const world = new Estate(['h1']);
    const host: HostDriver = new MemoryHost('h1', world);
    await host.acquireLock('l', lock('1'), 'img');
    const controller = new AbortController();
    let slept = 0;
    const waiting = policy({ config: { wait: 3600, 'stale-after': 3600, takeover: false }, runEnded: async () => false, signal: controller.signal });
    const { p } = waiting;
    p.sleep = async (ms) => {
      waiting.advance(ms);
      if (++slept === 2) controller.abort();
    };
    await expect(acquireDeployLock(host, 'l', lock('2'), 'img', p)).rejects.toThrow('cancelled while waiting for the deploy lock');
    expect(slept).toBe(2);
  });
});

describe('the post step\'s deployment record', () => {
  const journal = (ended?: Journal['ended']): Journal => ({
    environment: 'production',
    version: 'v2.0.0',
    touched: ['h1', 'h2'],
    before: { h1: { master: v1, backup: v1 }, h2: { master: v1, backup: v1 } },
    outOfService: [],
    heldOn: [],
    ...(ended ? { ended } : {}),
  });
  const on = (master: Release, backup = master): HostTarget => ({ master, backup });

  it.each<[string, Journal, Map<string, HostTarget>, string]>([
    ['a cancel it settled back', journal({ how: 'cancelled', message: 'cancelled in production' }), new Map([['h1', on(v1)]]), 'Cancelled; the post step settled h1 on the old release v1.0.0'],
    ['a failed rollback it finished, not a cancel', journal({ how: 'failed', message: 'v2.0.0 to production failed' }), new Map([['h1', on(v1)]]), 'Failed, rollback unfinished; the post step finished the rollback (h1 back on v1.0.0)'],
    ['a runner that died, every host on the release', journal(), new Map([['h1', on(v2)], ['h2', on(v2)]]), 'Runner stopped mid-rollout; the post step kept the new release v2.0.0 on h1, h2 (every host runs v2.0.0)'],
    ['hosts that ended differently, each said', journal(), new Map([['h1', on(v2)], ['h2', on(v1)]]), 'Runner stopped mid-rollout; the post step kept the new release v2.0.0 on h1, and settled h2 on the old release v1.0.0'],
    ['a host on neither release', journal(), new Map([['h1', on(v1, v2)]]), 'Runner stopped mid-rollout; the post step settled h1 on v1.0.0/v2.0.0'],
  ])('says what it did: %s', (_case, j, settled, expected) => {
    expect(postStepRecord(j, settled, settled)).toBe(expected);
  });

  it('nothing settled: nothing had changed', () => {
    expect(postStepRecord(journal({ how: 'cancelled', message: 'cancelled' }), new Map(), new Map())).toBe('Cancelled; nothing had changed');
  });
});

describe('a no-gap switch cut short by a kill: the post step finishes it from what the hosts and load balancers say', () => {
  /**
   * Host 1's master is switching without a gap (app-old stepped aside, still serving) when the
   * main step's runner dies at `killAt`. The post step starts fresh: the slots from the
   * containers' labels, as readHosts reads them.
   */
  async function killedMidSwitch(killAt: (call: Call) => boolean) {
    const { world, deps, plan } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 }, { noGap: true });
    const run = runner(world, (call, proc) => {
      if (proc.name === 'main' && killAt(call)) run.kill(proc);
    });
    const { data, writer } = journalFor();
    void run.start('main', async () => executeRollout(await plan(v2), { ...deps, journal: writer }));
    await run.died;
    expect(world.olds.has('h1/master')).toBe(true);
    expect(data.changing).toEqual(['h1/master']);
    const active = new Map(
      await Promise.all(
        [...deps.hosts].map(async ([host, driver]) => {
          const found = await driver.containers('app');
          return [host, Object.fromEntries((['master', 'backup'] as const).flatMap((role) => (found[role]?.running && found[role]?.slot ? [[role, found[role]!.slot]] : [])))] as const;
        }),
      ),
    );
    const fresh: RolloutDeps = { ...deps, lb: { ...deps.lb!, slots: { spares: deps.lb!.slots!.spares, active } } };
    return { world, run, data, deps: fresh };
  }

  it('the new master proven (its server UP on every load balancer): the old one is drained, put in MAINT, stopped and removed; the host settles on the new release', async () => {
    // Killed as it drains the old server: the new one has gone ready.
    const { world, run, data, deps } = await killedMidSwitch((call) => call.op === 'lb-set' && call.subject === 'h1-master');
    expect(world.lbState.get('h1-master-b')).toBe('ready');
    await postStep(run, data, deps);
    expect(world.violations).toEqual([]);
    expect([...world.olds.keys()]).toEqual([]);
    expect(world.served()).toMatchObject({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0' });
    expect(world.boxes.get('h1/master')?.slot).toBe('b');
    expect(world.lbState.get('h1-master')).toBe('maint');
    expect(world.lbState.get('h1-master-b')).toBe('ready');
    expect(data.changing ?? []).toEqual([]);
    expect(data.outOfService).toEqual([]);
  });

  it('the new master not proven (killed while it started): its server stays in MAINT, it is removed, app-old gets its name back and serves', async () => {
    const { world, run, data, deps } = await killedMidSwitch((call) => call.at === 'h1' && call.op === 'health' && call.subject === 'app');
    expect(world.boxes.get('h1/master')?.release).toBe(v2);
    await postStep(run, data, deps);
    expect(world.violations).toEqual([]);
    expect([...world.olds.keys()]).toEqual([]);
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
    expect(world.boxes.get('h1/master')?.slot).toBeUndefined();
    expect(world.lbState.get('h1-master')).toBe('ready');
    expect(world.lbState.get('h1-master-b')).toBe('maint');
    expect(data.changing ?? []).toEqual([]);
  });

  it('no new container yet (killed between the rename and the start): app-old gets its name back and serves, the spare stays in MAINT', async () => {
    const { world, run, data, deps } = await killedMidSwitch((call) => call.at === 'h1' && call.op === 'run' && call.subject === 'app');
    expect(world.boxes.has('h1/master')).toBe(false);
    await postStep(run, data, deps);
    expect(world.violations).toEqual([]);
    expect([...world.olds.keys()]).toEqual([]);
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
    expect(world.lbState.get('h1-master')).toBe('ready');
    expect(world.lbState.get('h1-master-b')).toBe('maint');
  });
});
