// Which values read back from the hosts (container and image labels) and from GitHub (deployment
// records) the action may use. They end up in outputs (a workflow's `run:` may interpolate
// them), in the deployment ref and in Docker API paths, so they are held to the rules the
// inputs are held to; anything else is untrusted: reported, and treated as unknown. Pure.
import type { DeploymentRecord, DeploymentState } from './history.js';
import { parseRelease } from './version.js';

/** A manifest digest as the registry and Docker write it; also the `digest` input's rule. */
export const DIGEST = /^sha256:[a-f0-9]{64}$/;

/**
 * The marker the action writes into the payload of every deployment it records. A marker alone
 * proves nothing (anyone who may create deployments can copy it); with the creator check below it
 * keeps out other tools' records and those of people and apps with their own tokens.
 */
export const RECORD_MARKER = { key: 'recorded_by', value: 'clay/deploy-action' } as const;

/**
 * Who creates the deployments the action trusts: GITHUB_TOKEN's actor, the login GitHub reports as
 * `creator` for a deployment made with it. GitHub reserves `[bot]` logins for apps, and this app
 * is GitHub Actions itself. A record made with another github-token (a PAT, an app token) is not
 * trusted: the action cannot learn its own token's login (GET /user refuses GITHUB_TOKEN).
 */
export const TRUSTED_CREATOR = 'github-actions[bot]';

/** One status of a deployment as GitHub lists it: its state and who posted it. */
export interface StatusRecord {
  state: DeploymentState;
  creator?: string | undefined;
}

/**
 * A record's state by the statuses GITHUB_TOKEN posted (statuses newest first), and the others,
 * which count for nothing: GitHub lets anyone with push access post a status on any deployment
 * ("Users with push access can create deployment statuses"), each with its own creator, so a
 * person's `success` on a failed record would otherwise make it a success. An `inactive` counts
 * only over a `success` of ours: GitHub adds it to a deployment that succeeded, and one posted
 * on a failed record is not that.
 */
export function statusState(statuses: StatusRecord[]): { state: DeploymentState; ignored: StatusRecord[] } {
  const ours = statuses.filter((s) => s.creator === TRUSTED_CREATOR);
  const ignored = statuses.filter((s) => s.creator !== TRUSTED_CREATOR);
  const settled = ours.find((s) => s.state !== 'inactive')?.state ?? 'none';
  const state = ours[0]?.state === 'inactive' && settled === 'success' ? 'inactive' : settled;
  return { state, ignored };
}

/** A workflow run as GitHub describes it (GET .../actions/runs/{run_id}): what promotion checks of it. */
export interface WorkflowRunFacts {
  /** The workflow file, `.github/workflows/release.yml`. */
  path?: string | undefined;
  /** What started it: `push` for a tag push. */
  event?: string | undefined;
  /** The branch or tag it ran for: the tag's name for a tag push. */
  headBranch?: string | undefined;
}

/**
 * The workflow file of the current run, from GITHUB_WORKFLOW_REF
 * (`owner/repo/.github/workflows/release.yml@refs/tags/v1.5.0`); undefined when it is not that.
 */
export function workflowPath(workflowRef: string, repository: string): string | undefined {
  const prefix = `${repository}/`;
  const at = workflowRef.lastIndexOf('@');
  if (!repository || !workflowRef.startsWith(prefix) || at <= prefix.length) return undefined;
  return workflowRef.slice(prefix.length, at);
}

/**
 * Why the run that wrote a record does not show the release process that promotion vouches for;
 * undefined when it does: the same workflow file as the current run (`path`), started by a push
 * (`event: push`) of the release tag itself (`head_branch`). Another workflow file, or the same
 * one run on a branch or by hand, could write any record with the workflow token; tag rulesets
 * for `v*` keep anyone else from pushing the tag.
 */
export function runProblem(run: WorkflowRunFacts, expected: { path: string; tag: string }): string | undefined {
  const problems: string[] = [];
  if (run.path !== expected.path) problems.push(`its workflow is ${shown(run.path ?? 'unknown')}, not ${shown(expected.path)}`);
  if (run.event !== 'push') problems.push(`it was started by ${shown(run.event ?? 'unknown')}, not a push of ${expected.tag}`);
  else if (run.headBranch !== expected.tag) problems.push(`it ran for ${shown(run.headBranch ?? 'unknown')}, not the tag ${expected.tag}`);
  return problems.length > 0 ? problems.join('; ') : undefined;
}

/** A value the action may use, or why it may not. */
export type Checked<T> = { trusted: T } | { untrusted: string };

/** A release as the hosts run it: the tag, the manifest digest and `repository@digest`. */
export interface TrustedRelease {
  version: string;
  digest: string;
  ref: string;
}

const shown = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value.length > 160 ? `${value.slice(0, 160)}…` : value) : String(value));

/** Why `value` is not a release tag as `version` accepts one; undefined when it is. */
export function versionProblem(value: unknown): string | undefined {
  if (typeof value !== 'string') return `version ${shown(value)} is not a release tag`;
  try {
    parseRelease(value, 'version');
    return undefined;
  } catch {
    return `version ${shown(value)} is not a release tag`;
  }
}

/** Why `value` is not a sha256 manifest digest; undefined when it is. */
export function digestProblem(value: unknown): string | undefined {
  return typeof value === 'string' && DIGEST.test(value) ? undefined : `digest ${shown(value)} is not sha256:<64 hex digits>`;
}

/** `registry:5000/team/app:tag` or `...@sha256:...` → `registry:5000/team/app`. */
export function repositoryOf(ref: string): string {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(0, at);
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? ref.slice(0, colon) : ref;
}

/**
 * The release a container's labels claim, checked: version and digest by the input rules, and
 * the image it was created from (`image`, Docker's Config.Image) of `repository`, the configured
 * image, pinned to that digest when pinned at all. Without `repository` only the form is checked.
 */
export function checkContainerRelease(labels: { version?: string | undefined; digest?: string | undefined }, image: string, repository?: string): Checked<TrustedRelease> {
  const problems = [versionProblem(labels.version), digestProblem(labels.digest)];
  const pinned = image.includes('@') ? image.slice(image.indexOf('@') + 1) : undefined;
  if (pinned !== undefined && pinned !== labels.digest) problems.push(`image ${shown(image)} is not pinned to the digest label`);
  const from = repositoryOf(image);
  if (repository !== undefined && from !== repository) problems.push(`image ${shown(image)} is not of ${repository}`);
  const found = problems.filter((p): p is string => p !== undefined);
  if (found.length > 0) return { untrusted: found.join('; ') };
  return { trusted: { version: labels.version!, digest: labels.digest!, ref: `${from}@${labels.digest!}` } };
}

/** An image's version label and its `repository@digest` reference, checked like a container's. */
export function checkImageRelease(version: string, ref: string, repository: string): Checked<TrustedRelease> {
  const digest = ref.slice(ref.indexOf('@') + 1);
  return checkContainerRelease({ version, digest }, ref, repository);
}

/** Why a deployment record is not one this action provably wrote for `repository`; undefined when it is. */
export function recordProblem(record: DeploymentRecord, repository: string): string | undefined {
  const { payload } = record;
  if (record.creator !== TRUSTED_CREATOR) return `created by ${shown(record.creator ?? 'nobody')}, not ${TRUSTED_CREATOR}`;
  if (payload.recordedBy !== RECORD_MARKER.value) return `its payload has no ${RECORD_MARKER.key}: ${RECORD_MARKER.value}`;
  const problems = [versionProblem(payload.version), digestProblem(payload.digest)];
  if (payload.image !== repository) problems.push(`image ${shown(payload.image)} is not ${repository}`);
  if (record.ref !== payload.version) problems.push(`ref ${shown(record.ref)} is not its version`);
  const found = problems.filter((p): p is string => p !== undefined);
  return found.length > 0 ? found.join('; ') : undefined;
}

/** A record with no payload the action could have written: GitHub's own job records, other tools' empty ones. */
function isForeign(record: DeploymentRecord): boolean {
  const { payload } = record;
  return payload.version === undefined && payload.digest === undefined && payload.recordedBy === undefined;
}

/**
 * Splits an environment's records (newest first, order kept) into those this action wrote for
 * `repository`, which promotion and `previous` may use, and those that look like a release
 * record but fail the checks, each with why (for a warning). Records without any release payload
 * are in neither list: they never were release records.
 */
export function trustedRecords(records: DeploymentRecord[], repository: string): { trusted: DeploymentRecord[]; untrusted: { id: number; reason: string }[] } {
  const trusted: DeploymentRecord[] = [];
  const untrusted: { id: number; reason: string }[] = [];
  for (const record of records) {
    if (isForeign(record)) continue;
    const reason = recordProblem(record, repository);
    if (reason) untrusted.push({ id: record.id, reason });
    else trusted.push(record);
  }
  return { trusted, untrusted };
}
