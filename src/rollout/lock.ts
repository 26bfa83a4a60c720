// The deploy lock of one app and environment: a labelled container on one host of the
// environment, created (never started) so that Docker's unique names make taking it atomic.
import type { LockConfig } from '../config/schema.js';
import type { DeployLock, HostDriver } from './ports.js';

/**
 * Where the lock lives: the host whose name sorts first (as text), so that listing the hosts in
 * another order never moves it (adding or removing that very host does; the lock is held only
 * while a run lasts).
 */
export function lockHost(hosts: readonly string[]): string {
  const first = [...hosts].sort()[0];
  if (first === undefined) throw new LockError('no host to hold the deploy lock');
  return first;
}

export class LockError extends Error {
  override name = 'LockError';
}

export interface LockPolicy {
  config: LockConfig;
  /**
   * Whether the run holding a lock has ended, as GitHub says; undefined when GitHub cannot be
   * asked (no token, not a GitHub run id). Throws when GitHub was asked and gave no answer (an
   * error, a rate limit, a missing permission): that never counts as ended.
   */
  runEnded(runId: string): Promise<boolean | undefined>;
  /** The holder's last sign of life, from the journal kept in its lock (`readLockJournal`'s texts). */
  signOfLife?(journal: string[]): Date | undefined;
  /** Cancellation: the wait for a live lock ends at once. */
  signal?: AbortSignal;
  sleep(ms: number): Promise<void>;
  now(): Date;
  warn(line: string): void;
  info(line: string): void;
}

export function describeLock(lock: DeployLock): string {
  return `${lock.holder} since ${lock.since.toISOString()} deploying ${lock.version} (${lock.runUrl || `run ${lock.runId}`}, attempt ${lock.attempt || '?'})`;
}

/**
 * Why a lock is stale, or undefined while it is live. GitHub's word wins over age: a run that
 * GitHub reports as running holds its lock however old it is (a long wait for reviewers, a slow
 * pull), and an earlier attempt of a run that is running again has surely ended. An error from
 * GitHub is no word at all: the lock stays live. Only when GitHub cannot be asked does age
 * count, from the holder's last sign of life (`signOfLife`: a run refreshes it while it rolls out).
 */
export async function staleReason(lock: DeployLock, mine: DeployLock, policy: LockPolicy, signOfLife?: Date): Promise<string | undefined> {
  if (lock.runId === mine.runId && lock.attempt !== mine.attempt) {
    return `it belongs to attempt ${lock.attempt || '?'} of this run, and this is attempt ${mine.attempt}`;
  }
  let ended: boolean | undefined;
  try {
    ended = await policy.runEnded(lock.runId);
  } catch (error) {
    policy.info(`GitHub gave no answer on whether run ${lock.runId} has ended (${error instanceof Error ? error.message : String(error)}): its lock counts as live`);
    return undefined;
  }
  if (ended === true) return 'its run has ended';
  if (ended === false) return undefined;
  const refreshed = signOfLife !== undefined && signOfLife > lock.since;
  const last = refreshed ? signOfLife : lock.since;
  const ageSeconds = (policy.now().getTime() - last.getTime()) / 1000;
  if (ageSeconds <= policy.config['stale-after']) return undefined;
  const age = refreshed ? `its holder's last sign of life (${last.toISOString()}) is older than` : 'it is older than';
  return `${age} lock.stale-after (${policy.config['stale-after']}s) and GitHub cannot tell whether its run has ended`;
}

/** The journal texts a lock holds; none when they cannot be read (a takeover then knows nothing of what its holder did). */
async function journalOf(host: HostDriver, name: string, policy: LockPolicy): Promise<string[]> {
  try {
    return await host.readLockJournal(name);
  } catch (error) {
    policy.info(`Could not read the journal kept in the deploy lock: ${error instanceof Error ? error.message : String(error)}`);
    return [];
  }
}

const POLL_MS = 5000;

/**
 * Takes the lock, waiting up to lock.wait seconds for a live holder. A stale lock (see
 * staleReason) is taken over only with lock.takeover: true, except one of an earlier attempt of
 * this very run, which is taken over always (its holder is this run's past self); otherwise
 * the deploy stops and says so, since a stale lock can also mean a deploy died half-way.
 * Returns the lock it took over, if any, with the journal its run kept in it (what that run left
 * is for the taker to finish). The wait ends at once when `policy.signal` aborts.
 */
export async function acquireDeployLock(
  host: HostDriver,
  name: string,
  mine: DeployLock,
  image: string,
  policy: LockPolicy,
): Promise<{ tookOverFrom?: DeployLock; journal?: string[] }> {
  const deadline = policy.now().getTime() + policy.config.wait * 1000;
  let tookOver: { tookOverFrom: DeployLock; journal: string[] } | undefined;
  for (;;) {
    if (policy.signal?.aborted) throw new LockError('cancelled while waiting for the deploy lock; nothing was changed');
    const attempt = await host.acquireLock(name, mine, image);
    if (attempt.acquired) return tookOver ?? {};
    const held = attempt.current;
    const journal = await journalOf(host, name, policy);
    const stale = await staleReason(held, mine, policy, policy.signOfLife?.(journal));
    if (stale) {
      const ownEarlierAttempt = held.runId === mine.runId;
      if (!policy.config.takeover && !ownEarlierAttempt) {
        throw new LockError(
          `the deploy lock is stale (${stale}): held by ${describeLock(held)}. ` +
            'Check that no deploy is running, then set lock.takeover: true in the deploy config to take it over.',
        );
      }
      policy.warn(`Taking over a stale deploy lock (${stale}) held by ${describeLock(held)}`);
      await host.releaseLock(name, held);
      tookOver = { tookOverFrom: held, journal };
      continue;
    }
    if (policy.now().getTime() >= deadline) {
      throw new LockError(
        `another deploy holds the lock: ${describeLock(held)}` +
          (policy.config.wait > 0 ? `; waited ${policy.config.wait}s (lock.wait)` : '; set lock.wait to wait for it'),
      );
    }
    policy.info(`Waiting for the deploy lock held by ${describeLock(held)}`);
    await policy.sleep(POLL_MS);
  }
}
