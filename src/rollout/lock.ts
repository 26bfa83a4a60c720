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
  /** Whether the run holding a lock has ended (GitHub knows); undefined when it cannot tell. */
  runEnded(runId: string): Promise<boolean | undefined>;
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
 * pull), and an earlier attempt of a run that is running again has surely ended.
 */
export async function staleReason(lock: DeployLock, mine: DeployLock, policy: LockPolicy): Promise<string | undefined> {
  if (lock.runId === mine.runId && lock.attempt !== mine.attempt) {
    return `it belongs to attempt ${lock.attempt || '?'} of this run, and this is attempt ${mine.attempt}`;
  }
  const ended = await policy.runEnded(lock.runId);
  if (ended === true) return 'its run has ended';
  if (ended === false) return undefined;
  const ageSeconds = (policy.now().getTime() - lock.since.getTime()) / 1000;
  if (ageSeconds > policy.config['stale-after']) return `it is older than lock.stale-after (${policy.config['stale-after']}s) and GitHub cannot tell whether its run has ended`;
  return undefined;
}

const POLL_MS = 5000;

/**
 * Takes the lock, waiting up to lock.wait seconds for a live holder. A stale lock (see
 * staleReason) is taken over only with lock.takeover: true, except one of an earlier attempt of
 * this very run, which is taken over always (its holder is this run's past self); otherwise
 * the deploy stops and says so, since a stale lock can also mean a deploy died half-way.
 * Returns the lock it took over, if any: what that run left is then no one's intent.
 */
export async function acquireDeployLock(
  host: HostDriver,
  name: string,
  mine: DeployLock,
  image: string,
  policy: LockPolicy,
): Promise<{ tookOverFrom?: DeployLock }> {
  const deadline = policy.now().getTime() + policy.config.wait * 1000;
  let tookOverFrom: DeployLock | undefined;
  for (;;) {
    const attempt = await host.acquireLock(name, mine, image);
    if (attempt.acquired) return tookOverFrom ? { tookOverFrom } : {};
    const held = attempt.current;
    const stale = await staleReason(held, mine, policy);
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
      tookOverFrom = held;
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
