// The rollout procedure against the in-memory estate (test/support/memory-estate.ts), which
// checks at every operation the two rules that keep requests from failing: HAProxy never routes
// to a container that is not healthy, and some healthy server is always in service once the
// site has been up.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { EnvironmentConfig } from '../../src/config/schema.js';
import { outcomeFailure } from '../../src/pipeline/finish.js';
import { Canary } from '../../src/receipt/canary.js';
import { ReceiptRecorder } from '../../src/receipt/recorder.js';
import { errorsOf } from '../../src/receipt/tally.js';
import { executeRollout } from '../../src/rollout/execute.js';
import { describePlan, planHost, planRollout, settleTarget, type HostTarget } from '../../src/rollout/plan.js';
import type { Release, Role } from '../../src/rollout/ports.js';
import { Estate, MemoryHost, memoryEstate, release } from '../support/memory-estate.js';

const v1 = release('v1.0.0');
const v2 = release('v2.0.0');
const broken = release('v3.0.0-broken');
const setup = memoryEstate;
const served = (world: Estate) => world.served();

describe('planHost', () => {
  it.each([
    ['first deploy: backup first, then master', {}, { master: v2, backup: v2 }, ['replace backup nothing→v2.0.0', 'replace master nothing→v2.0.0']],
    ['upgrade: check backup, master, then backup', { master: v1, backup: v1 }, { master: v2, backup: v2 }, ['check backup v1.0.0', 'replace master v1.0.0→v2.0.0', 'replace backup v1.0.0→v2.0.0']],
    ['same release: only checks', { master: v2, backup: v2 }, { master: v2, backup: v2 }, ['check backup v2.0.0', 'check master v2.0.0']],
    ['missing backup is started on the target first', { master: v1 }, { master: v2, backup: v2 }, ['replace backup nothing→v2.0.0', 'replace master v1.0.0→v2.0.0']],
    ['half-moved host (killed run)', { master: v2, backup: v1 }, { master: v2, backup: v2 }, ['check backup v1.0.0', 'check master v2.0.0', 'replace backup v1.0.0→v2.0.0']],
    ['rollback of a first deploy removes master, then backup', { backup: v2 }, {}, ['check backup v2.0.0', 'remove backup v2.0.0']],
    ['rollback after the backup failed', { master: v2 }, { master: v1, backup: v1 }, ['replace backup nothing→v1.0.0', 'replace master v2.0.0→v1.0.0']],
    ['rollback after the new master failed: the empty master slot first', { backup: v1 }, { master: v1, backup: v1 }, ['replace master nothing→v1.0.0', 'check backup v1.0.0']],
    ['empty master slot, backup to move', { backup: v1 }, { master: v2, backup: v2 }, ['replace master nothing→v2.0.0', 'check backup v1.0.0', 'replace backup v1.0.0→v2.0.0']],
  ])('%s', (_name, current: HostTarget, target: HostTarget, expected) => {
    const steps = planHost('h1', current, target).steps.map((s) =>
      s.kind === 'check' ? `check ${s.role} ${s.release.version}` : s.kind === 'replace' ? `replace ${s.role} ${s.from?.version ?? 'nothing'}→${s.to.version}` : s.kind === 'remove' ? `remove ${s.role} ${s.from?.version}` : s.kind,
    );
    expect(steps).toEqual(expected);
  });

  it('groups hosts into batches of max-parallel and describes the plan', () => {
    const plan = planRollout(v2, ['a', 'b', 'c'].map((host) => ({ host, current: { master: v1, backup: v1 } })), 2);
    expect(plan.batches).toEqual([['a', 'b'], ['c']]);
    expect(describePlan(plan)).toContain('    - master: v1.0.0 → v2.0.0');
  });
});

describe('executeRollout', () => {
  it('moves every host to the new release without routing to a dead container', async () => {
    const { world, deps, plan, lines } = setup(['h1', 'h2'], { master: v1, backup: v1 });
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(true);
    expect(world.violations).toEqual([]);
    expect(lines.filter((l) => /^\[h1\] (master|backup): drain [\d.]+ s, stop [\d.]+ s, start [\d.]+ s, healthy [\d.]+ s, in service [\d.]+ s$/.test(l))).toHaveLength(2);
    expect(served(world)).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0', 'h2/master': 'v2.0.0', 'h2/backup': 'v2.0.0' });
    // Backup-first, drain before maint, maint before stop, healthy before ready; host after host.
    const h1 = world.events.filter((e) => e.includes('h1'));
    expect(h1).toEqual([
      'health h1/backup',
      'drain h1-master', 'maint h1-master', 'stop h1/master', 'run h1/master v2.0.0', 'health h1/master', 'ready h1-master',
      'drain h1-backup', 'maint h1-backup', 'stop h1/backup', 'run h1/backup v2.0.0', 'health h1/backup', 'ready h1-backup',
    ]);
    expect(world.events.findIndex((e) => e.includes('h2'))).toBeGreaterThan(world.events.lastIndexOf('ready h1-backup'));
    expect(result.hosts.map((h) => [h.host, h.before.master?.version, h.after.master?.version])).toEqual([
      ['h1', 'v1.0.0', 'v2.0.0'],
      ['h2', 'v1.0.0', 'v2.0.0'],
    ]);
    // Each replacement's phases are timed and logged, per role.
    expect(result.hosts[0]!.phases.map((p) => p.role)).toEqual(['master', 'backup']);
    expect(Object.keys(result.hosts[0]!.phases[0]!)).toEqual(['role', 'drain', 'stop', 'start', 'healthy', 'inService']);
  });

  it('keeps a single host serving through its backup', async () => {
    const { world, deps, plan } = setup(['h1'], { master: v1, backup: v1 });
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    expect(world.violations).toEqual([]);
  });

  it('first deploy onto empty hosts starts each backup before its master', async () => {
    const { world, deps, plan } = setup(['h1', 'h2'], {});
    const result = await executeRollout(await plan(v1), deps);
    expect(result.ok).toBe(true);
    expect(world.violations).toEqual([]);
    expect(Object.values(served(world))).toEqual(['v1.0.0', 'v1.0.0', 'v1.0.0', 'v1.0.0']);
    expect(world.events.indexOf('run h1/backup v1.0.0')).toBeLessThan(world.events.indexOf('run h1/master v1.0.0'));
  });

  it('rolls every host back when a new master never becomes healthy', async () => {
    const { world, deps, plan, lines } = setup(['h1', 'h2', 'h3'], { master: v1, backup: v1 });
    const result = await executeRollout(await plan(broken), deps);
    expect(result.ok).toBe(false);
    expect(result.failure?.message).toBe('h1: master v3.0.0-broken did not become healthy: HTTP 500');
    expect(result.failure?.logs).toContain('h1/master says boom');
    expect(lines.join('\n')).toContain('h1/master says boom');
    expect(result.rollbackErrors).toEqual([]);
    expect(world.violations).toEqual([]);
    expect(Object.values(served(world))).toEqual(Array(6).fill('v1.0.0'));
    expect([...world.lbState.values()]).toEqual(Array(6).fill('ready'));
    // h2 and h3 were never touched.
    expect(world.events.some((e) => e.includes('h2') && !e.startsWith('health'))).toBe(false);
  });

  it('a failure before any host changed says so, not an empty "rolled back … ()" list', async () => {
    const { world, deps, plan } = setup(['h1', 'h2'], { master: v1, backup: v1 });
    const planned = await plan(v2);
    // h1 cut off before its first change: its backup check fails.
    world.unreachable.add('h1');
    const result = await executeRollout(planned, deps);
    expect(result.ok).toBe(false);
    expect(result.hosts.some((h) => h.rolledBack)).toBe(false);
    const env = { name: 'production' } as EnvironmentConfig;
    expect(outcomeFailure(env, v2, result)).toMatch(/^v2\.0\.0 to production failed on h1: .*; no host was changed$/);
    world.unreachable.delete('h1');
    expect(Object.values(served(world))).toEqual(Array(4).fill('v1.0.0'));
  });

  it('a failure after a host changed names the hosts rolled back', async () => {
    const { deps, plan } = setup(['h1', 'h2'], { master: v1, backup: v1 });
    const result = await executeRollout(await plan(broken), deps);
    expect(outcomeFailure({ name: 'production' } as EnvironmentConfig, broken, result)).toMatch(/; every host touched was rolled back to the release it ran before \(h1\)$/);
  });

  it('rolls back hosts already moved when a later host fails', async () => {
    const { world, deps, plan } = setup(['h1', 'h2'], { master: v1, backup: v1 });
    // h2's master image is broken on this host only.
    const host2 = deps.hosts.get('h2')! as unknown as MemoryHost;
    const run = host2.run.bind(host2);
    host2.run = async (spec) => run(spec.role === 'master' && spec.release === v2 ? { ...spec, release: broken } : spec);
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(false);
    expect(result.failure?.host).toBe('h2');
    expect(result.rollbackErrors).toEqual([]);
    expect(world.violations).toEqual([]);
    expect(Object.values(served(world))).toEqual(Array(4).fill('v1.0.0'));
    expect(result.hosts.map((h) => h.rolledBack)).toEqual([true, true]);
  });

  it('replaces a sick backup with the new release before touching the master', async () => {
    const { world, deps, plan, warnings } = setup(['h1', 'h2'], { master: v1, backup: v1 });
    world.sickOnArrival.add('h1/backup');
    world.boxes.get('h1/backup')!.healthy = true; // sick only once its health is asked
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(true);
    expect(warnings.join('\n')).toContain('[h1] backup is not healthy (HTTP 500): replacing it with v2.0.0');
    const h1 = world.events.filter((e) => e.startsWith('run h1'));
    expect(h1).toEqual(['run h1/backup v2.0.0', 'run h1/master v2.0.0']);
  });

  it('runs max-parallel hosts at once', async () => {
    const { world, deps, plan } = setup(['h1', 'h2', 'h3', 'h4'], { master: v1, backup: v1 }, { maxParallel: 2 });
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(true);
    expect(world.violations).toEqual([]);
    const firstH3 = world.events.findIndex((e) => e.includes('h3'));
    expect(world.events.findIndex((e) => e.startsWith('run h2'))).toBeLessThan(firstH3);
  });

  it('without HAProxy replaces in place and warns once', async () => {
    const { world, deps, plan, warnings } = setup(['h1'], { master: v1, backup: v1 }, { lb: false });
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(true);
    expect(served(world)).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0' });
    expect(warnings.filter((w) => w.includes('No haproxy section'))).toHaveLength(1);
  });

  it('reports a failed rollback instead of hiding it', async () => {
    const { deps, plan } = setup(['h1'], { master: v1, backup: v1 });
    const host = deps.hosts.get('h1')! as unknown as MemoryHost;
    const run = host.run.bind(host);
    host.run = async (spec) => {
      if (spec.release.version === 'v1.0.0') throw new Error('h1: engine unreachable');
      return run(spec);
    };
    const result = await executeRollout(await plan(broken), deps);
    expect(result.ok).toBe(false);
    expect(result.rollbackErrors).toEqual(['h1: engine unreachable']);
  });
});

describe('adopting containers deploy-action did not create', () => {
  const handRun: Release = { version: 'v0.9.0', ref: 'r/app:v0.9.0', digest: '', adopted: true };

  it('plans them as adopted, and replaces them even when the image is the target', () => {
    const plan = planRollout(v2, [{ host: 'h1', current: { master: handRun, backup: handRun } }], 1);
    expect(describePlan(plan).join('\n')).toContain('master: v0.9.0 (r/app:v0.9.0, started without deploy-action: adopting it) → v2.0.0');
    const sameImage = { ...v2, adopted: true };
    expect(planHost('h1', { master: sameImage, backup: sameImage }, { master: v2, backup: v2 }).steps.map((s) => s.kind)).toEqual(['check', 'replace', 'replace']);
  });

  it('drains them like any serving container, sets them aside, and discards them once the rollout succeeded', async () => {
    const { world, deps, plan } = setup(['h1', 'h2'], { master: handRun, backup: handRun });
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(true);
    expect(world.violations).toEqual([]);
    const h1 = world.events.filter((e) => e.includes('h1'));
    expect(h1.slice(0, 4)).toEqual(['health h1/backup', 'drain h1-master', 'maint h1-master', 'aside h1/master']);
    expect(world.asides.size).toBe(0);
    expect(world.events.filter((e) => e.startsWith('discard'))).toHaveLength(4);
    expect(Object.values(served(world))).toEqual(Array(4).fill('v2.0.0'));
  });

  it('puts the very containers back when a later host fails', async () => {
    const { world, deps, plan } = setup(['h1', 'h2'], { master: handRun, backup: handRun });
    const originals = new Map(world.boxes);
    const host2 = deps.hosts.get('h2')! as unknown as MemoryHost;
    const run = host2.run.bind(host2);
    host2.run = async (spec) => run(spec.role === 'master' ? { ...spec, release: broken } : spec);
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(false);
    expect(result.rollbackErrors).toEqual([]);
    expect(world.violations).toEqual([]);
    for (const [key, box] of originals) expect(world.boxes.get(key), key).toBe(box);
    expect(world.asides.size).toBe(0);
    expect([...world.lbState.values()]).toEqual(Array(4).fill('ready'));
  });

  it('fills the empty master slot first when the new master failed on an adopted host', async () => {
    const { world, deps, plan } = setup(['h1'], { master: handRun, backup: handRun });
    const result = await executeRollout(await plan(broken), deps);
    expect(result.ok).toBe(false);
    expect(world.violations).toEqual([]);
    const rollback = world.events.slice(world.events.indexOf('stop h1/master'));
    expect(rollback.find((e) => e.startsWith('restore'))).toBe('restore h1/master v0.9.0');
    expect(served(world)).toEqual({ 'h1/master': 'v0.9.0', 'h1/backup': 'v0.9.0' });
  });
});

describe('operator intent and draining', () => {
  it('updates the containers of servers the operator took out, and leaves those servers as they were', async () => {
    const held = new Map<string, 'maint' | 'drain'>([['h1-master', 'maint'], ['h2-backup', 'drain']]);
    const { world, deps, plan, lines } = setup(['h1', 'h2'], { master: v1, backup: v1 }, { held });
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(true);
    expect(world.violations).toEqual([]);
    expect(Object.fromEntries(world.lbState)).toEqual({ 'h1-master': 'maint', 'h1-backup': 'ready', 'h2-master': 'ready', 'h2-backup': 'drain' });
    expect(Object.values(served(world))).toEqual(Array(4).fill('v2.0.0'));
    expect(lines).toContain('[h1] h1-master left out of service (MAINT), as it was before the deploy');
    // A server in MAINT is not drained again: nothing can reach it.
    expect(world.events).not.toContain('drain h1-master');
  });

  it('a same-release deploy leaves a held server alone too', async () => {
    const held = new Map<string, 'maint' | 'drain'>([['h1-backup', 'maint']]);
    const { world, deps, plan } = setup(['h1'], { master: v2, backup: v2 }, { held });
    expect((await executeRollout(await plan(v2), deps)).ok).toBe(true);
    expect(world.lbState.get('h1-backup')).toBe('maint');
  });

  it('fails the step when sessions outlast the drain timeout, puts the server back, and rolls back', async () => {
    const { world, deps, plan } = setup(['h1', 'h2'], { master: v1, backup: v1 });
    world.sessions.set('h2-master', 3);
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(false);
    expect(result.failure?.message).toContain('h2: master v1.0.0 still had 3 sessions after the 0s drain timeout');
    expect(world.violations).toEqual([]);
    expect(world.boxes.get('h2/master')?.release.version).toBe('v1.0.0');
    expect(Object.values(served(world))).toEqual(Array(4).fill('v1.0.0'));
    expect([...world.lbState.values()]).toEqual(Array(4).fill('ready'));
  });

  it('with on-drain-timeout cut, stops them and says how many', async () => {
    const { world, deps, plan, warnings } = setup(['h1'], { master: v1, backup: v1 }, { onDrainTimeout: 'cut' });
    world.sessions.set('h1-master', 2);
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(true);
    expect(warnings).toContain('[h1] h1-master still had 2 sessions after the 0s drain timeout: cutting them (haproxy.on-drain-timeout: cut)');
  });
});

describe('a load balancer reloaded mid-rollout', () => {
  it('puts back a server the reload returned to MAINT after it was put in service', async () => {
    const { world, deps, plan, warnings } = setup(['h1', 'h2'], { master: v1, backup: v1 });
    // The reload's state file was saved just before h1's master went back to ready: once the
    // new process is up (here: as h1's backup begins to drain), it reads MAINT again.
    const lb = deps.lb!.driver;
    const setState = lb.setState.bind(lb);
    lb.setState = async (server, state) => {
      if (server === 'h1-backup' && state === 'drain') world.lbState.set('h1-master', 'maint');
      await setState(server, state);
    };
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(true);
    expect(world.violations).toEqual([]);
    expect(warnings).toEqual(['[h1] h1-master is MAINT after it was put in service (a load balancer reloaded from an older server state?): putting it back']);
    expect([...world.lbState.values()]).toEqual(Array(4).fill('ready'));
    // Before the next host moves: with h1's master out, h2's would leave no master in service.
    expect(world.events.indexOf('ready h1-master', world.events.indexOf('ready h1-backup'))).toBeLessThan(world.events.indexOf('drain h2-master'));
  });

  it('sends ready again when a reload lost it (the server still reads MAINT)', async () => {
    const { world, deps, plan } = setup(['h1'], { master: v1, backup: v1 });
    const lb = deps.lb!.driver;
    const setState = lb.setState.bind(lb);
    let lost = false;
    lb.setState = async (server, state) => {
      if (server === 'h1-master' && state === 'ready' && !lost) {
        lost = true;
        return;
      }
      await setState(server, state);
    };
    const result = await executeRollout(await plan(v2), deps);
    expect(lost).toBe(true);
    expect(result.ok).toBe(true);
    expect([...world.lbState.values()]).toEqual(Array(2).fill('ready'));
  });
});

describe('failures', () => {
  it('reports every failed host of a batch, and names the role a non-step error hit', async () => {
    const { deps, plan } = setup(['h1', 'h2'], { master: v1, backup: v1 }, { maxParallel: 2 });
    for (const host of ['h1', 'h2']) {
      const fake = deps.hosts.get(host)! as unknown as MemoryHost;
      fake.run = async () => {
        throw new Error(`${host}: engine said no`);
      };
    }
    const result = await executeRollout(await plan(v2), deps);
    expect(result.failures.map((f) => [f.host, f.role, f.reason])).toEqual([
      ['h1', 'master', 'failed: h1: engine said no'],
      ['h2', 'master', 'failed: h2: engine said no'],
    ]);
  });

  it('a remove that fails after the stop: the outcome says the role runs nothing, not the container it stopped', async () => {
    const { world, deps, plan } = setup(['h1'], { master: v1, backup: v1 });
    world.intercept = (call) => {
      if (call.op === 'remove' && call.subject === 'app') throw new Error('h1: remove app failed');
    };
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(false);
    expect(world.boxes.get('h1/master')?.running).toBe(false);
    // The rollback's own remove fails the same way: the master stays stopped, and the outcome says so.
    expect(result.rollbackErrors).toEqual(['h1: remove app failed']);
    expect(result.hosts[0]!.after).toEqual({ backup: v1 });
    expect(world.violations).toEqual([]);
  });

  it('a rename that fails after an adopted master\'s stop: never removed, it is set aside and put back whole by the rollback', async () => {
    const handRun: Release = { version: 'v0.9.0', ref: 'r/app:v0.9.0', digest: '', adopted: true };
    const { world, deps, plan } = setup(['h1'], { master: handRun, backup: handRun });
    const original = world.boxes.get('h1/master')!;
    let renames = 0;
    world.intercept = (call) => {
      if (call.op === 'rename' && call.subject === 'app' && renames++ === 0) throw new Error('h1: rename app failed');
    };
    const result = await executeRollout(await plan(v2), deps);
    expect(result.failure?.reason).toBe('failed: h1: rename app failed');
    expect(result.rollbackErrors).toEqual([]);
    expect(world.boxes.get('h1/master')).toBe(original);
    expect(original.running).toBe(true);
    expect(world.asides.size).toBe(0);
    expect(result.hosts[0]!.after).toEqual({ master: handRun, backup: handRun });
    expect(world.violations).toEqual([]);
  });

  it('a backup step that throws is reported as the backup', async () => {
    const { deps, plan } = setup(['h1'], {});
    const fake = deps.hosts.get('h1')! as unknown as MemoryHost;
    fake.run = async () => {
      throw new Error('h1: no space left');
    };
    const result = await executeRollout(await plan(v1), deps);
    expect(result.failure?.role).toBe('backup');
  });
});

/** A journal that keeps what it is told, as the post step would read it. */
const journalOf = () => {
  const out = new Set<string>();
  const touched: string[] = [];
  const unproven = new Set<string>();
  const judged: string[] = [];
  return {
    out,
    touched,
    unproven,
    /** Every unproven/judged mark, in order. */
    judged,
    journal: {
      touched: (h: string) => void touched.push(h),
      outOfService: (s: string, o: boolean) => void (o ? out.add(s) : out.delete(s)),
      unproven: (h: string, holding: boolean) => {
        judged.push(`${h} ${holding ? 'unproven' : 'judged or gone'}`);
        if (holding) unproven.add(h);
        else unproven.delete(h);
      },
      changing: () => undefined,
      aside: () => undefined,
    },
  };
};

describe('cancellation', () => {
  it('cancelled before the first step: nothing changes', async () => {
    const { world, deps, plan } = setup(['h1', 'h2'], { master: v1, backup: v1 });
    const result = await executeRollout(await plan(v2), { ...deps, signal: AbortSignal.abort() });
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    expect(world.events.filter((e) => !e.startsWith('health') && e !== 'start')).toEqual([]);
  });

  it('cancelled while draining: the server goes back in service, nothing stops', async () => {
    const { world, deps, plan } = setup(['h1', 'h2'], { master: v1, backup: v1 });
    world.sessions.set('h1-master', 1);
    const controller = new AbortController();
    const { out, journal } = journalOf();
    const result = await executeRollout(await plan(v2), {
      ...deps,
      lb: { ...deps.lb!, drainTimeoutSeconds: 60 },
      signal: controller.signal,
      journal,
      sleep: async () => controller.abort(),
    });
    expect(result.cancelled?.settled).toBe(true);
    expect(world.violations).toEqual([]);
    expect(world.events).not.toContain('stop h1/master');
    expect(Object.values(served(world))).toEqual(Array(4).fill('v1.0.0'));
    expect([...world.lbState.values()]).toEqual(Array(4).fill('ready'));
    expect([...out]).toEqual([]);
  });

  it('cancelled while the new master starts: the host goes back to what its backup runs, both roles in service', async () => {
    const { world, deps, plan } = setup(['h1', 'h2'], { master: v1, backup: v1 });
    const controller = new AbortController();
    const host = deps.hosts.get('h1')! as unknown as MemoryHost;
    const waitHealthy = host.waitHealthy.bind(host);
    host.waitHealthy = async (name: string) => {
      if (name === 'app' && world.boxes.get('h1/master')?.release === v2 && !controller.signal.aborted) {
        controller.abort();
        return { healthy: false as const, detail: 'cancelled', logs: '' };
      }
      return waitHealthy(name);
    };
    const { out, touched, journal } = journalOf();
    const result = await executeRollout(await plan(v2), { ...deps, signal: controller.signal, journal });
    expect(result.ok).toBe(false);
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    expect(world.violations).toEqual([]);
    expect(served(world)).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
    expect([...world.lbState.values()]).toEqual(Array(4).fill('ready'));
    expect(touched).toEqual(['h1']);
    expect([...out]).toEqual([]);
    // h2 never started.
    expect(world.events.some((e) => e.includes('h2') && !e.startsWith('health'))).toBe(false);
  });

  it.each<[string, HostTarget, boolean, HostTarget]>([
    ['master proven: the host had moved on', { master: v2, backup: v1 }, true, { master: v2, backup: v2 }],
    ['master not in service: back to the backup', { master: v2, backup: v1 }, false, { master: v1, backup: v1 }],
    ['no master: the backup', { backup: v1 }, false, { master: v1, backup: v1 }],
    ['no backup: the master', { master: v2 }, false, { master: v2, backup: v2 }],
    ['nothing', {}, false, {}],
  ])('settleTarget: %s', (_case, current, inService, expected) => {
    expect(settleTarget(current, inService)).toEqual(expected);
  });
});

describe('the canary and the error budget', () => {
  // The hold, the recorder's readings and the cancel below run on vitest's fake clock: a hold
  // takes no real time, so these tests (and each mutant of canary.ts, npm run mutate) are fast.
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  const policy = { holdSeconds: 1, maxErrorRate: 1, minRequests: 20 };
  /** `work` to its end, the fake clock moved on 100 ms at a time: ten minutes at most (a hold that never ends fails). */
  async function onFakeClock<T>(work: Promise<T>): Promise<T> {
    let settled = false;
    void work.then(
      () => (settled = true),
      () => (settled = true),
    );
    for (let ms = 0; !settled && ms < 600_000; ms += 100) await vi.advanceTimersByTimeAsync(100);
    expect(settled, 'still running after ten minutes on the fake clock').toBe(true);
    return work;
  }
  /** The receipt's recorder and the canary over the fake load balancer, as rollOut wires them. */
  async function withCanary(env: ReturnType<typeof setup>, target: Release, holdSeconds = policy.holdSeconds) {
    const { deps, world } = env;
    const recorder = new ReceiptRecorder(deps.lb!.driver, deps.lb!.servers, (host, role) => world.boxes.get(world.key(host, role))?.release);
    await recorder.open();
    await recorder.start();
    const canary = new Canary(recorder, { ...policy, holdSeconds }, target, deps.log);
    return { recorder, canary, rollout: { ...deps, observer: recorder, canary } };
  }

  it('plans the first host alone, holding after its master and before its backup', async () => {
    const { plan } = setup(['h1', 'h2', 'h3'], { master: v1, backup: v1 }, { maxParallel: 2 });
    const held = await plan(v2, 30);
    expect(held.batches).toEqual([['h1'], ['h2', 'h3']]);
    expect(held.hosts[0]!.steps.map((s) => `${s.kind} ${s.role}`)).toEqual(['check backup', 'replace master', 'hold master', 'replace backup']);
    expect(held.hosts[1]!.steps.map((s) => s.kind)).not.toContain('hold');
    expect(describePlan(held)).toContain('    - master: hold 30 s as the canary, judged by the load balancers\' counters (canary)');
    expect((await plan(v2)).batches).toEqual([['h1', 'h2'], ['h3']]);
  });

  it('fails a release whose pages fail during the hold, and rolls the canary back before any other host moves', async () => {
    const env = setup(['h1', 'h2'], { master: v1, backup: v1 });
    env.world.failingPages.add(v2.version);
    const { recorder, rollout } = await withCanary(env, v2);
    const result = await onFakeClock(executeRollout(await env.plan(v2, 1), rollout));
    await recorder.finish();
    expect(result.ok).toBe(false);
    expect(result.failure?.message).toMatch(/^h1: master v2\.0\.0 answered \d+ of \d+ requests with 5xx \(100%\) on h1 during the 1 s hold; budget 1% \(99% sure its rate is over \d+(\.\d)?%\)/);
    expect(Object.values(served(env.world))).toEqual(Array(4).fill('v1.0.0'));
    expect(env.world.events).not.toContain('stop h2/master');
    expect(env.world.violations).toEqual([]);
    // The receipt tells the releases apart: every error is the new one's.
    const byRelease = recorder.deploy.byRelease;
    expect(errorsOf(byRelease.get(v2.digest)!)).toBe(byRelease.get(v2.digest)!.requests);
    expect(errorsOf(byRelease.get(v1.digest)!)).toBe(0);
    expect(byRelease.get(v1.digest)!.requests).toBeGreaterThan(0);
  });

  it('takes the reading at a container change once the old container is gone: errors of sessions a stop cut stay on its release', async () => {
    const env = setup(['h1'], { master: v1, backup: v1 });
    const observer = {
      changing: async (host: string, role: Role) => void env.world.events.push(`reading ${host}/${role}`),
      serving: () => {},
    };
    const result = await onFakeClock(executeRollout(await env.plan(v2), { ...env.deps, observer }));
    expect(result.ok).toBe(true);
    const at = (event: string) => env.world.events.findIndex((e) => e.startsWith(event));
    expect(at('stop h1/master')).toBeGreaterThanOrEqual(0);
    expect(at('reading h1/master')).toBeGreaterThan(at('stop h1/master'));
    expect(at('reading h1/master')).toBeLessThan(at('run h1/master'));
  });

  it('judges the canary master by its hold alone; the budget check starts with the next container in service', async () => {
    const env = setup(['h1', 'h2'], { master: v1, backup: v1 });
    const calls: string[] = [];
    const canary = {
      hold: async (host: string) => void calls.push(`hold ${host}`),
      check: async (release: Release) => void calls.push(`check ${release.version}`),
    };
    const result = await onFakeClock(executeRollout(await env.plan(v2, 1), { ...env.deps, canary }));
    expect(result.ok).toBe(true);
    // h1's backup, then h2's master and backup: the canary's master never by the budget check.
    expect(calls).toEqual(['hold h1', 'check v2.0.0', 'check v2.0.0', 'check v2.0.0']);
  });

  it('lets a good release through the hold, to every host', async () => {
    const env = setup(['h1', 'h2'], { master: v1, backup: v1 });
    const { recorder, canary, rollout } = await withCanary(env, v2);
    const { unproven, journal } = journalOf();
    const result = await onFakeClock(executeRollout(await env.plan(v2, 1), { ...rollout, journal }));
    expect(result.ok).toBe(true);
    expect([...unproven]).toEqual([]);
    expect(Object.values(served(env.world))).toEqual(Array(4).fill('v2.0.0'));
    expect(canary.verdicts).toEqual([expect.stringMatching(/^v2\.0\.0 answered \d+ requests without an error on h1 during the 1 s hold: within the budget of 1%$/)]);
    await recorder.finish();
    expect(recorder.deploy.marks.map((m) => `${m.host} ${m.role} ${m.what}`)).toEqual([
      'h1 master out of service', 'h1 master in service', 'h1 backup out of service', 'h1 backup in service',
      'h2 master out of service', 'h2 master in service', 'h2 backup out of service', 'h2 backup in service',
    ]);
  });

  it('cancelled during the hold: the canary is unproven, so the host goes back to what its backup runs', async () => {
    const env = setup(['h1', 'h2'], { master: v1, backup: v1 });
    const { rollout } = await withCanary(env, v2, 60);
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const { judged, journal } = journalOf();
    const result = await onFakeClock(executeRollout(await env.plan(v2, 60), { ...rollout, signal: controller.signal, journal }));
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    // Had the runner killed it instead, the post step would know the canary was never judged;
    // once the host is back on v1.0.0, nothing unjudged is left.
    expect(judged).toEqual(['h1 unproven', 'h1 judged or gone']);
    expect(Object.values(served(env.world))).toEqual(Array(4).fill('v1.0.0'));
    expect(env.world.violations).toEqual([]);
  });

  it('without a hold, still stops the rollout once the new release\'s errors pass the budget', async () => {
    const env = setup(['h1', 'h2', 'h3'], { master: v1, backup: v1 });
    env.world.failingPages.add(v2.version);
    const { rollout } = await withCanary(env, v2, 0);
    const result = await onFakeClock(executeRollout(await env.plan(v2, 0), rollout));
    expect(result.ok).toBe(false);
    expect(result.failure?.reason).toMatch(/^v2\.0\.0 answered \d+ of \d+ requests with 5xx \(100%\) since the rollout began; budget 1% \(99% sure its rate is over \d+(\.\d)?%\)/);
    expect(Object.values(served(env.world))).toEqual(Array(6).fill('v1.0.0'));
    expect(env.world.events).not.toContain('stop h3/master');
  });
});
