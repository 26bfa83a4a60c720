// Which release a deploy or rollback puts on the hosts, decided from what the environment runs
// and ran: the deploy's tag (pinned to the build job's digest when given), or for a rollback a
// release this environment ran, at the digest it ran. What it ran is what the hosts' own history
// says (the `deploy-action.history` label, written over SSH with the environment's key, which
// nobody without the environment's secrets has); GitHub's deployment records, which any workflow
// with `deployments: write` can add to, are the audit trail: cross-checked, never the authority.
// Pure: the state is read under the lock.
import semver from 'semver';
import { InputError } from '../inputs.js';
import {
  historyEntry,
  nextHistory,
  previousInLabel,
  previousRelease,
  ranDigest,
  ranDigestInLabel,
  type DeploymentRecord,
  type RanRelease,
} from '../release/history.js';
import { isReleaseTag } from '../release/version.js';
import type { HostTarget } from '../rollout/plan.js';
import type { Release } from '../rollout/ports.js';

export type RolloutRequest =
  | { task: 'deploy'; tag: string; digest: string }
  | {
      task: 'rollback';
      /** A release tag, or `previous`. */
      version: string;
      /** Input allow-never-deployed: a tag this environment never ran may be rolled back to. */
      allowNeverDeployed: boolean;
    };

/** What the environment runs and ran, read under the deploy lock. */
export interface EnvironmentState {
  environment: string;
  current: Map<string, HostTarget>;
  /** The environment's GitHub deployment records, newest first; undefined without a token. */
  records?: DeploymentRecord[];
}

/** The release tag to deploy, and the digest it must have in the registry ('' = whatever it has). */
export interface WantedRelease {
  tag: string;
  digest: string;
  /** Where `digest` comes from, for the refusal when the registry's differs. */
  pinnedBy: string;
  /** Why this release, for the log. */
  reason: string;
  /** A rollback to a release the environment never ran (allow-never-deployed). */
  neverRan: boolean;
  /** A rollback's: where the release and its digest come from, for the log and the summary. */
  source?: string;
  /** A rollback's: where GitHub's records say otherwise than the hosts (a warning each). */
  disagreements?: string[];
}

/** Where a rollback's target comes from: the one authority for what an environment ran. */
export const HOSTS_HISTORY = "the hosts' history (the deploy-action.history label)";

/** The releases the hosts' masters run (each host's backup where it has no master), hosts in name order. */
function runningReleases(current: Map<string, HostTarget>): Release[] {
  return [...current.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .flatMap(([, host]) => {
      const release = host.master ?? host.backup;
      return release && isReleaseTag(release.version) ? [release] : [];
    });
}

/**
 * The release the environment runs: the one most hosts' masters run; when hosts disagree evenly,
 * the higher release (semver order), so the answer never depends on the order of the hosts.
 * '' when nothing with a release tag runs.
 */
export function runningVersion(current: Map<string, HostTarget>): string {
  const counts = new Map<string, number>();
  for (const { version } of runningReleases(current)) counts.set(version, (counts.get(version) ?? 0) + 1);
  const bare = (tag: string) => (tag.startsWith('v') ? tag.slice(1) : tag);
  return [...counts].sort((a, b) => b[1] - a[1] || semver.rcompare(bare(a[0]), bare(b[0])))[0]?.[0] ?? '';
}

/**
 * The history label of what runs: from a container on the running release (an adopted one
 * starts a history with itself when its image names a release and a registry digest).
 */
export function runningHistory(current: Map<string, HostTarget>): string[] {
  const version = runningVersion(current);
  const release = runningReleases(current).find((r) => r.version === version);
  if (!release) return [];
  if (release.history) return release.history;
  return release.digest ? [historyEntry(release)] : [];
}

/** The history the target's containers carry. */
export function historyFor(state: EnvironmentState, target: RanRelease, task: 'deploy' | 'rollback'): string[] {
  return nextHistory(runningHistory(state.current), target, task);
}

export function wantedRelease(request: RolloutRequest, state: EnvironmentState): WantedRelease {
  if (request.task === 'deploy') {
    return { tag: request.tag, digest: request.digest, pinnedBy: 'the digest input (the build job\'s)', reason: 'the release deployed', neverRan: false };
  }
  return request.version === 'previous' ? previous(state) : earlier(request.version, request.allowNeverDeployed, state);
}

function previous(state: EnvironmentState): WantedRelease {
  const running = runningVersion(state.current);
  if (!running) throw new InputError(`version: previous: nothing with a release tag runs in ${state.environment} yet; give a tag`);
  const found = previousInLabel(runningHistory(state.current), running);
  const claimed = state.records && previousRelease(state.records, running);
  const disagreements =
    claimed && (!found || historyEntry(claimed) !== historyEntry(found))
      ? [
          `GitHub's deployment records of ${state.environment} say the release before ${running} is ${historyEntry(claimed)}, ` +
            `${HOSTS_HISTORY} says ${found ? historyEntry(found) : 'there is none'}: the hosts decide. A record that disagrees ` +
            `was written by a run that did not deploy it there (any workflow with deployments: write can write one); look at who wrote it`,
        ]
      : [];
  if (!found) {
    throw new InputError(
      `version: previous: ${HOSTS_HISTORY} in ${state.environment} has no release before ${running} ` +
        '(repeated rollbacks walk it back to its start); give the tag of a release this environment ran' +
        (claimed ? ` (GitHub's records name ${claimed.version}, but only what the hosts ran counts)` : ''),
    );
  }
  return {
    tag: found.version,
    digest: found.digest,
    pinnedBy: `the digest ${found.version} ran at in ${state.environment}`,
    reason: `previous: ${found.version}, the release before ${running} in ${HOSTS_HISTORY}`,
    neverRan: false,
    source: HOSTS_HISTORY,
    disagreements,
  };
}

function earlier(tag: string, allowNeverDeployed: boolean, state: EnvironmentState): WantedRelease {
  const histories = [...state.current.values()].flatMap((host) => [host.master?.history ?? [], host.backup?.history ?? []]);
  const digest = histories.map((h) => ranDigestInLabel(h, tag)).find(Boolean);
  const claimed = state.records && ranDigest(state.records, tag);
  const disagreements =
    claimed && claimed !== digest
      ? [
          `GitHub's deployment records of ${state.environment} say ${tag} ran there at ${claimed}, ${HOSTS_HISTORY} ` +
            `${digest ? `says at ${digest}` : 'does not have it'}: the hosts decide. A record that disagrees was written by a run ` +
            'that did not deploy it there (any workflow with deployments: write can write one); look at who wrote it',
        ]
      : [];
  if (digest) {
    return {
      tag,
      digest,
      pinnedBy: `the digest ${tag} ran at in ${state.environment}`,
      reason: `${tag}, which ${state.environment} ran (${HOSTS_HISTORY})`,
      neverRan: false,
      source: HOSTS_HISTORY,
      disagreements,
    };
  }
  if (!allowNeverDeployed) {
    throw new InputError(
      `version: ${tag} never ran in ${state.environment} (${HOSTS_HISTORY} does not have it` +
        `${claimed ? "; GitHub's records claim it did, but a record is not proof: only what the hosts ran counts" : ''}): ` +
        'a rollback goes back to a release this environment ran. To deploy it there anyway, set allow-never-deployed: true',
    );
  }
  return {
    tag,
    digest: '',
    pinnedBy: '',
    reason: `${tag}, which ${state.environment} NEVER ran (allow-never-deployed: true)`,
    neverRan: true,
    source: 'the version input (allow-never-deployed: true)',
    disagreements,
  };
}

/**
 * A rollback's target is shown once it is resolved, before any host changes; under the lock it is
 * resolved again, and a target that changed in between (another run deployed or rolled back
 * meanwhile) stops the rollback: what the user was shown is what it does, or nothing.
 */
export function targetChanged(request: RolloutRequest, shown: RanRelease, now: RanRelease, environment: string): string | undefined {
  if (request.task !== 'rollback' || (shown.version === now.version && shown.digest === now.digest)) return undefined;
  return (
    `the rollback target changed between resolving it (${historyEntry(shown)}) and acting on it under the deploy lock ` +
    `(${historyEntry(now)}): another run changed ${environment} meanwhile. Nothing was changed; run the rollback again to go to what ${request.version} means now`
  );
}
