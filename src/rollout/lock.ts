// The deploy lock of one app and environment: a labelled container on the environment's first
// host, created (never started) so that Docker's unique names make taking it atomic.
import type { LockConfig } from '../config/schema.js';
import type { DeployLock, HostDriver } from './ports.js';

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
  return `${lock.holder} since ${lock.since.toISOString()} deploying ${lock.version} (${lock.runUrl || `run ${lock.runId}`})`;
}

/** Why a lock is stale, or undefined while it is live. */
export async function staleReason(lock: DeployLock, policy: LockPolicy): Promise<string | undefined> {
  const ageSeconds = (policy.now().getTime() - lock.since.getTime()) / 1000;
  if (await policy.runEnded(lock.runId)) return 'its run has ended';
  if (ageSeconds > policy.config['stale-after']) return `it is older than lock.stale-after (${policy.config['stale-after']}s)`;
  return undefined;
}

const POLL_MS = 5000;

/**
 * Takes the lock, waiting up to lock.wait seconds for a live holder. A stale lock (its run
 * ended, or older than lock.stale-after) is taken over only with lock.takeover: true; otherwise
 * the deploy stops and says so, since a stale lock can also mean a deploy died half-way.
 */
export async function acquireDeployLock(
  host: HostDriver,
  name: string,
  mine: DeployLock,
  image: string,
  policy: LockPolicy,
): Promise<void> {
  const deadline = policy.now().getTime() + policy.config.wait * 1000;
  for (;;) {
    const attempt = await host.acquireLock(name, mine, image);
    if (attempt.acquired) return;
    const held = attempt.current;
    const stale = await staleReason(held, policy);
    if (stale) {
      if (!policy.config.takeover) {
        throw new LockError(
          `the deploy lock is stale (${stale}): held by ${describeLock(held)}. ` +
            'Check that no deploy is running, then set lock.takeover: true in the deploy config to take it over.',
        );
      }
      policy.warn(`Taking over a stale deploy lock (${stale}) held by ${describeLock(held)}`);
      await host.releaseLock(name, held.runId);
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
