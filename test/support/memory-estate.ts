// The in-memory estate: application hosts and load balancers that implement the rollout's ports
// (rollout/ports.ts) over plain maps, shared by the unit tests and the simulator. At every
// operation it checks the two rules that keep requests from failing: HAProxy never routes to a
// container that is not healthy, and some healthy server is always in service on every load
// balancer once the site has been up.
//
// Every port call passes through one gate (Estate.enter) before it acts: a latency model adds
// the virtual time the operation takes (SSH connect, pull, stop, start, health, an HAProxy
// command), and an interceptor may stop the caller there (a seeded scheduler), or fail the call
// (a fault). Time is virtual (Clock): a container that ignores SIGTERM holds its stop for the
// whole stop timeout on the estate's clock, and the engine finishes that stop even when its
// caller is gone, as Docker does.
import { planRollout, type HostTarget } from '../../src/rollout/plan.js';
import type { Logger, RolloutDeps } from '../../src/rollout/execute.js';
import { roleContainerName, type RolePolicy } from '../../src/rollout/roles.js';
import type {
  AppContainer,
  ContainerSpec,
  DeployLock,
  FleetCounters,
  HostDriver,
  LoadBalancerDriver,
  LoadBalancerFleet,
  LockOwner,
  ReadyRule,
  Release,
  Role,
  RoleContainer,
  RoleSpec,
  ServerCounters,
  ServerStatus,
  Slot,
} from '../../src/rollout/ports.js';

export const release = (version: string): Release => ({ version, ref: `r/app@sha256:${version}`, digest: `sha256:${version}` });

export const ROLES: Role[] = ['master', 'backup'];
export const NAMES: Record<Role, string> = { master: 'app', backup: 'app-backup' };
export const PORTS: Record<Role, number> = { master: 50000, backup: 50001 };
/** The spare ports (slot b) of rollout.procedure: no-gap. */
export const SPARE_PORTS: Record<Role, number> = { master: 50002, backup: 50003 };

/** A container of a role beside the web role: app-ROLE-N, or app-ROLE-N-previous set aside. */
export const isRoleContainer = (name: string) => /^app-[a-z][a-z0-9-]*-\d+(-previous)?$/.test(name);

/** A role container (a worker) on a host. */
export interface RoleBox {
  role: string;
  release: Release;
  running: boolean;
  /** The spec it was started with (undefined for one the test put there). */
  spec?: RoleSpec;
}

/** app, app-backup, and their -adopted names → the role. */
export const roleOf = (name: string): Role => (name.startsWith('app-backup') ? 'backup' : 'master');

export type AdminState = 'ready' | 'drain' | 'maint';

/** One container of the app on a host. */
export interface Box {
  release: Release;
  healthy: boolean;
  /** Stopped (by a stop that has finished, or a kill): on the host, not serving. */
  running?: boolean;
  /** A hand-run app that ignores SIGTERM: every stop takes the whole stop timeout. */
  ignoresSigterm?: boolean;
  /** A stop the engine is carrying out (it goes on without its caller). */
  stopping?: Promise<void>;
  /** Published on the role's spare port (slot b); absent: slot a. */
  slot?: Slot;
}

/** One operation on the estate, as the gate sees it. */
export interface Call {
  /** The application host or load balancer called. */
  at: string;
  /** ping, containers, pull, stop, remove, rename, start, run, health, lock, unlock, prune; lb-set, lb-status (every server's), lb-counters, lb-find (every server's) */
  op: string;
  /** The container, lock or server the call is about. */
  subject?: string;
}

/** Virtual time: only the one who owns the clock moves it. */
export interface Clock {
  now(): number;
  /** Resolves once the clock has moved `ms` on (at once, when aborted). */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

/** A clock whose every sleep ends at once, the time moving on by its length: for plain unit tests. */
export class InstantClock implements Clock {
  private ms = 0;
  now(): number {
    return this.ms;
  }
  async sleep(ms: number): Promise<void> {
    this.ms += ms;
  }
}

/** How long an operation takes, in virtual ms (issue 24's scale model plugs in here). */
export type LatencyModel = (call: Call) => number;

/** Called at every operation before it acts: may wait (a scheduler), or throw (a fault). */
export type Interceptor = (call: Call) => Promise<void> | void;

const ZERO: ServerCounters = { requests: 0, http5xx: 0, connectionErrors: 0, responseErrors: 0, retries: 0, redispatches: 0, responseMs: 2, totalMs: 3 };

/** Every host and load balancer in one place, so invariants can look across them. */
export class Estate {
  boxes = new Map<string, Box>(); // host/role → container named app / app-backup
  asides = new Map<string, Box>(); // host/role → adopted container set aside (stopped)
  olds = new Map<string, Box>(); // host/role → the old container of a no-gap replacement (app-old), still serving
  roleBoxes = new Map<string, RoleBox>(); // host/name → a role container beside the web role (set-aside ones too)
  /** Versions whose role containers never become ready (exit at start). */
  rolesNotReady = new Set<string>();
  locks = new Map<string, DeployLock>(); // host/lock name → lock container
  lockJournals = new Map<string, string[]>(); // host/lock name → the journal files in the lock container
  /** Load balancer → server → admin state, and the state its configuration file gives a server. */
  lbs = new Map<string, Map<string, AdminState>>();
  lbConfig = new Map<string, Map<string, AdminState>>();
  sessions = new Map<string, number>(); // server → sessions that never finish draining
  events: string[] = [];
  violations: string[] = [];
  siteWasUp = false;
  sickOnArrival = new Set<string>(); // host/role whose existing container is unhealthy
  failingPages = new Set<string>(); // versions whose pages answer 500 (their health check passes)
  counted = new Map<string, Map<string, ServerCounters>>(); // load balancer → server → what it counted
  reloads = new Map<string, number>(); // load balancer → reloads so far (its process id moves on)
  /** Hosts and load balancers cut off: every call to them fails. */
  unreachable = new Set<string>();
  /** The registry: release tag → digest (what resolveDigest answers). */
  registry = new Map<string, string>();
  clock: Clock = new InstantClock();
  latency?: LatencyModel;
  intercept?: Interceptor;

  constructor(
    readonly hosts: string[],
    loadBalancers: string[] = ['lb'],
    /** The backend has spare servers (slot b, declared disabled: MAINT). */
    readonly spares = false,
  ) {
    for (const lb of loadBalancers) {
      const states = new Map<string, AdminState>();
      for (const host of hosts) for (const role of ROLES) states.set(serverOf(host, role), 'ready');
      if (spares) for (const host of hosts) for (const role of ROLES) states.set(serverOf(host, role, 'b'), 'maint');
      this.lbs.set(lb, states);
      this.lbConfig.set(lb, new Map(states));
      this.counted.set(lb, new Map());
    }
  }

  /** The first load balancer's states (the only one, in most unit tests). */
  get lbState(): Map<string, AdminState> {
    return this.lbs.values().next().value!;
  }

  key(host: string, role: Role) {
    return `${host}/${role}`;
  }

  /** The gate every operation passes first. */
  async enter(call: Call): Promise<void> {
    const ms = this.latency?.(call) ?? 0;
    if (ms > 0) await this.clock.sleep(ms);
    if (this.intercept) await this.intercept(call);
    if (this.unreachable.has(call.at)) throw new Error(`${call.at}: connection lost (${call.op}${call.subject ? ` ${call.subject}` : ''})`);
  }

  /** The container published in a server's slot (the role's, or its old one stepping aside), if any. */
  behind(server: string): Box | undefined {
    const { host, role, slot } = parseServer(server);
    const key = this.key(host, role);
    return [this.boxes.get(key), this.olds.get(key)].find((box) => box !== undefined && (box.slot ?? 'a') === slot);
  }

  /** Whether the container behind a server answers. */
  alive(server: string): boolean {
    const box = this.behind(server);
    return box !== undefined && box.healthy && box.running !== false;
  }

  serving(server: string, lb = this.lbs.keys().next().value!): boolean {
    return this.lbs.get(lb)!.get(server) !== 'maint' && this.alive(server);
  }

  /** HAProxy sends new requests to ready masters, or to ready backups when no master is. */
  check(event: string) {
    this.events.push(event);
    let up = true;
    for (const [lb, states] of this.lbs) {
      if (this.unreachable.has(lb)) continue;
      for (const [server, state] of states) {
        if (state !== 'ready') continue;
        const box = this.behind(server);
        // A ready server with no container counts as DOWN (health checks) only if it never had
        // one: routing to a container that was just stopped is what drops requests.
        if (box && (!box.healthy || box.running === false)) this.violations.push(`${event}: ${server} is ready${this.lbs.size > 1 ? ` on ${lb}` : ''} but its container is ${box.healthy ? 'stopped' : 'unhealthy'}`);
      }
      if (![...states.keys()].some((s) => this.serving(s, lb))) up = false;
    }
    if (up) this.siteWasUp = true;
    else if (this.siteWasUp) this.violations.push(`${event}: no server is serving`);
  }

  /** Traffic since the last look: 10 requests to each master in rotation (the backups when none is). */
  traffic(lb: string): void {
    const states = this.lbs.get(lb)!;
    const inRotation = (role: Role) => [...states.keys()].filter((s) => parseServer(s).role === role && states.get(s) === 'ready' && this.serving(s, lb));
    const servers = inRotation('master').length > 0 ? inRotation('master') : inRotation('backup');
    const counted = this.counted.get(lb)!;
    for (const server of servers) {
      const failing = this.failingPages.has(this.behind(server)!.release.version);
      const c = counted.get(server) ?? ZERO;
      counted.set(server, { ...c, requests: c.requests + 10, http5xx: c.http5xx + (failing ? 10 : 0) });
    }
  }

  /** An HAProxy reload: runtime states go back to the configuration's, counters to 0. */
  reload(lb: string): void {
    this.lbs.set(lb, new Map(this.lbConfig.get(lb)!));
    this.counted.set(lb, new Map());
    this.reloads.set(lb, (this.reloads.get(lb) ?? 0) + 1);
    this.check(`reload ${lb}`);
  }

  /** What each role container runs, by host/name ("stopped" when it is not running). */
  roleServed(): Record<string, string> {
    return Object.fromEntries([...this.roleBoxes].map(([k, b]) => [k, `${b.release.version}${b.running ? '' : ' stopped'}`]));
  }

  /** What each container named app / app-backup runs, by host/role. */
  served(): Record<string, string> {
    return Object.fromEntries([...this.boxes].map(([k, b]) => [k, b.release.version]));
  }
}

/** The server of a host's role, as the unit tests name it on every load balancer (slot b: HOST-ROLE-b). */
export const serverOf = (host: string, role: Role, slot: Slot = 'a') => `${host}-${role}${slot === 'b' ? '-b' : ''}`;

export function parseServer(server: string): { host: string; role: Role; slot: Slot } {
  const [host, role, b] = server.split('-') as [string, Role, string?];
  return { host, role, slot: b === 'b' ? 'b' : 'a' };
}

/** One application host's Docker Engine. */
export class MemoryHost implements HostDriver {
  constructor(
    readonly host: string,
    private readonly world: Estate,
  ) {}

  async ping() {
    await this.world.enter({ at: this.host, op: 'ping' });
  }
  async containers(): Promise<Partial<Record<Role, AppContainer>>> {
    await this.world.enter({ at: this.host, op: 'containers' });
    const out: Partial<Record<Role, AppContainer>> = {};
    for (const role of ROLES) {
      const box = this.world.boxes.get(this.world.key(this.host, role));
      if (box) out[role] = { id: `${this.host}-${role}`, name: NAMES[role], role, release: box.release, running: box.running !== false, ...(box.slot === 'b' ? { slot: 'b' as const } : {}) };
    }
    return out;
  }
  async resolveDigest(_repository: string, tag: string) {
    await this.world.enter({ at: this.host, op: 'resolve', subject: tag });
    return this.world.registry.get(tag) ?? null;
  }
  async pull(ref: string) {
    await this.world.enter({ at: this.host, op: 'pull', subject: ref });
  }
  async stopAndRemove(name: string, stopTimeout: number) {
    if (isRoleContainer(name)) return this.removeRoleBox(name);
    const role = roleOf(name);
    const key = this.world.key(this.host, role);
    if (name.endsWith('-adopted')) {
      await this.world.enter({ at: this.host, op: 'remove', subject: name });
      if (this.world.asides.delete(key)) this.world.events.push(`discard ${key}`);
      return;
    }
    // app / app-backup, or the old one a no-gap switch renamed app-old (still serving).
    const boxes = name.endsWith('-old') ? this.world.olds : this.world.boxes;
    await this.world.enter({ at: this.host, op: 'stop', subject: name });
    const box = boxes.get(key);
    if (!box) return;
    await this.stop(key, role, box, stopTimeout, 'stop');
    await this.world.enter({ at: this.host, op: 'remove', subject: name });
    if (boxes.get(key) === box) boxes.delete(key);
  }
  async setAside(name: string, asideName: string, stopTimeout: number) {
    const role = roleOf(name);
    const key = this.world.key(this.host, role);
    await this.world.enter({ at: this.host, op: 'stop', subject: name });
    const box = this.world.boxes.get(key);
    if (!box) throw new Error(`${key}: nothing to set aside`);
    if (this.world.asides.has(key)) throw new Error(`${key}: aside taken`);
    await this.stop(key, role, box, stopTimeout, 'aside');
    await this.world.enter({ at: this.host, op: 'rename', subject: name });
    if (this.world.boxes.get(key) !== box) throw new Error(`${key}: ${name} does not exist`);
    this.world.boxes.delete(key);
    this.world.asides.set(key, box);
  }
  /** app ⇄ app-old (running or not). */
  async rename(name: string, newName: string) {
    const key = this.world.key(this.host, roleOf(name));
    await this.world.enter({ at: this.host, op: 'rename', subject: name });
    const [from, to] = newName.endsWith('-old') ? [this.world.boxes, this.world.olds] : [this.world.olds, this.world.boxes];
    const box = from.get(key);
    if (!box) throw new Error(`${this.host}: cannot rename ${name}: it does not exist`);
    if (to.has(key)) throw new Error(`${this.host}: cannot rename ${name} to ${newName}: a container named ${newName} exists`);
    from.delete(key);
    to.set(key, box);
    this.world.events.push(`rename ${key} ${name} → ${newName}`);
  }
  async restore(asideName: string, name: string) {
    const key = this.world.key(this.host, roleOf(name));
    await this.world.enter({ at: this.host, op: 'rename', subject: asideName });
    const box = this.world.asides.get(key);
    if (!box) throw new Error(`${this.host}: cannot put ${name} back: ${asideName} does not exist`);
    if (this.world.boxes.has(key)) throw new Error(`${key}: cannot restore: ${name} exists`);
    this.world.asides.delete(key);
    this.world.boxes.set(key, box);
    await this.world.enter({ at: this.host, op: 'start', subject: name });
    box.running = true;
    this.world.check(`restore ${key} ${box.release.version}`);
  }
  async hasContainer(name: string) {
    await this.world.enter({ at: this.host, op: 'containers', subject: name });
    const key = this.world.key(this.host, roleOf(name));
    return (name.endsWith('-adopted') ? this.world.asides : name.endsWith('-old') ? this.world.olds : this.world.boxes).has(key);
  }
  /**
   * SIGTERM, then SIGKILL after the timeout: the engine carries it through on its own clock, so
   * a caller that is gone (a killed runner) does not keep the container alive.
   */
  private async stop(key: string, role: Role, box: Box, stopTimeout: number, verb: string) {
    if (box.running === false) return;
    for (const [lb, states] of this.world.lbs) {
      const state = states.get(serverOf(this.host, role, box.slot));
      if (state !== 'maint') this.world.violations.push(`${verb} ${key} while HAProxy has it ${state}${this.world.lbs.size > 1 ? ` on ${lb}` : ''}`);
    }
    box.stopping ??= (box.ignoresSigterm ? this.world.clock.sleep(stopTimeout * 1000) : Promise.resolve()).then(() => {
      box.running = false;
      delete box.stopping;
      this.world.check(`${verb} ${key}`);
    });
    await box.stopping;
  }
  async run(spec: ContainerSpec) {
    const key = this.world.key(this.host, spec.role);
    await this.world.enter({ at: this.host, op: 'run', subject: spec.name });
    if (this.world.boxes.has(key)) throw new Error(`${this.host}: a container named ${spec.name} exists`);
    const slot: Slot = spec.hostPort === SPARE_PORTS[spec.role] ? 'b' : 'a';
    for (const other of [this.world.boxes.get(key), this.world.olds.get(key)]) {
      if (other && other.running !== false && (other.slot ?? 'a') === slot) throw new Error(`${this.host}: port ${spec.hostPort} is already allocated`);
    }
    this.world.boxes.set(key, { release: spec.release, healthy: !spec.release.version.includes('broken'), ...(slot === 'b' ? { slot } : {}) });
    this.world.check(`run ${key} ${spec.release.version}`);
    return key;
  }
  async waitHealthy(name: string) {
    const role = roleOf(name);
    const key = this.world.key(this.host, role);
    await this.world.enter({ at: this.host, op: 'health', subject: name });
    const box = (name.endsWith('-old') ? this.world.olds : this.world.boxes).get(key);
    if (this.world.sickOnArrival.delete(key) && box) box.healthy = false;
    this.world.events.push(`health ${key}`);
    if (box?.healthy && box.running !== false) return { healthy: true as const, detail: 'HTTP 200' };
    return { healthy: false as const, detail: 'HTTP 500', logs: `${key} says boom` };
  }
  async roleContainers(): Promise<RoleContainer[]> {
    await this.world.enter({ at: this.host, op: 'containers', subject: 'roles' });
    return [...this.world.roleBoxes]
      .filter(([k]) => k.startsWith(`${this.host}/`))
      .map(([k, b]) => ({ id: k, name: k.slice(this.host.length + 1), role: b.role, release: b.release, running: b.running }))
      .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
  }
  async runRole(spec: RoleSpec) {
    const key = `${this.host}/${spec.name}`;
    await this.world.enter({ at: this.host, op: 'run', subject: spec.name });
    if (this.world.roleBoxes.has(key)) throw new Error(`${this.host}: a container named ${spec.name} exists`);
    this.world.roleBoxes.set(key, { role: spec.role, release: spec.release, running: !this.world.rolesNotReady.has(spec.release.version), spec });
    this.world.events.push(`run ${key} ${spec.release.version}`);
    return key;
  }
  async waitReady(name: string, _rule: ReadyRule, _timeoutSeconds: number, _onProgress?: (line: string) => void, signal?: AbortSignal) {
    await this.world.enter({ at: this.host, op: 'health', subject: name });
    if (signal?.aborted) return { healthy: false as const, detail: 'cancelled', logs: '' };
    const box = this.world.roleBoxes.get(`${this.host}/${name}`);
    this.world.events.push(`ready? ${this.host}/${name}`);
    if (box?.running) return { healthy: true as const, detail: 'running 5s without a restart' };
    return { healthy: false as const, detail: 'exited with code 1', logs: `${name} says boom` };
  }
  private async removeRoleBox(name: string) {
    const key = `${this.host}/${name}`;
    await this.world.enter({ at: this.host, op: 'stop', subject: name });
    const box = this.world.roleBoxes.get(key);
    if (!box) return;
    box.running = false;
    await this.world.enter({ at: this.host, op: 'remove', subject: name });
    if (this.world.roleBoxes.get(key) === box) this.world.roleBoxes.delete(key);
    this.world.events.push(`remove ${key}`);
  }
  /** Renamed first, then stopped: a failed rename leaves it running under its name. */
  async moveAside(name: string, asideName: string) {
    const key = `${this.host}/${name}`;
    await this.world.enter({ at: this.host, op: 'rename', subject: name });
    const box = this.world.roleBoxes.get(key);
    if (!box) throw new Error(`${this.host}: cannot set ${name} aside: it does not exist`);
    if (this.world.roleBoxes.has(`${this.host}/${asideName}`)) throw new Error(`${this.host}: cannot set ${name} aside: ${asideName} exists`);
    this.world.roleBoxes.delete(key);
    this.world.roleBoxes.set(`${this.host}/${asideName}`, box);
    await this.world.enter({ at: this.host, op: 'stop', subject: asideName });
    box.running = false;
    this.world.events.push(`aside ${key}`);
  }
  /** Stopped (gracefully), started, then renamed back: cut short in between, it is under its aside name. */
  async moveBack(asideName: string, name: string) {
    await this.world.enter({ at: this.host, op: 'stop', subject: asideName });
    const box = this.world.roleBoxes.get(`${this.host}/${asideName}`);
    if (!box) throw new Error(`${this.host}: cannot put ${name} back: ${asideName} does not exist`);
    box.running = false;
    await this.world.enter({ at: this.host, op: 'start', subject: asideName });
    box.running = true;
    await this.world.enter({ at: this.host, op: 'rename', subject: asideName });
    if (this.world.roleBoxes.has(`${this.host}/${name}`)) throw new Error(`${this.host}: cannot put ${name} back: ${name} exists`);
    this.world.roleBoxes.delete(`${this.host}/${asideName}`);
    this.world.roleBoxes.set(`${this.host}/${name}`, box);
    this.world.events.push(`restore ${this.host}/${name} ${box.release.version}`);
  }
  async acquireLock(name: string, lock: DeployLock) {
    await this.world.enter({ at: this.host, op: 'lock', subject: name });
    const current = this.world.locks.get(`${this.host}/${name}`);
    if (current) return { acquired: false as const, current };
    this.world.locks.set(`${this.host}/${name}`, lock);
    this.world.events.push(`lock ${this.host}/${name} ${lock.runId}`);
    return { acquired: true as const };
  }
  async releaseLock(name: string, owner: LockOwner) {
    await this.world.enter({ at: this.host, op: 'unlock', subject: name });
    const current = this.world.locks.get(`${this.host}/${name}`);
    if (!current || current.runId !== owner.runId || current.attempt !== owner.attempt) return false;
    this.world.locks.delete(`${this.host}/${name}`);
    this.world.lockJournals.delete(`${this.host}/${name}`);
    this.world.events.push(`unlock ${this.host}/${name} ${owner.runId}`);
    return true;
  }
  async writeLockJournal(name: string, slot: 0 | 1, text: string) {
    await this.world.enter({ at: this.host, op: 'journal', subject: name });
    const key = `${this.host}/${name}`;
    if (!this.world.locks.has(key)) throw new Error(`${this.host}: no lock ${name} to write the journal into`);
    const files = this.world.lockJournals.get(key) ?? [];
    files[slot] = text;
    this.world.lockJournals.set(key, files);
  }
  async readLockJournal(name: string) {
    await this.world.enter({ at: this.host, op: 'journal', subject: name });
    return (this.world.lockJournals.get(`${this.host}/${name}`) ?? []).filter((t) => t !== undefined);
  }
  async pruneImages() {
    await this.world.enter({ at: this.host, op: 'prune' });
    return [];
  }
  dispose() {}
}

/** One HAProxy's Runtime API over the estate's backend (for the real LoadBalancers fleet). */
export class MemoryLoadBalancer implements LoadBalancerDriver {
  constructor(
    readonly lb: string,
    private readonly world: Estate,
  ) {}
  async findServers(targets: { address: string; port: number }[]) {
    await this.world.enter({ at: this.lb, op: 'lb-find' });
    return targets.map(({ address, port }) => {
      const role = ROLES.find((r) => PORTS[r] === port);
      const spare = this.world.spares ? ROLES.find((r) => SPARE_PORTS[r] === port) : undefined;
      if (!this.world.hosts.includes(address)) return undefined;
      return role ? serverOf(address, role) : spare ? serverOf(address, spare, 'b') : undefined;
    });
  }
  async setState(server: string, state: AdminState) {
    await this.world.enter({ at: this.lb, op: 'lb-set', subject: server });
    this.world.lbs.get(this.lb)!.set(server, state);
    this.world.check(`${state} ${server}${this.world.lbs.size > 1 ? ` on ${this.lb}` : ''}`);
  }
  async statuses(): Promise<Map<string, ServerStatus>> {
    await this.world.enter({ at: this.lb, op: 'lb-status' });
    const out = new Map<string, ServerStatus>();
    for (const [server, state] of this.world.lbs.get(this.lb)!) {
      const status = state === 'maint' ? 'MAINT' : state === 'drain' ? 'DRAIN' : this.world.serving(server, this.lb) ? 'UP' : 'DOWN';
      out.set(server, { status, sessions: state === 'maint' ? 0 : (this.world.sessions.get(server) ?? 0), queued: 0 });
    }
    return out;
  }
  async counters() {
    await this.world.enter({ at: this.lb, op: 'lb-counters' });
    this.world.traffic(this.lb);
    // show info: a reload is a new process, with a new pid.
    return { process: { pid: 100 + (this.world.reloads.get(this.lb) ?? 0), uptimeSeconds: 0 }, servers: new Map(this.world.counted.get(this.lb)!) };
  }
  dispose() {}
}

/**
 * One load balancer as the fleet contract has it, named by the unit tests' server names
 * (drivers/load-balancers.ts is tested on its own; the simulator drives it over MemoryLoadBalancer).
 */
export class MemoryFleet implements LoadBalancerFleet {
  private readonly runtime: MemoryLoadBalancer;
  constructor(
    world: Estate,
    private readonly held: Map<string, 'maint' | 'drain'>,
    readonly lb = 'lb',
  ) {
    this.runtime = new MemoryLoadBalancer(lb, world);
  }
  async setState(server: string, state: AdminState) {
    if (state === 'drain' && this.held.get(server) === 'maint') return;
    await this.runtime.setState(server, state);
  }
  async restoreState(server: string) {
    await this.setState(server, this.held.get(server) ?? 'ready');
  }
  async status(server: string): Promise<ServerStatus> {
    return (await this.runtime.statuses()).get(server)!;
  }
  async counters(): Promise<FleetCounters> {
    const { process, servers } = await this.runtime.counters();
    return { read: new Map([[this.lb, servers]]), failed: new Map(), ...(process ? { processes: new Map([[this.lb, process]]) } : {}) };
  }
}

export interface EstateOptions {
  lb?: boolean;
  /** The load balancers' names (the estate's; deps.lb drives the first one only, as MemoryFleet). */
  loadBalancers?: string[];
  maxParallel?: number;
  held?: Map<string, 'maint' | 'drain'>;
  onDrainTimeout?: 'fail' | 'cut';
  /** rollout.procedure: no-gap, over a backend with spare servers. */
  noGap?: boolean;
  /** Roles beside the web role, each host of theirs running `start`'s master release (when any) in each container. */
  roles?: RolePolicy[];
}

/** An estate of `hosts`, each running `start`, and the rollout's dependencies over it. */
export function memoryEstate(
  hosts: string[],
  start: Partial<Record<Role, Release>>,
  { lb = true, loadBalancers = ['lb'], maxParallel = 1, held = new Map<string, 'maint' | 'drain'>(), onDrainTimeout = 'fail', roles, noGap = false }: EstateOptions = {},
) {
  const world = new Estate(hosts, loadBalancers, noGap);
  for (const role of roles ?? []) {
    for (const host of role.hosts) {
      for (let n = 1; n <= role.count && start.master; n++) world.roleBoxes.set(`${host}/${roleContainerName('app', role.name, n)}`, { role: role.name, release: start.master, running: true });
    }
  }
  for (const host of hosts) for (const role of ROLES) {
    const r = start[role];
    if (r) world.boxes.set(world.key(host, role), { release: r, healthy: true });
  }
  for (const [server, state] of held) {
    world.lbState.set(server, state);
    world.lbConfig.get('lb')!.set(server, state);
  }
  world.check('start');
  const lines: string[] = [];
  const warnings: string[] = [];
  const log: Logger = {
    info: (l) => lines.push(l),
    warning: (l) => warnings.push(l),
    group: (_t, run) => run(),
  };
  const deps: RolloutDeps = {
    hosts: new Map(hosts.map((h) => [h, new MemoryHost(h, world)])),
    ...(lb
      ? {
          lb: {
            driver: new MemoryFleet(world, held),
            servers: new Map(hosts.map((h) => [h, { master: serverOf(h, 'master'), backup: serverOf(h, 'backup') }])),
            held,
            drainTimeoutSeconds: 0,
            onDrainTimeout,
            ...(noGap
              ? { slots: { spares: new Map(hosts.map((h) => [h, { master: serverOf(h, 'master', 'b'), backup: serverOf(h, 'backup', 'b') }])), active: new Map() } }
              : {}),
          },
        }
      : {}),
    ...(noGap ? { procedure: 'no-gap' as const, oldName: (role: Role) => `${NAMES[role]}-old` } : {}),
    ...(roles
      ? {
          roles: {
            app: 'app',
            roles,
            spec: (role: string, name: string, r: Release) => ({ name, role, release: r, command: ['work'], env: {}, volumes: [], restart: 'no', stopTimeout: 1, init: true, ready: { running: 5 }, labels: {} }),
            readyTimeoutSeconds: 1,
          },
        }
      : {}),
    containerName: (role) => NAMES[role],
    asideName: (role) => `${NAMES[role]}-adopted`,
    hostPort: (role, slot = 'a') => (slot === 'b' ? SPARE_PORTS : PORTS)[role],
    spec: (role, r, slot = 'a'): ContainerSpec => ({ name: NAMES[role], role, release: r, hostPort: (slot === 'b' ? SPARE_PORTS : PORTS)[role], containerPort: 3000, env: {}, volumes: [], restart: 'no', stopTimeout: 1, init: true, labels: {} }),
    health: { path: '/healthcheck', timeoutSeconds: 1, intervalSeconds: 1 },
    stopTimeoutSeconds: 1,
    log,
    sleep: (ms) => world.clock.sleep(ms),
    pollMs: 1,
  };
  const plan = async (target: Release, canaryHold = 0) => {
    const snapshots = await Promise.all(hosts.map(async (h) => ({ host: h, current: hostTarget(await deps.hosts.get(h)!.containers('app')) })));
    return planRollout(target, snapshots, maxParallel, canaryHold);
  };
  return { world, deps, lines, warnings, plan };
}

export function hostTarget(containers: Partial<Record<Role, AppContainer>>): HostTarget {
  const out: HostTarget = {};
  for (const role of ROLES) if (containers[role]?.running && containers[role]?.release) out[role] = containers[role]!.release;
  return out;
}
