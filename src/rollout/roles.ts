// Roles beside the web role (workers, schedulers): the same release with another command, no port,
// no load balancer. They move after every web container is proven (executeRollout calls
// moveRoles last), container after container: the old one stops (SIGTERM, the role's
// stop-timeout, so it finishes the job in hand) and is set aside whole as NAME-previous, the new
// one starts and must be ready by the role's rule. A failure puts every role container this run
// changed back (the new one stopped the same graceful way, the one set aside restored), and the
// executor then rolls the web role back: every role ends on the release it ran. A cancel puts
// back only the container whose new one was not proven yet. The ones set aside are removed once
// the release is done; what a run cut short left set aside is settled by settleLeftovers.
import { Cancelled, StepFailed, type Logger } from './execute.js';
import { sameRelease } from './plan.js';
import type { HostDriver, ReadyRule, Release, RoleContainer, RoleSpec } from './ports.js';

/** What the rollout needs to know of one role (config/schema.ts RoleConfig). */
export interface RolePolicy {
  name: string;
  /** The hosts that run it; the role's containers on any other host are retired. */
  hosts: string[];
  count: number;
  stopTimeout: number;
  ready: ReadyRule;
}

export const roleContainerName = (app: string, role: string, n: number) => `${app}-${role}-${n}`;
/** Where a role's old container waits, stopped, until the release is done (or put back). */
export const previousName = (name: string) => `${name}-previous`;
const isPrevious = (name: string) => name.endsWith('-previous');

export type RoleStep =
  /** Already runs the release, and runs. */
  | { kind: 'keep'; role: string; name: string; release: Release }
  /** Stop the old container (when `existing`) and set it aside, start the new one, wait ready. */
  | { kind: 'move'; role: string; name: string; existing: boolean; from?: Release; to: Release }
  /** A container beyond the role's count, or on a host no longer the role's: stopped and set aside. */
  | { kind: 'retire'; role: string; name: string; from?: Release };

export interface RoleHostPlan {
  host: string;
  steps: RoleStep[];
}

/**
 * Each host's role containers to `target`: APP-ROLE-1 to APP-ROLE-count on the role's hosts,
 * the rest of a configured role's containers retired. Containers of a role no longer in the
 * config are left alone (the config cannot say whether they are still wanted). Pure.
 */
export function planRoles(app: string, target: Release, roles: RolePolicy[], current: Map<string, RoleContainer[]>): RoleHostPlan[] {
  const plans: RoleHostPlan[] = [];
  for (const [host, containers] of current) {
    const steps: RoleStep[] = [];
    for (const role of roles) {
      const wanted = role.hosts.includes(host) ? role.count : 0;
      const names = Array.from({ length: wanted }, (_, i) => roleContainerName(app, role.name, i + 1));
      for (const name of names) {
        const found = containers.find((c) => c.name === name);
        if (found?.running && sameRelease(found.release, target)) steps.push({ kind: 'keep', role: role.name, name, release: target });
        else steps.push({ kind: 'move', role: role.name, name, existing: found !== undefined, ...(found?.release ? { from: found.release } : {}), to: target });
      }
      for (const extra of containers.filter((c) => c.role === role.name && !isPrevious(c.name) && !names.includes(c.name))) {
        steps.push({ kind: 'retire', role: role.name, name: extra.name, ...(extra.release ? { from: extra.release } : {}) });
      }
    }
    if (steps.length > 0) plans.push({ host, steps });
  }
  return plans;
}

export function describeRoleStep(step: RoleStep): string {
  switch (step.kind) {
    case 'keep':
      return `${step.name}: keep ${step.release.version}`;
    case 'move':
      return `${step.name}: ${step.existing ? (step.from?.version ?? 'unknown') : 'nothing'} → ${step.to.version}`;
    case 'retire':
      return `${step.name}: stop ${step.from?.version ?? 'unknown'} (no longer wanted here)`;
  }
}

/** The roles' part of a plan, as text (command: plan). */
export function describeRolePlan(plans: RoleHostPlan[]): string[] {
  if (plans.length === 0) return [];
  return ['Roles, once every web batch is proven:', ...plans.flatMap((p) => [`  ${p.host}`, ...p.steps.map((step) => `    - ${describeRoleStep(step)}`)])];
}

/** The roles as the executor drives them. */
export interface RoleDeps {
  app: string;
  roles: RolePolicy[];
  spec(role: string, name: string, release: Release): RoleSpec;
  /** health.timeout: how long a new container has to be ready (plus N seconds for { running: N }). */
  readyTimeoutSeconds: number;
}

/** What became of one role container. */
export interface RoleOutcome {
  host: string;
  role: string;
  name: string;
  before?: Release;
  /** What it runs at the end; absent: no container. */
  after?: Release;
  /** Put back on `before` by this run (a failure, or a cancel before it was proven). */
  undone: boolean;
}

export interface RolesResult {
  ok: boolean;
  failure?: StepFailed;
  failures: StepFailed[];
  cancelled: boolean;
  containers: RoleOutcome[];
  /** Problems met while putting role containers back (each names its host). */
  undoErrors: string[];
}

interface Change {
  host: string;
  step: RoleStep;
  /** The old container is set aside as NAME-previous. */
  aside: boolean;
  /** Setting it aside began: a call that failed may still have renamed it. */
  asideTried: boolean;
  /** A new container was created under NAME. */
  started: boolean;
  proven: boolean;
  undone: boolean;
}

export interface RoleRunDeps {
  hosts: Map<string, HostDriver>;
  roles: RoleDeps;
  log: Logger;
  signal?: AbortSignal;
}

/** A leftover of a role no longer in the config is stopped with Docker's own default. */
const DEFAULT_STOP_TIMEOUT = 10;
const policyOf = (deps: RoleDeps, role: string) => deps.roles.find((r) => r.name === role)!;

/**
 * What a run cut short left on a host: NAME-previous beside NAME (or alone). The new container
 * under NAME is judged by the role's own rule, as the run would have: ready, it stays and the
 * one set aside goes; not ready (or absent), it goes and the one set aside, which served, is put
 * back. The post step and every role phase start with this. Returns the host's role containers
 * as they are then.
 */
export async function settleLeftovers(host: string, driver: HostDriver, deps: RoleDeps, log: Logger): Promise<RoleContainer[]> {
  const containers = await driver.roleContainers(deps.app);
  const asides = containers.filter((c) => isPrevious(c.name));
  for (const aside of asides) {
    const name = aside.name.slice(0, -'-previous'.length);
    const policy = deps.roles.find((r) => r.name === aside.role);
    const newer = containers.find((c) => c.name === name);
    const verdict = newer && policy ? await driver.waitReady(name, policy.ready, deps.readyTimeoutSeconds, (line) => log.info(`[${host}] ${line}`)) : undefined;
    if (verdict?.healthy) {
      // Stopped already, unless its stop was cut short: then the graceful way, a job may be in hand.
      await driver.stopAndRemove(aside.name, policy!.stopTimeout);
      log.info(`[${host}] ${name}: kept ${newer?.release?.version ?? 'the new container'} (${verdict.detail}), removed the one a run cut short had set aside`);
      continue;
    }
    const stopTimeout = policy?.stopTimeout ?? DEFAULT_STOP_TIMEOUT;
    if (newer) await driver.stopAndRemove(name, stopTimeout);
    await driver.moveBack(aside.name, name, stopTimeout);
    log.info(`[${host}] ${name}: put back ${aside.release?.version ?? 'the container'} that a run cut short had set aside${verdict ? ` (the new one ${verdict.detail})` : ''}`);
  }
  return asides.length > 0 ? driver.roleContainers(deps.app) : containers;
}

/** Moves every role to `target`, maxParallel hosts at once; see the top of this file. */
export async function moveRoles(target: Release, deps: RoleRunDeps, maxParallel: number): Promise<RolesResult> {
  const { roles, log } = deps;
  const current = new Map<string, RoleContainer[]>();
  for (const [host, driver] of deps.hosts) current.set(host, await settleLeftovers(host, driver, roles, log));
  const plans = planRoles(roles.app, target, roles.roles, current);
  const changes: Change[] = [];
  const failures: StepFailed[] = [];
  let cancelled = false;
  for (let i = 0; i < plans.length && failures.length === 0 && !cancelled; i += maxParallel) {
    const batch = plans.slice(i, i + maxParallel);
    const results = await Promise.allSettled(
      batch.map((plan) => log.group(`Move the roles on ${plan.host} to ${target.version}`, () => runHost(plan, deps, changes))),
    );
    results.forEach((result, j) => {
      if (result.status === 'fulfilled') return;
      if (result.reason instanceof Cancelled) {
        cancelled = true;
        return;
      }
      const host = batch[j]!.host;
      failures.push(result.reason instanceof StepFailed ? result.reason : new StepFailed(host, 'roles', undefined, `failed: ${result.reason instanceof Error ? result.reason.message : String(result.reason)}`));
    });
    if (deps.signal?.aborted) cancelled = true;
  }
  const undoErrors: string[] = [];
  // A failure puts back every change; a cancel only the unproven; success discards the set-asides.
  for (const change of [...changes].reverse()) {
    const driver = deps.hosts.get(change.host)!;
    const why = (error: unknown) => `${change.host}: ${change.step.name}: ${error instanceof Error ? error.message : String(error)}`;
    if (failures.length > 0 || (cancelled && !change.proven)) {
      await undo(change, driver, deps).catch((error: unknown) => undoErrors.push(why(error)));
    } else if (change.aside) {
      // Left behind, the next run's settleLeftovers removes it (the new one is ready): a warning.
      await driver.stopAndRemove(previousName(change.step.name), policyOf(roles, change.step.role).stopTimeout).then(
        () => (change.aside = false),
        (error: unknown) => log.warning(`could not remove the container set aside: ${why(error)}`),
      );
    }
  }
  const containers: RoleOutcome[] = plans.flatMap(({ host, steps }) =>
    steps.map((step) => {
      const change = changes.find((c) => c.host === host && c.step === step);
      const before = step.kind === 'keep' ? step.release : step.from;
      const changed = change !== undefined && !change.undone;
      const after = !changed ? before : step.kind === 'move' ? (change.started ? step.to : before) : step.kind === 'retire' ? undefined : before;
      return { host, role: step.role, name: step.name, ...(before ? { before } : {}), ...(after ? { after } : {}), undone: change?.undone ?? false };
    }),
  );
  const failure = failures[0];
  return { ok: !failure && !cancelled && undoErrors.length === 0, ...(failure ? { failure } : {}), failures, cancelled, containers, undoErrors };
}

async function runHost(plan: RoleHostPlan, deps: RoleRunDeps, changes: Change[]): Promise<void> {
  const driver = deps.hosts.get(plan.host)!;
  const log = (line: string) => deps.log.info(`[${plan.host}] ${line}`);
  for (const step of plan.steps) {
    if (deps.signal?.aborted) throw new Cancelled();
    log(describeRoleStep(step));
    if (step.kind === 'keep') continue;
    const policy = policyOf(deps.roles, step.role);
    const change: Change = { host: plan.host, step, aside: false, asideTried: false, started: false, proven: false, undone: false };
    changes.push(change);
    if (step.kind === 'retire' || step.existing) {
      // Renamed, then SIGTERM and the role's stop-timeout: a worker finishes the job in hand.
      change.asideTried = true;
      await driver.moveAside(step.name, previousName(step.name), policy.stopTimeout);
      change.aside = true;
    }
    if (step.kind === 'retire') {
      change.proven = true;
      continue;
    }
    change.started = true;
    await driver.runRole(deps.roles.spec(step.role, step.name, step.to));
    const verdict = await driver.waitReady(step.name, policy.ready, deps.roles.readyTimeoutSeconds, log, deps.signal);
    if (!verdict.healthy && deps.signal?.aborted) throw new Cancelled();
    if (!verdict.healthy) {
      log(`${step.name} ${step.to.version} did not become ready: ${verdict.detail}`);
      if (verdict.logs) log(verdict.logs);
      throw new StepFailed(plan.host, step.role, step.to, `${step.name} did not become ready: ${verdict.detail}`, verdict.logs);
    }
    change.proven = true;
    log(`${step.name} ${step.to.version}: ${verdict.detail}`);
  }
}

/** The new container stopped the graceful way (it may hold a job), the old one put back. */
async function undo(change: Change, driver: HostDriver, deps: RoleRunDeps): Promise<void> {
  const { step } = change;
  const policy = policyOf(deps.roles, step.role);
  if (change.started) {
    await driver.stopAndRemove(step.name, policy.stopTimeout);
    change.started = false;
  }
  // A move aside that failed after its rename (the stop) left it set aside all the same.
  const aside = change.aside || (change.asideTried && (await driver.roleContainers(deps.roles.app)).some((c) => c.name === previousName(step.name)));
  if (aside) {
    await driver.moveBack(previousName(step.name), step.name, policy.stopTimeout);
    change.aside = false;
  }
  change.undone = true;
  deps.log.info(`[${change.host}] ${step.name}: back on ${step.kind === 'keep' ? step.release.version : (step.from?.version ?? 'nothing')}`);
}
