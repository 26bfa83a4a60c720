// What a rollout will do on each host, as data: `plan` prints it, `deploy` executes it, and the
// same function plans the automatic rollback of a host. Pure.
import type { AppContainer, Release, Role } from './ports.js';

/** The release each role should run on a host; absent means "no container". */
export type HostTarget = Partial<Record<Role, Release>>;

export type Step =
  /** The container already runs the wanted release: prove it healthy and in service. */
  | { kind: 'check'; role: Role; release: Release }
  /** Take the role out of service, replace its container, prove it healthy, put it back. */
  | { kind: 'replace'; role: Role; from?: Release; to: Release }
  /** Take the role out of service and remove its container (rollback of a first deploy). */
  | { kind: 'remove'; role: Role; from?: Release }
  /** The canary: the new master serves alone while its error rate is judged (canary.hold). */
  | { kind: 'hold'; role: 'master'; seconds: number };

export interface HostPlan {
  host: string;
  before: HostTarget;
  target: HostTarget;
  steps: Step[];
}

export interface RolloutPlan {
  target: Release;
  hosts: HostPlan[];
  /** Hosts grouped by max-parallel, in order. */
  batches: string[][];
}

/**
 * Whether a role already runs the release. An adopted container runs only itself (a rollback
 * puts it back): whatever its image, a release of ours replaces it, so it comes under labels.
 */
export function sameRelease(a: Release | undefined, b: Release | undefined): boolean {
  if (a === undefined || b === undefined || Boolean(a.adopted) !== Boolean(b.adopted)) return false;
  if (a.adopted) return a.ref === b.ref && a.digest === b.digest;
  return a.digest !== '' && a.digest === b.digest;
}

/** The running release of each role (a stopped container counts as absent; an adopted one counts). */
export function runningReleases(containers: Partial<Record<Role, AppContainer>>): HostTarget {
  const out: HostTarget = {};
  for (const role of ['master', 'backup'] as const) {
    const container = containers[role];
    if (container?.running && container.release) out[role] = container.release;
  }
  return out;
}

/**
 * Backup first: the host keeps a healthy backup at every moment the master is out of service.
 * 1. A running backup is checked; a missing one is started first (on the backup's target, or
 *    the master's when the backup is to go away) so it can take over.
 * 2. The master moves to its target.
 * 3. The backup moves to its target, unless step 1 already put it there.
 * Where the master slot is empty (a rollback after the new master failed), the master is
 * filled first: repairing a sick backup before it would leave the host with neither role.
 */
export function planHost(host: string, current: HostTarget, target: HostTarget): HostPlan {
  const steps: Step[] = [];
  const master = current.master;
  let backup = current.backup;
  const masterStep = (): Step | undefined => {
    if (target.master) {
      return sameRelease(master, target.master)
        ? { kind: 'check', role: 'master', release: target.master }
        : { kind: 'replace', role: 'master', ...(master ? { from: master } : {}), to: target.master };
    }
    return master ? { kind: 'remove', role: 'master', from: master } : undefined;
  };
  const masterFirst = !master && backup !== undefined && target.master !== undefined;
  if (masterFirst) steps.push(masterStep()!);
  if (backup) {
    steps.push({ kind: 'check', role: 'backup', release: backup });
  } else {
    const standIn = target.backup ?? target.master;
    if (standIn) {
      steps.push({ kind: 'replace', role: 'backup', to: standIn });
      backup = standIn;
    }
  }
  const step = masterFirst ? undefined : masterStep();
  if (step) steps.push(step);
  if (target.backup) {
    if (!sameRelease(backup, target.backup)) {
      steps.push({ kind: 'replace', role: 'backup', ...(backup ? { from: backup } : {}), to: target.backup });
    }
  } else if (backup) {
    steps.push({ kind: 'remove', role: 'backup', from: backup });
  }
  return { host, before: current, target, steps };
}

/**
 * What a host goes back to after a cancel or a kill mid-rollout: both roles on one release. The
 * master's when it is proven in service (the host had moved on); else what the host ran before
 * this run (`before`, when known: adopted containers set aside are put back whole), else the
 * backup's (the backup moves last, so it still runs what the host ran), else whatever runs.
 * Finishing a half-replaced master would mean waiting on an unproven release; going back needs
 * a release that served.
 */
export function settleTarget(current: HostTarget, masterInService: boolean, before?: HostTarget): HostTarget {
  if (masterInService && current.master) return { master: current.master, backup: current.master };
  if (before?.master) return { master: before.master, backup: before.backup ?? before.master };
  const release = current.backup ?? current.master;
  return release ? { master: release, backup: release } : {};
}

/**
 * Every host to `target`, max-parallel at once. With a canary hold, the first host whose master
 * changes goes alone, first, and holds once its new master is in service, before its backup moves
 * (so a rollback needs only the master back).
 */
export function planRollout(
  target: Release,
  hosts: { host: string; current: HostTarget }[],
  maxParallel: number,
  canaryHoldSeconds = 0,
): RolloutPlan {
  const plans = hosts.map(({ host, current }) => planHost(host, current, { master: target, backup: target }));
  const canary = canaryHoldSeconds > 0 ? plans.find((p) => p.steps.some((s) => s.kind === 'replace' && s.role === 'master')) : undefined;
  if (canary) {
    const at = canary.steps.findIndex((s) => s.kind === 'replace' && s.role === 'master');
    canary.steps.splice(at + 1, 0, { kind: 'hold', role: 'master', seconds: canaryHoldSeconds });
  }
  const rest = plans.filter((p) => p !== canary).map((p) => p.host);
  const batches: string[][] = canary ? [[canary.host]] : [];
  for (let i = 0; i < rest.length; i += maxParallel) batches.push(rest.slice(i, i + maxParallel));
  return { target, hosts: plans, batches };
}

function describeRelease(release: Release | undefined): string {
  if (!release) return 'nothing';
  return release.adopted ? `${release.version} (${release.ref}, started without deploy-action: adopting it)` : release.version;
}

export function describeStep(step: Step): string {
  switch (step.kind) {
    case 'check':
      return `${step.role}: keep ${describeRelease(step.release)}, check it is healthy and in service`;
    case 'replace':
      return `${step.role}: ${describeRelease(step.from)} → ${step.to.version}`;
    case 'remove':
      return `${step.role}: remove ${describeRelease(step.from)}`;
    case 'hold':
      return `${step.role}: hold ${step.seconds} s as the canary, judged by the load balancers' counters (canary)`;
  }
}

/** The plan as text, for `command: plan` and the log before a deploy. */
export function describePlan(plan: RolloutPlan): string[] {
  const lines = [`Target: ${plan.target.version} (${plan.target.ref})`];
  plan.batches.forEach((batch, i) => {
    lines.push(`Batch ${i + 1}: ${batch.join(', ')}`);
    for (const host of batch) {
      const hostPlan = plan.hosts.find((h) => h.host === host)!;
      lines.push(`  ${host} (master ${describeRelease(hostPlan.before.master)}, backup ${describeRelease(hostPlan.before.backup)})`);
      for (const step of hostPlan.steps) lines.push(`    - ${describeStep(step)}`);
    }
  });
  return lines;
}
