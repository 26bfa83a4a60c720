// The in-memory estate's own behaviours that the rollout tests and the simulator lean on: the
// gate before every call, a stop that outlives its caller, the lock, an HAProxy reload.
import { describe, expect, it } from 'vitest';
import type { DeployLock } from '../../src/rollout/ports.js';
import { type Call, type Clock, memoryEstate, release } from '../support/memory-estate.js';

const v1 = release('v1.0.0');

/** A clock whose sleeps wait until the test moves time on. */
class ManualClock implements Clock {
  private ms = 0;
  private timers: { at: number; done: () => void }[] = [];
  now() {
    return this.ms;
  }
  sleep(ms: number) {
    return new Promise<void>((done) => this.timers.push({ at: this.ms + ms, done }));
  }
  advance(ms: number) {
    this.ms += ms;
    const due = this.timers.filter((t) => t.at <= this.ms);
    this.timers = this.timers.filter((t) => t.at > this.ms);
    for (const t of due) t.done();
  }
}

const flush = () => new Promise((done) => setImmediate(done));

describe('the in-memory estate', () => {
  it('passes every call through the gate: latency on the clock, then the interceptor, which may fail it', async () => {
    const { world, deps } = memoryEstate(['h1'], { master: v1, backup: v1 });
    const calls: Call[] = [];
    world.latency = (call) => (call.op === 'pull' ? 2_000 : 10);
    world.intercept = (call) => {
      calls.push(call);
      if (call.op === 'run') throw new Error('h1: engine said no');
    };
    const host = deps.hosts.get('h1')!;
    await host.pull(v1.ref);
    await host.containers('app');
    expect(world.clock.now()).toBe(2_010);
    await expect(host.run(deps.spec('master', v1))).rejects.toThrow('engine said no');
    expect(calls.map((c) => `${c.at} ${c.op}`)).toEqual(['h1 pull', 'h1 containers', 'h1 run']);
  });

  it('a container that ignores SIGTERM stops only at the timeout, even when its caller is gone', async () => {
    const { world, deps } = memoryEstate(['h1'], { master: v1, backup: v1 });
    const clock = new ManualClock();
    world.clock = clock;
    world.boxes.get('h1/master')!.ignoresSigterm = true;
    world.lbState.set('h1-master', 'maint');
    // Nobody awaits the stop: the runner died while it ran.
    void deps.hosts.get('h1')!.setAside('app', 'app-adopted', 30);
    await flush();
    expect(world.boxes.get('h1/master')?.running).not.toBe(false);
    clock.advance(29_999);
    await flush();
    expect(world.boxes.get('h1/master')?.running).not.toBe(false);
    clock.advance(1);
    await flush();
    // Stopped, then renamed: the container is aside, still whole.
    expect(world.boxes.has('h1/master')).toBe(false);
    expect(world.asides.get('h1/master')?.release).toBe(v1);
    expect(world.violations).toEqual([]);
  });

  it('between the stop and the rename, the container is there, stopped', async () => {
    const { world, deps } = memoryEstate(['h1'], { master: v1, backup: v1 });
    world.lbState.set('h1-master', 'maint');
    world.intercept = (call) => {
      if (call.op === 'rename') throw new Error('h1: connection lost');
    };
    await expect(deps.hosts.get('h1')!.setAside('app', 'app-adopted', 1)).rejects.toThrow('connection lost');
    world.intercept = undefined;
    expect((await deps.hosts.get('h1')!.containers('app')).master?.running).toBe(false);
  });

  it('the lock is taken once, and released only by its holder', async () => {
    const { deps } = memoryEstate(['h1'], {});
    const host = deps.hosts.get('h1')!;
    const lock = (runId: string): DeployLock => ({ holder: runId, runUrl: '', runId, attempt: '1', version: 'v1.0.0', since: new Date(0) });
    expect(await host.acquireLock('app-lock', lock('1'), 'img')).toEqual({ acquired: true });
    expect(await host.acquireLock('app-lock', lock('2'), 'img')).toEqual({ acquired: false, current: lock('1') });
    expect(await host.releaseLock('app-lock', { runId: '2', attempt: '1' })).toBe(false);
    expect(await host.releaseLock('app-lock', { runId: '1', attempt: '1' })).toBe(true);
    expect(await host.acquireLock('app-lock', lock('2'), 'img')).toEqual({ acquired: true });
  });

  it('a reload puts every server back in its configured state', async () => {
    const held = new Map([['h1-backup', 'maint' as const]]);
    const { world, deps } = memoryEstate(['h1', 'h2'], { master: v1, backup: v1 }, { held });
    await deps.lb!.driver.setState('h2-master', 'maint');
    world.reload('lb');
    expect(Object.fromEntries(world.lbState)).toEqual({ 'h1-master': 'ready', 'h1-backup': 'maint', 'h2-master': 'ready', 'h2-backup': 'ready' });
  });

  it('a host cut off fails every call to it', async () => {
    const { world, deps } = memoryEstate(['h1'], { master: v1, backup: v1 });
    world.unreachable.add('h1');
    await expect(deps.hosts.get('h1')!.ping()).rejects.toThrow('h1: connection lost (ping)');
  });
});
