// What an environment's history says: whether a release may be promoted from it, which release
// came before the current one, and at which digest a release ran there. Two sources: GitHub's
// deployment records, and the `deploy-action.history` label each container carries (for runs
// without a token, and for records GitHub no longer lists). Pure.
import { isReleaseTag } from './version.js';

/** A deployment status state as GitHub reports it; `none` when a deployment has no status yet. */
export type DeploymentState = 'error' | 'failure' | 'inactive' | 'in_progress' | 'queued' | 'pending' | 'success' | 'none';

/** One GitHub deployment of an environment, with its newest status. */
export interface DeploymentRecord {
  id: number;
  ref: string;
  /** `deploy` or `rollback` for the action's own records; GitHub's automatic job records say `deploy`. */
  task: string;
  createdAt: Date;
  /** The login of whoever created the record (release/trust.ts trusts only GITHUB_TOKEN's). */
  creator?: string;
  /** What the action recorded; empty for records the action did not make (GitHub's per-job ones). */
  payload: { version?: string; image?: string; digest?: string; recordedBy?: string; runId?: string; runAttempt?: string };
  /** The state of its newest status that GITHUB_TOKEN posted (release/trust.ts: statusState). */
  state: DeploymentState;
  /** Statuses others posted on it, which count for nothing; reported in a warning. */
  ignoredStatuses?: { state: DeploymentState; creator?: string | undefined }[];
}

/**
 * Whether the deployment finished successfully. `inactive` counts: GitHub adds it only to a
 * deployment that had `success`, as soon as a later deployment of the environment succeeds, and
 * that happens to every one of our records within seconds, when the deployment GitHub itself
 * makes for the job (environment:) succeeds after ours.
 */
function succeeded(record: DeploymentRecord): boolean {
  return record.state === 'success' || record.state === 'inactive';
}

/**
 * The releases the environment went through, oldest first, one entry per change; the last is
 * what runs now. A deploy puts its release on top. A rollback undoes every release deployed after
 * the one it goes back to: all those above it, or the whole history when that release is older
 * than the history (the records are a bounded window), and the rollback's release is the top.
 */
function effectiveHistory(records: DeploymentRecord[]): DeploymentRecord[] {
  const stack: DeploymentRecord[] = [];
  for (const record of records.filter((r) => succeeded(r) && r.payload.version).reverse()) {
    const version = record.payload.version;
    if (record.task === 'rollback') stack.length = Math.max(stack.findLastIndex((r) => r.payload.version === version), 0);
    else if (stack.at(-1)?.payload.version === version) stack.pop();
    stack.push(record);
  }
  return stack;
}

/**
 * Why `version` (pinned to `digest`) may not be promoted from `fromEnvironment`, whose
 * deployment records these are (newest first, as GitHubApi.deployments gives them); undefined
 * when it may.
 *
 * A newer release deployed to `fromEnvironment` since does not refuse it: staging moves on to the
 * next tag while production waits for its reviewers, and what the gate vouches for, that this
 * exact image was deployed and passed its health checks there, stays true. A rollback that took
 * `fromEnvironment` back past it does refuse it: someone undid it there, which is the one signal
 * in the history that it is not fit to promote; deploying it there again clears that.
 */
export function checkPromotion(records: DeploymentRecord[], fromEnvironment: string, version: string, digest: string): string | undefined {
  const inEffect = promotingRecord(records, version);
  if (!inEffect) {
    const ofVersion = records.filter((r) => r.payload.version === version);
    if (ofVersion.some(succeeded)) {
      return `${version} was rolled back in ${fromEnvironment}: deploy it to ${fromEnvironment} again before promoting it`;
    }
    const tried = ofVersion[0] ? ` successfully (the latest attempt there: ${ofVersion[0].state})` : '';
    return `${version} was never deployed to ${fromEnvironment}${tried}: deploy it to ${fromEnvironment} first`;
  }
  const other = inEffect.payload.digest;
  if (other !== digest) {
    return `the digest of ${version} (${digest}) differs from what ${fromEnvironment} runs (${other ?? 'no digest recorded'})`;
  }
  return undefined;
}

/**
 * The record that makes `version` promotable from these records (newest first), when
 * checkPromotion finds none to refuse: the one in effect, whose run the gate verifies.
 */
export function promotingRecord(records: DeploymentRecord[], version: string): DeploymentRecord | undefined {
  return effectiveHistory(records).findLast((r) => r.payload.version === version);
}

/** A release as the environment ran it. */
export interface RanRelease {
  version: string;
  digest: string;
}

/**
 * The release before `currentVersion` in this environment's history (records newest first):
 * what a rollback to `previous` goes to. Releases that a rollback undid are not in that history,
 * so after "v1.4.0 is bad, roll back to v1.3.0", previous is v1.2.0 and never v1.4.0 again:
 * repeated rollbacks to `previous` walk back one release at a time, and stop (undefined) where
 * the history ends.
 */
export function previousRelease(records: DeploymentRecord[], currentVersion: string): RanRelease | undefined {
  const record = effectiveHistory(records).findLast((r) => r.payload.version !== currentVersion && r.payload.digest);
  return record ? { version: record.payload.version!, digest: record.payload.digest! } : undefined;
}

/** The digest `version` last ran at in this environment (records newest first), if it ever did. */
export function ranDigest(records: DeploymentRecord[], version: string): string | undefined {
  return records.find((r) => succeeded(r) && r.payload.version === version && r.payload.digest)?.payload.digest;
}

// ---------------------------------------------------------------- the containers' history label

const ENTRY = /^(.+)@(sha256:[a-f0-9]{64})$/;
/**
 * Marks an entry a rollback undid: the release ran here, but is no longer in the stack `previous`
 * walks. Kept so that "it ran here" stays provable by the hosts alone (a rollback back to it, or
 * forward again, at the digest it ran). Action versions before it read such an entry as junk and
 * drop it.
 */
const UNDONE = '~';
/** Releases a history label keeps: enough to walk back a long way, short enough for a label. */
export const HISTORY_LENGTH = 20;

export const historyEntry = (release: RanRelease) => `${release.version}@${release.digest}`;

function readEntry(entry: string): RanRelease {
  const [, version, digest] = ENTRY.exec(entry.startsWith(UNDONE) ? entry.slice(UNDONE.length) : entry)!;
  return { version: version!, digest: digest! };
}

/** The stack `previous` walks: the entries no rollback undid, oldest first. */
export function inEffect(history: string[]): string[] {
  return history.filter((entry) => !entry.startsWith(UNDONE));
}

/**
 * The entries of a `deploy-action.history` label (space-separated `version@digest`, those a
 * rollback undid prefixed with `~`); anything else is dropped.
 */
export function parseHistoryLabel(label: string): string[] {
  return label.split(/\s+/).filter((entry) => {
    const match = ENTRY.exec(entry.startsWith(UNDONE) ? entry.slice(UNDONE.length) : entry);
    return match !== null && isReleaseTag(match[1]!);
  });
}

/**
 * The history the containers of `target` carry: a deploy puts it on top, a rollback to a
 * release in the history undoes every release above it (as the GitHub history is replayed).
 * What a rollback undid is kept apart (`~`, up to HISTORY_LENGTH of them, the stack first
 * bounded alike): no longer in the stack, still proof that it ran.
 */
export function nextHistory(base: string[], target: RanRelease, task: 'deploy' | 'rollback'): string[] {
  const entry = historyEntry(target);
  let stack = inEffect(base);
  let undone = base.filter((e) => e.startsWith(UNDONE)).map((e) => e.slice(UNDONE.length));
  const at = stack.lastIndexOf(entry);
  if (task === 'rollback' && at >= 0) {
    // Those above it; the rest stay in the stack (the filter below drops them from `undone`, so
    // `...stack` whole would do the same: an equivalent mutant).
    undone = [...undone, ...stack.slice(at + 1)];
    stack = stack.slice(0, at);
  } else if (stack.at(-1) === entry) stack.pop();
  stack.push(entry);
  stack = stack.slice(-HISTORY_LENGTH);
  // Each release once, at its newest place; none that is in the stack again.
  undone = undone.filter((e, i) => !stack.includes(e) && undone.lastIndexOf(e) === i).slice(-HISTORY_LENGTH);
  return [...undone.map((e) => `${UNDONE}${e}`), ...stack];
}

/** In a history label: the release before `currentVersion`, as previousRelease does for records. */
export function previousInLabel(history: string[], currentVersion: string): RanRelease | undefined {
  const entries = inEffect(history).map(readEntry);
  const current = entries.findLastIndex((r) => r.version === currentVersion);
  return entries.slice(0, current < 0 ? entries.length : current).findLast((r) => r.version !== currentVersion);
}

/** In a history label: the digest `version` ran at (in effect or undone since), if it is there. */
export function ranDigestInLabel(history: string[], version: string): string | undefined {
  const found = (entries: string[]) => entries.map(readEntry).findLast((r) => r.version === version)?.digest;
  return found(inEffect(history)) ?? found(history);
}
