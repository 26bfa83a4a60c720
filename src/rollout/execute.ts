// Runs a rollout plan against the drivers, host after host (max-parallel at once), and on any
// failure puts every host it touched back on the release it ran before, with the same
// backup-first procedure, so that a failed deploy drops no request either.
import { planHost, type HostPlan, type HostTarget, type RolloutPlan, type Step } from './plan.js';
import type {
  ContainerSpec,
  HealthCheck,
  HostDriver,
  LoadBalancerDriver,
  Release,
  Role,
} from './ports.js';

export interface Logger {
  info(line: string): void;
  warning(line: string): void;
  /** Folds the lines `run` prints (core.group on a runner). */
  group<T>(title: string, run: () => Promise<T>): Promise<T>;
}

export interface LoadBalancing {
  driver: LoadBalancerDriver;
  /** HAProxy server names of each host's roles, found by address and port in pre-flight. */
  servers: Map<string, Record<Role, string>>;
  drainTimeoutSeconds: number;
}

export interface RolloutDeps {
  hosts: Map<string, HostDriver>;
  /** Absent: containers are replaced in place and HAProxy's own checks notice (may fail requests). */
  lb?: LoadBalancing;
  containerName(role: Role): string;
  hostPort(role: Role): number;
  spec(role: Role, release: Release): ContainerSpec;
  health: HealthCheck;
  stopTimeoutSeconds: number;
  log: Logger;
  sleep(ms: number): Promise<void>;
  /** How often HAProxy is polled while draining and while waiting for UP. */
  pollMs: number;
}

export class StepFailed extends Error {
  override name = 'StepFailed';
  constructor(
    readonly host: string,
    readonly role: Role,
    readonly release: Release | undefined,
    readonly reason: string,
    readonly logs = '',
  ) {
    super(`${host}: ${role}${release ? ` ${release.version}` : ''} ${reason}`);
  }
}

export interface HostOutcome {
  host: string;
  before: HostTarget;
  after: HostTarget;
  seconds: number;
  /** Last health answer seen for the host's master. */
  health: string;
  rolledBack: boolean;
}

export interface RolloutResult {
  ok: boolean;
  hosts: HostOutcome[];
  failure?: StepFailed;
  /** Problems met while rolling back (each names its host); empty when the rollback was clean. */
  rollbackErrors: string[];
}

const sameRelease = (a: Release | undefined, b: Release | undefined) =>
  a !== undefined && b !== undefined && a.digest === b.digest && a.digest !== '';

/** One host's live state during the run: which release each role runs right now. */
class HostRun {
  current: HostTarget;
  health = '';
  seconds = 0;
  /** Whether any container changed: only touched hosts are rolled back. */
  touched = false;
  /** Roles proven healthy and in service during this run. */
  private readonly verified = new Set<Role>();

  constructor(
    readonly plan: HostPlan,
    readonly driver: HostDriver,
    private readonly deps: RolloutDeps,
  ) {
    this.current = { ...plan.before };
  }

  private log(line: string) {
    this.deps.log.info(`[${this.plan.host}] ${line}`);
  }

  async run(steps: Step[], target: HostTarget): Promise<void> {
    const started = Date.now();
    try {
      for (const step of steps) await this.step(step, target);
    } finally {
      this.seconds += (Date.now() - started) / 1000;
    }
  }

  private async step(step: Step, target: HostTarget): Promise<void> {
    switch (step.kind) {
      case 'check':
        return this.check(step.role, target);
      case 'replace':
        // A sick backup repaired earlier in this run may already be on this release.
        if (this.verified.has(step.role) && sameRelease(this.current[step.role], step.to)) return;
        return this.replace(step.role, step.to);
      case 'remove':
        return this.remove(step.role);
    }
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

  private async replace(role: Role, to: Release): Promise<void> {
    const name = this.deps.containerName(role);
    this.log(`${role}: ${this.current[role]?.version ?? 'nothing'} → ${to.version}`);
    this.touched = true;
    await this.takeOutOfService(role);
    await this.driver.stopAndRemove(name, this.deps.stopTimeoutSeconds);
    delete this.current[role];
    this.verified.delete(role);
    await this.driver.run(this.deps.spec(role, to));
    const verdict = await this.waitHealthy(role);
    if (!verdict.healthy) {
      this.log(`${role} ${to.version} did not become healthy: ${verdict.detail}`);
      if (verdict.logs) this.log(verdict.logs);
      await this.driver.stopAndRemove(name, 0);
      throw new StepFailed(this.plan.host, role, to, `did not become healthy: ${verdict.detail}`, verdict.logs);
    }
    this.current[role] = to;
    await this.ensureInService(role);
    this.verified.add(role);
  }

  private async remove(role: Role): Promise<void> {
    this.touched = true;
    await this.takeOutOfService(role);
    await this.driver.stopAndRemove(this.deps.containerName(role), this.deps.stopTimeoutSeconds);
    delete this.current[role];
    this.verified.delete(role);
    this.log(`${role}: removed`);
  }

  private async waitHealthy(role: Role) {
    const verdict = await this.driver.waitHealthy(
      this.deps.containerName(role),
      this.deps.hostPort(role),
      this.deps.health,
      (line) => this.log(line),
    );
    if (role === 'master') this.health = verdict.detail;
    return verdict;
  }

  private server(role: Role): string | undefined {
    return this.deps.lb?.servers.get(this.plan.host)?.[role];
  }

  /** Drain (new requests go elsewhere, running ones finish), then maintenance. */
  private async takeOutOfService(role: Role): Promise<void> {
    const lb = this.deps.lb;
    const server = this.server(role);
    if (!lb || !server) return;
    if (this.current[role]) {
      await lb.driver.setState(server, 'drain');
      const deadline = Date.now() + lb.drainTimeoutSeconds * 1000;
      let status = await lb.driver.status(server);
      while (status.sessions + status.queued > 0 && Date.now() < deadline) {
        await this.deps.sleep(this.deps.pollMs);
        status = await lb.driver.status(server);
      }
      if (status.sessions + status.queued > 0) {
        this.deps.log.warning(`[${this.plan.host}] ${server} still had ${status.sessions} sessions after the ${lb.drainTimeoutSeconds}s drain timeout`);
      } else {
        this.log(`${server} drained`);
      }
    }
    await lb.driver.setState(server, 'maint');
  }

  /** Back into HAProxy only once proven healthy; done when HAProxy itself reports it UP. */
  private async ensureInService(role: Role): Promise<void> {
    const lb = this.deps.lb;
    const server = this.server(role);
    if (!lb || !server) return;
    let status = await lb.driver.status(server);
    if (status.status.startsWith('UP')) return;
    await lb.driver.setState(server, 'ready');
    const deadline = Date.now() + this.deps.health.timeoutSeconds * 1000;
    status = await lb.driver.status(server);
    while (!status.status.startsWith('UP')) {
      if (Date.now() >= deadline) {
        throw new StepFailed(this.plan.host, role, this.current[role], `is healthy but HAProxy reports ${server} ${status.status} after ${this.deps.health.timeoutSeconds}s`);
      }
      await this.deps.sleep(this.deps.pollMs);
      status = await lb.driver.status(server);
    }
    this.log(`${server} is ${status.status} in HAProxy`);
  }
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
  let failure: StepFailed | undefined;
  for (const batch of plan.batches) {
    const batchRuns = batch.map((host) => runs.get(host)!);
    started.push(...batchRuns);
    const results = await Promise.allSettled(
      batchRuns.map((run) => deps.log.group(`Deploy ${plan.target.version} to ${run.plan.host}`, () => run.run(run.plan.steps, run.plan.target))),
    );
    const rejected = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (rejected) {
      const reason = rejected.reason as unknown;
      const host = batch[results.indexOf(rejected)]!;
      failure = reason instanceof StepFailed ? reason : new StepFailed(host, 'master', undefined, `failed: ${reason instanceof Error ? reason.message : String(reason)}`);
      break;
    }
  }
  const rollbackErrors: string[] = [];
  if (failure) {
    for (const run of [...started].reverse()) {
      if (!run.touched) continue;
      try {
        await deps.log.group(`Roll back ${run.plan.host}`, () => {
          const back = planHost(run.plan.host, run.current, run.plan.before);
          return run.run(back.steps, back.target);
        });
      } catch (error) {
        rollbackErrors.push(error instanceof Error ? error.message : String(error));
      }
    }
  }
  const hosts = plan.hosts.map((p): HostOutcome => {
    const run = runs.get(p.host)!;
    return { host: p.host, before: p.before, after: run.current, seconds: run.seconds, health: run.health, rolledBack: failure !== undefined && run.touched };
  });
  return { ok: failure === undefined, hosts, ...(failure ? { failure } : {}), rollbackErrors };
}
