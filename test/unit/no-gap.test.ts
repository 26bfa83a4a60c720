// rollout.procedure: no-gap (src/rollout/no-gap.ts) against the in-memory estate, which checks at
// every operation that HAProxy never routes to a container that is not healthy. On top of that,
// these tests hold the opt-in's own promises at every operation: every host keeps a master and a
// backup in service the whole time, and runs at most one container more than its two.
import { describe, expect, it } from 'vitest';
import type { EnvironmentConfig } from '../../src/config/schema.js';
import { findServers, PreflightError, type Connected } from '../../src/pipeline/preflight.js';
import { Ledger } from '../../src/receipt/ledger.js';
import { executeRollout } from '../../src/rollout/execute.js';
import type { Role, ServerCounters } from '../../src/rollout/ports.js';
import { Estate, MemoryHost, MemoryLoadBalancer, memoryEstate, parseServer, release, type EstateOptions } from '../support/memory-estate.js';

const v1 = release('v1.0.0');
const v2 = release('v2.0.0');
const v3 = release('v3.0.0');
const sick = release('v3.0.0-broken');

/** The estate with spare servers and the opt-in, watched at every operation for the opt-in's promises. */
function setup(hosts: string[], options: EstateOptions = {}) {
  const estate = memoryEstate(hosts, { master: v1, backup: v1 }, { noGap: true, ...options });
  const { world } = estate;
  const broken: string[] = [];
  const check = world.check.bind(world);
  world.check = (event: string) => {
    check(event);
    for (const host of hosts) {
      for (const role of ['master', 'backup'] as const) {
        const inService = [...world.lbState.keys()].some((s) => parseServer(s).host === host && parseServer(s).role === role && world.serving(s));
        if (!inService) broken.push(`${event}: ${host} has no ${role} in service`);
      }
      const containers = [...world.boxes.keys(), ...world.olds.keys()].filter((k) => k.startsWith(`${host}/`));
      if (containers.length > 3) broken.push(`${event}: ${host} runs ${containers.length} containers`);
    }
  };
  return { ...estate, broken };
}

const states = (world: Estate) => Object.fromEntries(world.lbState);

/** A journal that keeps what a post step would have to finish: servers out of service, roles changing. */
function pendingJournal() {
  const pending = new Set<string>();
  const mark = (what: string, yes: boolean) => void (yes ? pending.add(what) : pending.delete(what));
  return {
    pending,
    journal: {
      touched: () => undefined,
      outOfService: (server: string, out: boolean) => mark(`out ${server}`, out),
      unproven: () => undefined,
      changing: (host: string, role: string, yes: boolean) => mark(`changing ${host} ${role}`, yes),
      aside: () => undefined,
    },
  };
}

describe('no-gap rollout', () => {
  it('starts each new container in the spare slot and proves it before the old one stops', async () => {
    const { world, deps, plan, broken, lines } = setup(['h1', 'h2'], { maxParallel: 2 });
    const { pending, journal } = pendingJournal();
    const result = await executeRollout(await plan(v2), { ...deps, journal });
    expect(result.ok).toBe(true);
    // Nothing left for a post step: the old servers are out of service by design.
    expect([...pending]).toEqual([]);
    expect(world.violations).toEqual([]);
    expect(broken).toEqual([]);
    expect(world.served()).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0', 'h2/master': 'v2.0.0', 'h2/backup': 'v2.0.0' });
    expect([...world.olds.keys()]).toEqual([]);
    expect(states(world)).toEqual({
      'h1-master': 'maint', 'h1-backup': 'maint', 'h1-master-b': 'ready', 'h1-backup-b': 'ready',
      'h2-master': 'maint', 'h2-backup': 'maint', 'h2-master-b': 'ready', 'h2-backup-b': 'ready',
    });
    expect(deps.lb!.slots!.active.get('h1')).toEqual({ master: 'b', backup: 'b' });
    // The new one is healthy and UP before the old one is drained; the old one stops last.
    expect(world.events.filter((e) => e.includes('h1') && !e.startsWith('check'))).toEqual([
      'health h1/backup',
      'maint h1-master-b', 'rename h1/master app → app-old', 'run h1/master v2.0.0', 'health h1/master', 'ready h1-master-b',
      'drain h1-master', 'maint h1-master', 'stop h1/master',
      'maint h1-backup-b', 'rename h1/backup app-backup → app-backup-old', 'run h1/backup v2.0.0', 'health h1/backup', 'ready h1-backup-b',
      'drain h1-backup', 'maint h1-backup', 'stop h1/backup',
    ]);
    expect(lines).toContain('[h1] master: v1.0.0 → v2.0.0 without a gap (h1-master-b takes over from h1-master)');
  });

  it('alternates the slot with each release, and a later backup-first deploy keeps the slot', async () => {
    const { world, deps, plan, broken } = setup(['h1', 'h2']);
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    expect((await executeRollout(await plan(v3), deps)).ok).toBe(true);
    expect(deps.lb!.slots!.active.get('h1')).toEqual({ master: 'a', backup: 'a' });
    expect(states(world)['h1-master']).toBe('ready');
    expect(states(world)['h1-master-b']).toBe('maint');
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    expect(broken).toEqual([]);
    // The opt-in turned off: replaced in place (each role out of service meanwhile), in the slot the container runs in (b).
    const { procedure: _, ...backupFirst } = deps;
    expect((await executeRollout(await plan(v3), backupFirst)).ok).toBe(true);
    expect(world.violations).toEqual([]);
    expect(world.served()['h2/master']).toBe('v3.0.0');
    expect(world.boxes.get('h2/master')!.slot).toBe('b');
    expect(states(world)['h2-master-b']).toBe('ready');
    expect(states(world)['h2-master']).toBe('maint');
  });

  it('a release that never becomes healthy never serves: the old container keeps its name and its server, and every host is rolled back', async () => {
    const { world, deps, plan, broken } = setup(['h1', 'h2']);
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    const { pending, journal } = pendingJournal();
    const result = await executeRollout(await plan(sick), { ...deps, journal });
    expect(result.ok).toBe(false);
    expect([...pending]).toEqual([]);
    expect(result.failure?.reason).toBe('did not become healthy: HTTP 500');
    expect(world.violations).toEqual([]);
    expect(broken).toEqual([]);
    expect(Object.values(world.served())).toEqual(Array(4).fill('v2.0.0'));
    expect([...world.olds.keys()]).toEqual([]);
    expect(deps.lb!.slots!.active.get('h1')).toEqual({ master: 'b', backup: 'b' });
    expect(states(world)).toMatchObject({ 'h1-master-b': 'ready', 'h1-master': 'maint', 'h1-backup-b': 'ready' });
  });

  it('a canary that fails its hold is rolled back without a gap too', async () => {
    const { world, deps, plan, broken } = setup(['h1', 'h2']);
    const canary = { hold: async () => 'v2.0.0 erred', check: async () => undefined };
    const result = await executeRollout(await plan(v2, 5), { ...deps, canary });
    expect(result.failure?.reason).toBe('v2.0.0 erred');
    expect(world.violations).toEqual([]);
    expect(broken).toEqual([]);
    expect(Object.values(world.served())).toEqual(Array(4).fill('v1.0.0'));
    // Back in the slot it started from, through the spare: v1 started anew in slot a.
    expect(world.boxes.get('h1/master')!.slot).toBeUndefined();
    expect(states(world)).toMatchObject({ 'h1-master': 'ready', 'h1-master-b': 'maint' });
  });

  it('survives a load balancer reload between the new server going UP and the old one stopping', async () => {
    const { world, deps, plan, broken, warnings } = setup(['h1', 'h2']);
    const lb = deps.lb!.driver;
    const setState = lb.setState.bind(lb);
    let reloaded = false;
    lb.setState = async (server, state) => {
      await setState(server, state);
      // Reloaded from the configuration (no state file): the spare back to MAINT, the old server READY.
      if (server === 'h1-master' && state === 'maint' && !reloaded) {
        reloaded = true;
        world.reload('lb');
      }
    };
    const result = await executeRollout(await plan(v2), deps);
    expect(reloaded).toBe(true);
    expect(result.ok).toBe(true);
    expect(world.violations).toEqual([]);
    expect(warnings).toEqual([]);
    // Not before the old container stops: the new server is put back in service, the old one out.
    const ready = world.events.indexOf('ready h1-master-b', world.events.indexOf('reload lb'));
    expect(ready).toBeGreaterThan(0);
    expect(world.events.indexOf('stop h1/master')).toBeGreaterThan(ready);
    expect(states(world)).toMatchObject({ 'h1-master': 'maint', 'h1-master-b': 'ready', 'h2-master-b': 'ready' });
    // The one moment: the reload undid the spare's ready, and the old server was taken out again before it was redone.
    expect(broken).toEqual(['maint h1-master: h1 has no master in service']);
  });

  it('cancelled while the new container starts: it is removed and the old one keeps serving under its name', async () => {
    const { world, deps, plan, broken } = setup(['h1', 'h2']);
    const controller = new AbortController();
    const host = deps.hosts.get('h1')! as unknown as MemoryHost;
    const waitHealthy = host.waitHealthy.bind(host);
    host.waitHealthy = async (name: string) => {
      if (name === 'app' && world.boxes.get('h1/master')?.release === v2) {
        controller.abort();
        return { healthy: false as const, detail: 'cancelled', logs: '' };
      }
      return waitHealthy(name);
    };
    const { pending, journal } = pendingJournal();
    const result = await executeRollout(await plan(v2), { ...deps, signal: controller.signal, journal });
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    expect([...pending]).toEqual([]);
    expect(world.violations).toEqual([]);
    expect(broken).toEqual([]);
    expect(Object.values(world.served())).toEqual(Array(4).fill('v1.0.0'));
    expect([...world.olds.keys()]).toEqual([]);
    expect(states(world)).toMatchObject({ 'h1-master': 'ready', 'h1-master-b': 'maint' });
  });

  it('cancelled while the old server drains: the new one is drained out again and removed', async () => {
    const { world, deps, plan, broken } = setup(['h1']);
    world.sessions.set('h1-master', 1);
    const controller = new AbortController();
    const result = await executeRollout(await plan(v2), {
      ...deps,
      lb: { ...deps.lb!, drainTimeoutSeconds: 60 },
      signal: controller.signal,
      sleep: async () => controller.abort(),
    });
    expect(result.cancelled?.settled).toBe(true);
    expect(world.violations).toEqual([]);
    expect(broken).toEqual([]);
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0' });
    expect(world.events).toContain('maint h1-master-b');
    expect(states(world)).toMatchObject({ 'h1-master': 'ready', 'h1-master-b': 'maint' });
  });

  it('leaves the backup-first procedure to a first deploy and to a server the operator holds', async () => {
    const held = new Map([['h2-master', 'maint' as const]]);
    const { world, deps, plan } = setup(['h1', 'h2'], { held });
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(true);
    expect(world.violations).toEqual([]);
    expect(world.boxes.get('h1/master')!.slot).toBe('b');
    expect(world.boxes.get('h2/master')!.slot).toBeUndefined();
    expect(states(world)).toMatchObject({ 'h2-master': 'maint', 'h2-master-b': 'maint' });
    const first = memoryEstate(['h1'], {}, { noGap: true });
    expect((await executeRollout(await first.plan(v2), first.deps)).ok).toBe(true);
    expect(first.world.boxes.get('h1/master')!.slot).toBeUndefined();
  });
});

/** Pre-flight's view of an estate: its hosts and one load balancer, as connect() leaves them. */
function connectedTo(world: Estate, procedure: 'backup-first' | 'no-gap', slots = new Map()): Connected {
  const env = {
    name: 'production',
    hosts: world.hosts,
    ports: { master: 50000, backup: 50001, 'master-spare': 50002, 'backup-spare': 50003 },
    rollout: { procedure },
    haproxy: { hosts: ['lb'], backend: 'app', 'drain-timeout': 0, 'on-drain-timeout': 'fail' },
  } as unknown as EnvironmentConfig;
  return { env, image: 'r/app', hosts: new Map(), lbs: [{ host: 'lb', runtime: new MemoryLoadBalancer('lb', world) as never }], slots, dispose: () => undefined };
}

describe('pre-flight with spare servers', () => {
  it('refuses no-gap on a backend without spare servers, naming the missing lines', async () => {
    const world = new Estate(['10.0.0.1'], ['lb']);
    const refusal = findServers(connectedTo(world, 'no-gap'), { tookOverLock: false });
    await expect(refusal).rejects.toThrow(PreflightError);
    await expect(refusal).rejects.toThrow(
      'HAProxy backend app: lb has no server for 10.0.0.1:50002 (master spare); lb has no server for 10.0.0.1:50003 (backup spare); ' +
        'rollout.procedure no-gap needs a spare server per role and host: add the spare server lines that command: haproxy-config prints',
    );
    // The default procedure does without them (nor looks for them), unless a container runs in a spare slot.
    const found = await findServers(connectedTo(new Estate(['10.0.0.1'], ['lb'], true), 'backup-first'), { tookOverLock: false });
    expect(found!.slots).toBeUndefined();
    await expect(findServers(connectedTo(world, 'backup-first', new Map([['10.0.0.1', { master: 'b' }]])), { tookOverLock: false })).rejects.toThrow(
      'containers run on their spare ports (a no-gap deploy put them there)',
    );
  });

  it('finds the spare servers and the slots, and takes the idle server of each role for the deploy\'s own, not an operator\'s hold', async () => {
    const world = new Estate(['10.0.0.1'], ['lb'], true);
    // A no-gap deploy left the master in slot b: its slot a server is in MAINT, by design.
    world.lbState.set('10.0.0.1-master', 'maint');
    world.lbState.set('10.0.0.1-master-b', 'ready');
    const lb = await findServers(connectedTo(world, 'no-gap', new Map([['10.0.0.1', { master: 'b' }]])), { tookOverLock: false });
    expect(lb!.slots!.spares.get('10.0.0.1')).toEqual({ master: '10.0.0.1:50002', backup: '10.0.0.1:50003' });
    expect(lb!.slots!.active.get('10.0.0.1')).toEqual({ master: 'b' });
    expect([...lb!.held.keys()]).toEqual([]);
  });
});

describe('the receipt over slots', () => {
  it('credits each slot\'s server to the release running in it', () => {
    const counters = (requests: number): ServerCounters => ({ requests, http5xx: 0, connectionErrors: 0, responseErrors: 0, retries: 0, redispatches: 0, responseMs: 1, totalMs: 1 });
    const servers = new Map([['h1', { master: 'h1:50000', backup: 'h1:50001' }]]);
    const spares = new Map([['h1', { master: 'h1:50002', backup: 'h1:50003' }]]);
    const running = (_host: string, role: Role) => (role === 'master' ? v2 : v1);
    const ledger = new Ledger(servers, running, { spares, active: new Map([['h1', { master: 'b' as const }]]) });
    const reading = (n: number) => ({ read: new Map([['lb', new Map(['h1:50000', 'h1:50001', 'h1:50002', 'h1:50003'].map((s) => [s, counters(n)]))]]), failed: new Map() });
    ledger.take(0, reading(0));
    ledger.take(1, reading(10));
    // v2 runs in the master's slot b, v1 in the backup's slot a; nothing behind the two others.
    expect(ledger.ofRelease(v2.digest).requests).toBe(10);
    expect(ledger.ofRelease(v1.digest).requests).toBe(10);
    expect(ledger.byRelease.get('none')?.requests).toBe(20);
  });
});
