// Runs a rollout plan against the drivers, host after host (max-parallel at once), and on any
// failure puts every host it touched back on the release it ran before, with the same
// backup-first procedure, so that a failed deploy drops no request either.
import { planHost, sameRelease, settleTarget, type HostPlan, type HostTarget, type RolloutPlan, type Step } from './plan.js';
import type {
  ContainerSpec,
  HealthCheck,
  HostDriver,
  LoadBalancerFleet,
  Release,
  Role,
  Slot,
} from './ports.js';
import { replaceWithoutGap, usesNoGap } from './no-gap.js';
import { moveRoles, type RoleDeps, type RolesResult } from './roles.js';

export interface Logger {
  info(line: string): void;
  warning(line: string): void;
  /** Folds the lines `run` prints (core.group on a runner). */
  group<T>(title: string, run: () => Promise<T>): Promise<T>;
}

export interface LoadBalancing {
  /** Every load balancer of the environment, as one. */
  driver: LoadBalancerFleet;
  /** The fleet's server names of each host's roles, found by address and port in pre-flight. */
  servers: Map<string, Record<Role, string>>;
  /**
   * Servers an operator had out of service (MAINT or DRAIN) before the deploy: their containers
   * are updated like any other, and the servers are left in that state, never put in rotation.
   */
  held: Map<string, 'maint' | 'drain'>;
  drainTimeoutSeconds: number;
  /**
   * Sessions left on a draining server at the timeout: `fail` puts the server back and fails
   * the step (then rolled back like any failure); `cut` stops the container with them.
   */
  onDrainTimeout: 'fail' | 'cut';
  /**
   * Each host's spare servers (slot b, `ports.*-spare`) and the slot each role's container runs
   * in now (absent: a), which the rollout keeps up to date as containers change slots. Present
   * when the backend has spare servers (rollout.procedure: no-gap needs them).
   */
  slots?: { spares: Map<string, Record<Role, string>>; active: Map<string, Partial<Record<Role, Slot>>> };
}

/**
 * Told of every change the post step (or a run taking the lock over) may have to finish when
 * this run is cut short; each is awaited before the change it announces is made.
 */
export interface RolloutJournal {
  /** The host's first change in this run; `before`: what it ran until then. */
  touched(host: string, before: HostTarget): void | Promise<void>;
  /** A server this rollout took out of service (true) or put back (false). */
  outOfService(server: string, out: boolean): void | Promise<void>;
  /** The host's new master is a canary not yet judged (true: from before it goes in service), or judged or gone (false). */
  unproven(host: string, holding: boolean): void | Promise<void>;
  /**
   * A role whose container this run is changing (true: from before its server goes out of
   * service, so a stop may be in flight), or done: proven in service, or put back unchanged (false).
   */
  changing(host: string, role: Role, yes: boolean): void | Promise<void>;
  /** An adopted container this run set aside (true), or restored or discarded (false). */
  aside(host: string, role: Role, yes: boolean): void | Promise<void>;
}

/** Told of each change of what serves behind a server: the receipt's attribution and chart. */
export interface RolloutObserver {
  /**
   * The role is in maintenance on every load balancer and its old container gone; `to` is about to run there.
   * The returned promise must settle (never reject) before the role is put back in service.
   * `server`: the server this is about, when not the role's usual one (a no-gap slot change).
   */
  changing(host: string, role: Role, to: Release | undefined, server?: string): Promise<void>;
  /** The role is in service again, running `release`. */
  serving(host: string, role: Role, release: Release): void;
}

/** The canary hold and the error budget (receipt/canary.ts). */
export interface CanaryGate {
  /** Holds while the host's new master serves alone: why the release fails, or undefined. Ends early on `signal`. */
  hold(host: string, signal?: AbortSignal): Promise<string | undefined>;
  /** After a container of `release` went in service: why the error budget is spent, or undefined. Ends early on `signal`. */
  check(release: Release, signal?: AbortSignal): Promise<string | undefined>;
}

export interface RolloutDeps {
  hosts: Map<string, HostDriver>;
  /** Cancellation (the job cancelled: SIGINT/SIGTERM): no new step starts, waits end at once. */
  signal?: AbortSignal;
  /** How long a cancelled rollout settles the hosts in flight before leaving them to the post step. */
  settleMs?: number;
  /** false: a failure is reported, not rolled back (the post step's repair of a killed run). */
  rollBackOnFailure?: boolean;
  journal?: RolloutJournal;
  observer?: RolloutObserver;
  canary?: CanaryGate;
  /** Absent: containers are replaced in place and HAProxy's own checks notice (may fail requests). */
  lb?: LoadBalancing;
  /** Roles beside the web role: moved once every web batch is proven. Absent: none. */
  roles?: RoleDeps;
  containerName(role: Role): string;
  /** rollout.procedure: no-gap replaces a container without a gap (rollout/no-gap.ts); absent: backup-first. */
  procedure?: 'backup-first' | 'no-gap';
  /** Where a no-gap replacement puts the old container, still serving, while the new one starts. */
  oldName?(role: Role): string;
  /** Where an adopted container waits, stopped, while its replacement proves itself. */
  asideName(role: Role): string;
  hostPort(role: Role, slot?: Slot): number;
  spec(role: Role, release: Release, slot?: Slot): ContainerSpec;
  health: HealthCheck;
  stopTimeoutSeconds: number;
  log: Logger;
  sleep(ms: number): Promise<void>;
  /** How often HAProxy is polled while draining and while waiting for UP. */
  pollMs: number;
}

/** The rollout was cancelled; what was in flight is settled (or left to the post step). */
/** A cancelled job gets SIGTERM 7.5 s after SIGINT: settling must leave time to release and report. */
const DEFAULT_SETTLE_MS = 5_000;

export class Cancelled extends Error {
  override name = 'Cancelled';
  constructor() {
    super('cancelled');
  }
}

export class StepFailed extends Error {
  override name = 'StepFailed';
  constructor(
    readonly host: string,
    /** master, backup, or a role beside the web role (roles.ts). */
    readonly role: string,
    readonly release: Release | undefined,
    readonly reason: string,
    readonly logs = '',
  ) {
    super(`${host}: ${role}${release ? ` ${release.version}` : ''} ${reason}`);
  }
}

/** How long each phase of replacing one role took, in seconds. */
export interface PhaseTimes {
  role: Role;
  drain: number;
  stop: number;
  start: number;
  healthy: number;
  inService: number;
}

/** A replacement's phase times, and a wrapper that times one phase. */
export function phaseTimer(role: Role) {
  const times: PhaseTimes = { role, drain: 0, stop: 0, start: 0, healthy: 0, inService: 0 };
  const timed = async <T>(phase: Exclude<keyof PhaseTimes, 'role'>, run: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    try {
      return await run();
    } finally {
      times[phase] = (Date.now() - started) / 1000;
    }
  };
  return { times, timed };
}

export function describePhases(t: PhaseTimes): string {
  const s = (n: number) => n.toFixed(1);
  return `${t.role}: drain ${s(t.drain)} s, stop ${s(t.stop)} s, start ${s(t.start)} s, healthy ${s(t.healthy)} s, in service ${s(t.inService)} s`;
}

export interface HostOutcome {
  host: string;
  before: HostTarget;
  after: HostTarget;
  seconds: number;
  /** Each replacement of a role, in order, with its phase times. */
  phases: PhaseTimes[];
  /** Last health answer seen for the host's master. */
  health: string;
  rolledBack: boolean;
}

export interface RolloutResult {
  ok: boolean;
  hosts: HostOutcome[];
  /** The first failure; `failures` holds every host's failure of that batch. */
  failure?: StepFailed;
  failures: StepFailed[];
  /** Problems met while rolling back (each names its host); empty when the rollback was clean. */
  rollbackErrors: string[];
  /**
   * Set when cancelled: whether every host in flight was settled (both roles on one release, in
   * service); hosts left unsettled are the post step's to finish.
   */
  cancelled?: { settled: boolean; unsettled: string[] };
  /** The roles beside the web role, when they were moved (every web batch proven). */
  roles?: RolesResult;
}

/** One host's live state during the run: which release each role runs right now. */
export class HostRun {
  current: HostTarget;
  health = '';
  seconds = 0;
  /** Whether any container changed: only touched hosts are rolled back. */
  touched = false;
  /** The role being worked on: what a failure outside a step is about. */
  role: Role = 'backup';
  readonly phases: PhaseTimes[] = [];
  /** Roles whose adopted container is set aside (stopped, renamed) during this run. */
  readonly asides = new Set<Role>();
  /**
   * Roles whose adopted container is under its own name while the run does not count it as
   * serving (its set-aside failed part way after the stop, or it was put back and is not proven
   * yet): the next replace of the role sets it aside again, never removes the user's container.
   */
  readonly stoppedInPlace = new Set<Role>();
  /** Roles proven healthy and in service during this run. */
  readonly verified = new Set<Role>();
  /** The master is a canary not yet judged: never settled on, even once in service. */
  unproven = false;
  /** This host was put back on the release it ran before by the automatic rollback. */
  rolledBack = false;
  /** The cancellation this run's waits obey (swapped for a deadline while settling). */
  signal: AbortSignal | undefined;

  constructor(
    readonly plan: HostPlan,
    readonly driver: HostDriver,
    readonly deps: RolloutDeps,
  ) {
    this.current = { ...plan.before };
    this.signal = deps.signal;
  }

  checkCancelled(): void {
    if (this.signal?.aborted) throw new Cancelled();
  }

  log(line: string) {
    this.deps.log.info(`[${this.plan.host}] ${line}`);
  }

  async run(steps: Step[], target: HostTarget): Promise<void> {
    const started = Date.now();
    try {
      for (const [i, step] of steps.entries()) {
        this.checkCancelled();
        await this.step(step, target, steps[i + 1]);
      }
    } finally {
      this.seconds += (Date.now() - started) / 1000;
    }
  }

  private async step(step: Step, target: HostTarget, next?: Step): Promise<void> {
    this.role = step.role;
    switch (step.kind) {
      case 'check':
        return this.check(step.role, target);
      case 'replace':
        // A sick backup repaired earlier in this run may already be on this release.
        if (this.verified.has(step.role) && sameRelease(this.current[step.role], step.to)) return;
        return this.replace(step.role, step.to, next?.kind === 'hold');
      case 'remove':
        return this.remove(step.role);
      case 'hold':
        return this.hold();
    }
  }

  private async hold(): Promise<void> {
    if (!this.unproven) {
      this.unproven = true;
      await this.deps.journal?.unproven(this.plan.host, true);
    }
    const failed = await this.deps.canary?.hold(this.plan.host, this.signal);
    // A canary cut short is unproven: settling takes the host back to what it ran.
    this.checkCancelled();
    // The release's version is in the reason already.
    if (failed) throw new StepFailed(this.plan.host, 'master', undefined, failed);
    this.unproven = false;
    await this.deps.journal?.unproven(this.plan.host, false);
  }

  private async check(role: Role, target: HostTarget): Promise<void> {
    const verdict = await this.waitHealthy(role);
    if (verdict.healthy) {
      this.log(`${role} ${this.current[role]?.version ?? ''}: ${verdict.detail}`);
      await this.ensureInService(role);
      this.verified.add(role);
      return;
    }
    // A sick container is repaired with the release it should end on, before anything else moves.
    const repair = target[role] ?? target.master ?? target.backup;
    if (!repair) throw new StepFailed(this.plan.host, role, this.current[role], `is not healthy: ${verdict.detail}`, verdict.logs);
    this.deps.log.warning(`[${this.plan.host}] ${role} is not healthy (${verdict.detail}): replacing it with ${repair.version}`);
    await this.replace(role, repair);
  }

  private async replace(role: Role, to: Release, canary = false): Promise<void> {
    if (usesNoGap(this, role, to)) return replaceWithoutGap(this, role, to, canary);
    const name = this.deps.containerName(role);
    if (canary) {
      // The canary is unjudged from before it goes in service until its hold ends: a cancel or
      // a kill anywhere in between takes the host back, never onto the new release.
      this.unproven = true;
      await this.deps.journal?.unproven(this.plan.host, true);
    }
    const from = this.current[role];
    this.log(`${role}: ${from?.version ?? 'nothing'} → ${to.version}`);
    await this.markTouched();
    await this.deps.journal?.changing(this.plan.host, role, true);
    const { times, timed } = phaseTimer(role);
    await timed('drain', () => this.takeOutOfService(role));
    // Kept whole, so that a rollback puts back the very container that served.
    const setAside = from?.adopted || this.stoppedInPlace.has(role);
    await timed('stop', async () => {
      if (setAside) {
        await this.stopping(role, from, () => this.driver.setAside(name, this.deps.asideName(role), this.deps.stopTimeoutSeconds));
        this.stoppedInPlace.delete(role);
        this.asides.add(role);
      } else {
        await this.stopping(role, from, () => this.driver.stopAndRemove(name, this.deps.stopTimeoutSeconds));
      }
    });
    delete this.current[role];
    this.verified.delete(role);
    // What the role runs is known before the journal is told (a write that fails stops the step here).
    if (setAside) await this.deps.journal?.aside(this.plan.host, role, true);
    // Taken note of once the old container is gone (the errors of sessions a stop cut are its
    // own) and read while the new one starts: nothing reaches the server meanwhile.
    const noted = this.deps.observer?.changing(this.plan.host, role, to);
    await timed('start', async () => {
      if (to.adopted) {
        await this.driver.restore(this.deps.asideName(role), name);
        this.asides.delete(role);
        // Not proven yet: cancelled while it starts, a settle would otherwise remove it.
        this.stoppedInPlace.add(role);
        await this.deps.journal?.aside(this.plan.host, role, false);
      } else {
        await this.driver.run(this.deps.spec(role, to, this.slot(role)));
      }
    });
    const verdict = await timed('healthy', () => this.waitHealthy(role));
    // Cancelled while it started: it stays, unproven and out of service, for settling to judge.
    if (!verdict.healthy && this.signal?.aborted) throw new Cancelled();
    if (!verdict.healthy) {
      this.log(`${role} ${to.version} did not become healthy: ${verdict.detail}`);
      if (verdict.logs) this.log(verdict.logs);
      // A container put back is the user's own: it stays, stopped or not, for them to look at.
      if (!to.adopted) await this.driver.stopAndRemove(name, 0);
      throw new StepFailed(this.plan.host, role, to, `did not become healthy: ${verdict.detail}`, verdict.logs);
    }
    this.current[role] = to;
    await noted;
    await timed('inService', () => this.ensureInService(role));
    await this.inService(role, to, times, canary);
  }

  /** A replacement `to` is proven healthy and in service: recorded, journalled, and (not the canary) judged. */
  async inService(role: Role, to: Release, times: PhaseTimes, canary: boolean): Promise<void> {
    this.verified.add(role);
    await this.deps.journal?.changing(this.plan.host, role, false);
    if (role === 'master' && this.unproven && !canary) {
      // The canary's replacement (a rollback, a settle) is in service: nothing unjudged is left.
      this.unproven = false;
      await this.deps.journal?.unproven(this.plan.host, false);
    }
    this.phases.push(times);
    this.log(describePhases(times));
    this.deps.observer?.serving(this.plan.host, role, to);
    // The canary's own master is judged by its hold, which follows at once: a budget check here
    // would judge it on however many requests came in before the hold, a race with the traffic.
    if (canary) return;
    const spent = await this.deps.canary?.check(to, this.signal);
    if (spent) throw new StepFailed(this.plan.host, role, undefined, spent);
  }

  async markTouched(): Promise<void> {
    if (!this.touched) await this.deps.journal?.touched(this.plan.host, this.plan.before);
    this.touched = true;
  }

  private async remove(role: Role): Promise<void> {
    await this.markTouched();
    await this.deps.journal?.changing(this.plan.host, role, true);
    await this.takeOutOfService(role);
    const from = this.current[role];
    await this.stopping(role, from, () => this.driver.stopAndRemove(this.deps.containerName(role), this.deps.stopTimeoutSeconds));
    await this.deps.observer?.changing(this.plan.host, role, undefined);
    delete this.current[role];
    this.verified.delete(role);
    // Nothing runs in either slot: the next container starts in slot a.
    const active = this.deps.lb?.slots?.active.get(this.plan.host);
    if (active) delete active[role];
    await this.deps.journal?.changing(this.plan.host, role, false);
    this.log(`${role}: removed`);
  }

  /**
   * Stops the role's old container (`stop`: a stop and remove, or a set-aside). A failure part
   * way (the stop done, the remove or the rename failed) leaves the host otherwise than believed:
   * what the role runs is read back from the host, so that the outcome, a rollback and settling
   * start from the truth. An adopted container stopped under its own name is the user's still:
   * it is set aside by the next replace of the role (to be put back whole), never removed. A read
   * that fails too (the host cut off) leaves the belief as it was.
   */
  private async stopping(role: Role, from: Release | undefined, stop: () => Promise<void>): Promise<void> {
    try {
      await stop();
    } catch (error) {
      // containerName('master') is the app's name: containers() finds both roles by it.
      const found = await this.driver.containers(this.deps.containerName('master')).catch(() => undefined);
      const container = found?.[role];
      if (found && !container?.running) {
        delete this.current[role];
        this.verified.delete(role);
        if (container && (from?.adopted || this.stoppedInPlace.has(role))) this.stoppedInPlace.add(role);
      }
      throw error;
    }
  }

  async waitHealthy(role: Role, name = this.deps.containerName(role), slot = this.slot(role)) {
    const verdict = await this.driver.waitHealthy(
      name,
      this.deps.hostPort(role, slot),
      this.deps.health,
      (line) => this.log(line),
      this.signal,
    );
    if (role === 'master') this.health = verdict.detail;
    return verdict;
  }

  /** The slot the role's container runs in now. */
  slot(role: Role): Slot {
    return this.deps.lb?.slots?.active.get(this.plan.host)?.[role] ?? 'a';
  }

  /** The role's server in `slot` (the slot its container runs in now, by default). */
  server(role: Role, slot = this.slot(role)): string | undefined {
    const servers = slot === 'b' ? this.deps.lb?.slots?.spares : this.deps.lb?.servers;
    return servers?.get(this.plan.host)?.[role];
  }

  /** Drain (new requests go elsewhere, running ones finish), then maintenance. */
  async takeOutOfService(role: Role, server = this.server(role)): Promise<void> {
    const lb = this.deps.lb;
    if (!lb || !server) return;
    const held = lb.held.get(server);
    const putBack = () => (held ? lb.driver.restoreState(server) : lb.driver.setState(server, 'ready'));
    await this.deps.journal?.outOfService(server, true);
    if (this.current[role]) {
      // A server the operator had in MAINT everywhere gets no drain: nothing reaches it.
      await lb.driver.setState(server, 'drain');
      const deadline = Date.now() + lb.drainTimeoutSeconds * 1000;
      let status = await lb.driver.status(server);
      while (status.sessions + status.queued > 0 && Date.now() < deadline) {
        if (this.signal?.aborted) {
          // Nothing was stopped: the container serves on.
          await putBack();
          await this.deps.journal?.outOfService(server, false);
          await this.deps.journal?.changing(this.plan.host, role, false);
          throw new Cancelled();
        }
        await this.deps.sleep(this.deps.pollMs);
        status = await lb.driver.status(server);
      }
      const left = status.sessions + status.queued;
      if (left > 0 && lb.onDrainTimeout === 'cut') {
        this.deps.log.warning(`[${this.plan.host}] ${server} still had ${left} sessions after the ${lb.drainTimeoutSeconds}s drain timeout: cutting them (haproxy.on-drain-timeout: cut)`);
      } else if (left > 0) {
        await putBack();
        await this.deps.journal?.outOfService(server, false);
        await this.deps.journal?.changing(this.plan.host, role, false);
        throw new StepFailed(
          this.plan.host,
          role,
          this.current[role],
          `still had ${left} sessions after the ${lb.drainTimeoutSeconds}s drain timeout (haproxy.drain-timeout); ${server} was put back ` +
            'in service and nothing was stopped. Raise haproxy.drain-timeout, or set haproxy.on-drain-timeout: cut to stop such sessions',
        );
      } else {
        this.log(`${server} drained`);
      }
    }
    await lb.driver.setState(server, 'maint');
    // A load balancer reloaded without its state file, or a peer that missed the command, would
    // route to the container about to stop: it must be MAINT on every one of them right now.
    const status = await lb.driver.status(server);
    if (!status.status.startsWith('MAINT')) {
      await lb.driver.setState(server, 'maint');
      const again = await lb.driver.status(server);
      if (!again.status.startsWith('MAINT')) {
        throw new StepFailed(this.plan.host, role, this.current[role], `was not stopped: ${server} is ${again.status} after it was put in maintenance (a load balancer reloaded?)`);
      }
    }
  }

  /**
   * Back into HAProxy only once proven healthy; done when HAProxy itself reports it UP. A server
   * the operator had out of service goes back to that state instead.
   */
  async ensureInService(role: Role, server = this.server(role)): Promise<void> {
    const lb = this.deps.lb;
    if (!lb || !server) return;
    const held = lb.held.get(server);
    if (held) {
      await lb.driver.restoreState(server);
      await this.deps.journal?.outOfService(server, false);
      this.log(`${server} left out of service (${held.toUpperCase()}), as it was before the deploy`);
      return;
    }
    let status = await lb.driver.status(server);
    if (status.status.startsWith('UP')) {
      await this.deps.journal?.outOfService(server, false);
      return;
    }
    await lb.driver.setState(server, 'ready');
    const deadline = Date.now() + this.deps.health.timeoutSeconds * 1000;
    status = await lb.driver.status(server);
    await this.deps.journal?.outOfService(server, false);
    while (!status.status.startsWith('UP')) {
      this.checkCancelled();
      if (Date.now() >= deadline) {
        throw new StepFailed(this.plan.host, role, this.current[role], `is healthy but HAProxy reports ${server} ${status.status} after ${this.deps.health.timeoutSeconds}s`);
      }
      await this.deps.sleep(this.deps.pollMs);
      status = await lb.driver.status(server);
      // MAINT after `ready`: a load balancer reloading took the command with its old process.
      if (status.status.includes('MAINT')) await lb.driver.setState(server, 'ready');
    }
    this.log(`${server} is ${status.status} in HAProxy`);
  }

  /**
   * Every role this run put in service is still UP on every load balancer. A load balancer
   * reloaded from a server-state file saved just before a `ready` (config management reloading
   * HAProxy mid-deploy) comes back with that server in MAINT: the deploy would end with it out
   * of rotation, and the next deploy would take it for the operator's. Found so, it is put back.
   */
  async confirmInService(): Promise<void> {
    const lb = this.deps.lb;
    if (!lb) return;
    for (const role of this.verified) {
      const server = this.server(role);
      if (!server || lb.held.has(server)) continue;
      const { status } = await lb.driver.status(server);
      if (status.startsWith('UP')) continue;
      this.role = role;
      this.deps.log.warning(`[${this.plan.host}] ${server} is ${status} after it was put in service (a load balancer reloaded from an older server state?): putting it back`);
      await this.deps.journal?.outOfService(server, true);
      await this.ensureInService(role);
    }
  }

  /** After a rollout that succeeded: the adopted containers set aside are no longer needed. */
  async discardAsides(): Promise<void> {
    for (const role of this.asides) {
      await this.driver.stopAndRemove(this.deps.asideName(role), 0);
      this.asides.delete(role);
      await this.deps.journal?.aside(this.plan.host, role, false);
      this.log(`removed the adopted ${role} container it had set aside`);
    }
  }
}

/**
 * One role of a host out of service on every load balancer, the way a rollout takes it out
 * (drained until its sessions end, within the drain timeout, then MAINT, checked on every one):
 * for the interrupted-run repair, before it stops a container a cut-short run was changing.
 * `current` is what the host runs now. A load balancer that cannot be reached fails it.
 */
export async function takeOutOfService(host: string, role: Role, current: HostTarget, deps: RolloutDeps): Promise<void> {
  const driver = deps.hosts.get(host);
  if (!driver) throw new Error(`no connection to ${host}`);
  await new HostRun(planHost(host, current, current), driver, deps).takeOutOfService(role);
}

export async function executeRollout(plan: RolloutPlan, deps: RolloutDeps): Promise<RolloutResult> {
  const runs = new Map<string, HostRun>();
  for (const hostPlan of plan.hosts) {
    const driver = deps.hosts.get(hostPlan.host);
    if (!driver) throw new Error(`no connection to ${hostPlan.host}`);
    runs.set(hostPlan.host, new HostRun(hostPlan, driver, deps));
  }
  if (!deps.lb) {
    deps.log.warning('No haproxy section: containers are replaced in place and requests may fail until HAProxy\'s health checks notice.');
  }
  const started: HostRun[] = [];
  const failures: StepFailed[] = [];
  const interrupted: HostRun[] = [];
  for (const batch of plan.batches) {
    if (deps.signal?.aborted) break;
    const batchRuns = batch.map((host) => runs.get(host)!);
    started.push(...batchRuns);
    const collect = (results: PromiseSettledResult<void>[], runsOf: HostRun[]) =>
      results.forEach((result, i) => {
        if (result.status === 'fulfilled') return;
        const reason = result.reason as unknown;
        const run = runsOf[i]!;
        // Each run once: collect() meets a run again only after a batch in which nothing was interrupted.
        interrupted.push(run);
        if (reason instanceof Cancelled) return;
        failures.push(
          reason instanceof StepFailed
            ? reason
            : new StepFailed(run.plan.host, run.role, run.current[run.role], `failed: ${reason instanceof Error ? reason.message : String(reason)}`),
        );
      });
    collect(
      await Promise.allSettled(
        batchRuns.map((run) => deps.log.group(`Deploy ${plan.target.version} to ${run.plan.host}`, () => run.run(run.plan.steps, run.plan.target))),
      ),
      batchRuns,
    );
    if (interrupted.length > 0) break;
    // What a load balancer reload may have undone meanwhile, on every host done so far.
    collect(await Promise.allSettled(started.map((run) => run.confirmInService())), started);
    if (interrupted.length > 0) break;
  }
  const rollbackErrors: string[] = [];
  let roles: RolesResult | undefined;
  // A failure interrupts its run too: nothing interrupted means nothing failed.
  if (deps.roles && interrupted.length === 0 && !deps.signal?.aborted) {
    // A release is one unit: a role that fails has put its own containers back, and the web
    // role follows below, like any failure.
    const atOnce = Math.max(1, ...plan.batches.map((b) => b.length));
    roles = await moveRoles(plan.target, { hosts: deps.hosts, roles: deps.roles, log: deps.log, ...(deps.signal ? { signal: deps.signal } : {}) }, atOnce);
    failures.push(...roles.failures);
    rollbackErrors.push(...roles.undoErrors);
  }
  const failure = failures[0];
  let cancelled: RolloutResult['cancelled'];
  if (deps.signal?.aborted) {
    // No rollback of hosts that completed (that takes as long as the deploy did): the hosts in
    // flight are settled within the time left, and what is left over is the post step's.
    const unsettled: string[] = [];
    for (const run of interrupted) if (!(await settle(run, deps))) unsettled.push(run.plan.host);
    cancelled = { settled: unsettled.length === 0, unsettled };
  } else if (failure && deps.rollBackOnFailure !== false) {
    const touched = [...started].reverse().filter((run) => run.touched);
    for (const run of touched) {
      if (deps.signal?.aborted) break;
      try {
        await deps.log.group(`Roll back ${run.plan.host}`, () => {
          const back = planHost(run.plan.host, run.current, run.plan.before);
          return run.run(back.steps, back.target);
        });
        run.rolledBack = true;
      } catch (error) {
        if (error instanceof Cancelled) break;
        rollbackErrors.push(error instanceof Error ? error.message : String(error));
      }
    }
    if (deps.signal?.aborted) {
      // Cancelled during the rollback: each host not yet back is settled like a host in flight
      // (a host half rolled back would otherwise stay split, every server in service).
      const unsettled: string[] = [];
      for (const run of touched) if (!run.rolledBack && !(await settle(run, deps))) unsettled.push(run.plan.host);
      cancelled = { settled: unsettled.length === 0, unsettled };
    }
  } else if (!failure) {
    for (const run of started) {
      await run.discardAsides().catch((error: Error) => deps.log.warning(`[${run.plan.host}] could not remove an adopted container set aside: ${error.message}`));
    }
  }
  const hosts = plan.hosts.map((p): HostOutcome => {
    const run = runs.get(p.host)!;
    return {
      host: p.host,
      before: p.before,
      after: run.current,
      seconds: run.seconds,
      phases: run.phases,
      health: run.health,
      rolledBack: run.rolledBack,
    };
  });
  return {
    ok: failure === undefined && cancelled === undefined,
    hosts,
    ...(failure ? { failure } : {}),
    failures,
    rollbackErrors,
    ...(cancelled ? { cancelled } : {}),
    ...(roles ? { roles } : {}),
  };
}

/** Brings a host cut short by a cancel to both roles on one release, in service, within settleMs. */
async function settle(run: HostRun, deps: RolloutDeps): Promise<boolean> {
  run.signal = AbortSignal.timeout(deps.settleMs ?? DEFAULT_SETTLE_MS);
  const target = settleTarget(run.current, run.verified.has('master') && !run.unproven, run.plan.before);
  const plan = planHost(run.plan.host, run.current, target);
  try {
    await deps.log.group(`Settle ${run.plan.host} after the cancel`, () => run.run(plan.steps, plan.target));
    return true;
  } catch (error) {
    deps.log.warning(`[${run.plan.host}] not settled before the deadline (${error instanceof Error ? error.message : String(error)}): the post step finishes it`);
    return false;
  }
}
