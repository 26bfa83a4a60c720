// The rollout procedure against an in-memory estate that checks, at every operation, the two
// rules that keep requests from failing: HAProxy never routes to a container that is not
// healthy, and some healthy server is always in service once the site has been up.
import { describe, expect, it } from 'vitest';
import { Canary } from '../../src/receipt/canary.js';
import { ReceiptRecorder } from '../../src/receipt/recorder.js';
import { errorsOf } from '../../src/receipt/tally.js';
import { executeRollout, type Logger, type RolloutDeps } from '../../src/rollout/execute.js';
import { describePlan, planHost, planRollout, settleTarget, type HostTarget } from '../../src/rollout/plan.js';
import type {
  AppContainer,
  ContainerSpec,
  HostDriver,
  FleetCounters,
  LoadBalancerFleet,
  Release,
  Role,
  ServerCounters,
  ServerStatus,
} from '../../src/rollout/ports.js';

const release = (version: string): Release => ({ version, ref: `r/app@sha256:${version}`, digest: `sha256:${version}` });
const v1 = release('v1.0.0');
const v2 = release('v2.0.0');
const broken = release('v3.0.0-broken');

const ROLES: Role[] = ['master', 'backup'];
const NAMES: Record<Role, string> = { master: 'app', backup: 'app-backup' };
const PORTS: Record<Role, number> = { master: 50000, backup: 50001 };

interface Box {
  release: Release;
  healthy: boolean;
}

/** app, app-backup, and their -adopted names → the role. */
const roleOf = (name: string): Role => (name.startsWith('app-backup') ? 'backup' : 'master');

/** Every host and the load balancer in one place, so invariants can look across them. */
class World {
  boxes = new Map<string, Box>(); // host/role → container
  asides = new Map<string, Box>(); // host/role → adopted container set aside (stopped)
  sessions = new Map<string, number>(); // server → sessions that never finish draining
  lbState = new Map<string, 'ready' | 'drain' | 'maint'>(); // server → admin state
  events: string[] = [];
  violations: string[] = [];
  siteWasUp = false;
  sickOnArrival = new Set<string>(); // host/role whose existing container is unhealthy
  failingPages = new Set<string>(); // versions whose pages answer 500 (their health check passes)
  counted = new Map<string, ServerCounters>(); // server → what HAProxy counted there

  constructor(readonly hosts: string[]) {
    for (const host of hosts) for (const role of ROLES) this.lbState.set(`${host}-${role}`, 'ready');
  }

  key(host: string, role: Role) {
    return `${host}/${role}`;
  }

  serving(server: string): boolean {
    const [host, role] = server.split('-') as [string, Role];
    const box = this.boxes.get(this.key(host, role));
    return this.lbState.get(server) !== 'maint' && box !== undefined && box.healthy;
  }

  /** HAProxy sends new requests to ready masters, or to ready backups when no master is. */
  check(event: string) {
    this.events.push(event);
    const ready = [...this.lbState].filter(([, s]) => s === 'ready').map(([n]) => n);
    for (const server of ready) {
      const [host, role] = server.split('-') as [string, Role];
      const box = this.boxes.get(this.key(host, role));
      // A ready server with no container counts as DOWN (health checks) only if it never had one:
      // routing to a container that was just stopped is what drops requests.
      if (box && !box.healthy) this.violations.push(`${event}: ${server} is ready but its container is unhealthy`);
    }
    const up = [...this.lbState.keys()].some((s) => this.serving(s));
    if (up) this.siteWasUp = true;
    else if (this.siteWasUp) this.violations.push(`${event}: no server is serving`);
  }

  /** Traffic since the last look: 10 requests to each master in rotation (the backups when none is). */
  traffic(): void {
    const inRotation = (role: Role) => [...this.lbState.keys()].filter((s) => s.endsWith(`-${role}`) && this.lbState.get(s) === 'ready' && this.serving(s));
    const servers = inRotation('master').length > 0 ? inRotation('master') : inRotation('backup');
    for (const server of servers) {
      const [host, role] = server.split('-') as [string, Role];
      const failing = this.failingPages.has(this.boxes.get(this.key(host, role))!.release.version);
      const c = this.counted.get(server) ?? { requests: 0, http5xx: 0, connectionErrors: 0, responseErrors: 0, retries: 0, redispatches: 0, responseMs: 2, totalMs: 3 };
      this.counted.set(server, { ...c, requests: c.requests + 10, http5xx: c.http5xx + (failing ? 10 : 0) });
    }
  }
}

class FakeHost implements HostDriver {
  constructor(
    readonly host: string,
    private readonly world: World,
  ) {}

  async ping() {}
  async containers(): Promise<Partial<Record<Role, AppContainer>>> {
    const out: Partial<Record<Role, AppContainer>> = {};
    for (const role of ROLES) {
      const box = this.world.boxes.get(this.world.key(this.host, role));
      if (box) out[role] = { id: `${this.host}-${role}`, name: NAMES[role], role, release: box.release, running: true };
    }
    return out;
  }
  async resolveDigest() {
    return null;
  }
  async pull() {}
  async stopAndRemove(name: string) {
    const role = roleOf(name);
    const key = this.world.key(this.host, role);
    if (name.endsWith('-adopted')) {
      if (this.world.asides.delete(key)) this.world.events.push(`discard ${key}`);
      return;
    }
    if (!this.world.boxes.has(key)) return;
    this.takeAway(key, role, 'stop');
  }
  async setAside(name: string) {
    const key = this.world.key(this.host, roleOf(name));
    const box = this.world.boxes.get(key);
    if (!box) throw new Error(`${key}: nothing to set aside`);
    if (this.world.asides.has(key)) throw new Error(`${key}: aside taken`);
    this.takeAway(key, roleOf(name), 'aside');
    this.world.asides.set(key, box);
  }
  async restore(_aside: string, name: string) {
    const key = this.world.key(this.host, roleOf(name));
    const box = this.world.asides.get(key);
    if (!box || this.world.boxes.has(key)) throw new Error(`${key}: cannot restore`);
    this.world.asides.delete(key);
    this.world.boxes.set(key, box);
    this.world.check(`restore ${key} ${box.release.version}`);
  }
  private takeAway(key: string, role: Role, verb: string) {
    const state = this.world.lbState.get(`${this.host}-${role}`);
    if (state !== 'maint') this.world.violations.push(`${verb} ${key} while HAProxy has it ${state}`);
    this.world.boxes.delete(key);
    this.world.check(`${verb} ${key}`);
  }
  async run(spec: ContainerSpec) {
    const key = this.world.key(this.host, spec.role);
    this.world.boxes.set(key, { release: spec.release, healthy: !spec.release.version.includes('broken') });
    this.world.check(`run ${key} ${spec.release.version}`);
    return key;
  }
  async waitHealthy(name: string) {
    const role = roleOf(name);
    const key = this.world.key(this.host, role);
    const box = this.world.boxes.get(key);
    if (this.world.sickOnArrival.delete(key) && box) box.healthy = false;
    this.world.events.push(`health ${key}`);
    if (box?.healthy) return { healthy: true as const, detail: 'HTTP 200' };
    return { healthy: false as const, detail: 'HTTP 500', logs: `${key} says boom` };
  }
  async acquireLock() {
    return { acquired: true as const };
  }
  async releaseLock() {
    return true;
  }
  async pruneImages() {
    return [];
  }
}

/** One load balancer as the fleet contract has it (drivers/load-balancers.ts is tested on its own). */
class FakeLb implements LoadBalancerFleet {
  constructor(
    private readonly world: World,
    private readonly held: Map<string, 'maint' | 'drain'>,
  ) {}
  async setState(server: string, state: 'ready' | 'drain' | 'maint') {
    if (state === 'drain' && this.held.get(server) === 'maint') return;
    this.world.lbState.set(server, state);
    this.world.check(`${state} ${server}`);
  }
  async restoreState(server: string) {
    await this.setState(server, this.held.get(server) ?? 'ready');
  }
  async status(server: string): Promise<ServerStatus> {
    const state = this.world.lbState.get(server);
    const status = state === 'maint' ? 'MAINT' : state === 'drain' ? 'DRAIN' : this.world.serving(server) ? 'UP' : 'DOWN';
    return { status, sessions: state === 'maint' ? 0 : (this.world.sessions.get(server) ?? 0), queued: 0 };
  }
  async counters(): Promise<FleetCounters> {
    this.world.traffic();
    return { read: new Map([['lb', new Map(this.world.counted)]]), failed: new Map() };
  }
}

function setup(
  hosts: string[],
  start: Partial<Record<Role, Release>>,
  { lb = true, maxParallel = 1, held = new Map<string, 'maint' | 'drain'>(), onDrainTimeout = 'fail' as 'fail' | 'cut' } = {},
) {
  const world = new World(hosts);
  for (const host of hosts) for (const role of ROLES) {
    const r = start[role];
    if (r) world.boxes.set(world.key(host, role), { release: r, healthy: true });
  }
  for (const [server, state] of held) world.lbState.set(server, state);
  world.check('start');
  const lines: string[] = [];
  const warnings: string[] = [];
  const log: Logger = {
    info: (l) => lines.push(l),
    warning: (l) => warnings.push(l),
    group: (_t, run) => run(),
  };
  const deps: RolloutDeps = {
    hosts: new Map(hosts.map((h) => [h, new FakeHost(h, world)])),
    ...(lb
      ? {
          lb: {
            driver: new FakeLb(world, held),
            servers: new Map(hosts.map((h) => [h, { master: `${h}-master`, backup: `${h}-backup` }])),
            held,
            drainTimeoutSeconds: 0,
            onDrainTimeout,
          },
        }
      : {}),
    containerName: (role) => NAMES[role],
    asideName: (role) => `${NAMES[role]}-adopted`,
    hostPort: (role) => PORTS[role],
    spec: (role, r): ContainerSpec => ({ name: NAMES[role], role, release: r, hostPort: PORTS[role], containerPort: 3000, env: {}, volumes: [], restart: 'no', stopTimeout: 1, init: true, labels: {} }),
    health: { path: '/healthcheck', timeoutSeconds: 1, intervalSeconds: 1 },
    stopTimeoutSeconds: 1,
    log,
    sleep: async () => {},
    pollMs: 1,
  };
  const current = async (target: Release, canaryHold = 0) => {
    const snapshots = await Promise.all(hosts.map(async (h) => ({ host: h, current: hostTarget(await deps.hosts.get(h)!.containers('app')) })));
    return planRollout(target, snapshots, maxParallel, canaryHold);
  };
  return { world, deps, lines, warnings, plan: current };
}

function hostTarget(containers: Partial<Record<Role, AppContainer>>): HostTarget {
  const out: HostTarget = {};
  for (const role of ROLES) if (containers[role]?.release) out[role] = containers[role]!.release;
  return out;
}

function served(world: World): Record<string, string> {
  return Object.fromEntries([...world.boxes].map(([k, b]) => [k, b.release.version]));
}

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

  it('rolls back hosts already moved when a later host fails', async () => {
    const { world, deps, plan } = setup(['h1', 'h2'], { master: v1, backup: v1 });
    // h2's master image is broken on this host only.
    const host2 = deps.hosts.get('h2')! as unknown as FakeHost;
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
    const host = deps.hosts.get('h1')! as unknown as FakeHost;
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
    const host2 = deps.hosts.get('h2')! as unknown as FakeHost;
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
      const fake = deps.hosts.get(host)! as unknown as FakeHost;
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

  it('a backup step that throws is reported as the backup', async () => {
    const { deps, plan } = setup(['h1'], {});
    const fake = deps.hosts.get('h1')! as unknown as FakeHost;
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
  return {
    out,
    touched,
    unproven,
    journal: {
      touched: (h: string) => void touched.push(h),
      outOfService: (s: string, o: boolean) => void (o ? out.add(s) : out.delete(s)),
      unproven: (h: string, holding: boolean) => void (holding ? unproven.add(h) : unproven.delete(h)),
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
    const host = deps.hosts.get('h1')! as unknown as FakeHost;
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
  const policy = { holdSeconds: 1, maxErrorRate: 1, minRequests: 20 };
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
    const result = await executeRollout(await env.plan(v2, 1), rollout);
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

  it('lets a good release through the hold, to every host', async () => {
    const env = setup(['h1', 'h2'], { master: v1, backup: v1 });
    const { recorder, canary, rollout } = await withCanary(env, v2);
    const { unproven, journal } = journalOf();
    const result = await executeRollout(await env.plan(v2, 1), { ...rollout, journal });
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
    const { unproven, journal } = journalOf();
    const result = await executeRollout(await env.plan(v2, 60), { ...rollout, signal: controller.signal, journal });
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    // Had the runner killed it instead, the post step would know the canary was never judged.
    expect([...unproven]).toEqual(['h1']);
    expect(Object.values(served(env.world))).toEqual(Array(4).fill('v1.0.0'));
    expect(env.world.violations).toEqual([]);
  });

  it('without a hold, still stops the rollout once the new release\'s errors pass the budget', async () => {
    const env = setup(['h1', 'h2', 'h3'], { master: v1, backup: v1 });
    env.world.failingPages.add(v2.version);
    const { rollout } = await withCanary(env, v2, 0);
    const result = await executeRollout(await env.plan(v2, 0), rollout);
    expect(result.ok).toBe(false);
    expect(result.failure?.reason).toMatch(/^v2\.0\.0 answered \d+ of \d+ requests with 5xx \(100%\) since the rollout began; budget 1% \(99% sure its rate is over \d+(\.\d)?%\)/);
    expect(Object.values(served(env.world))).toEqual(Array(6).fill('v1.0.0'));
    expect(env.world.events).not.toContain('stop h3/master');
  });
});
