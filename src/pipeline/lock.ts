// The deploy lock as a run takes and releases it: who this run is (run id and attempt), where
// the lock lives (rollout/lock.ts: lockHost), GitHub's word on whether a holder's run has
// ended, and the state the post step of a cancelled job needs to release it.
import { setTimeout as delay } from 'node:timers/promises';
import * as core from '@actions/core';
import type { Config } from '../config/schema.js';
import type { GitHubApi } from '../drivers/github.js';
import type { Inputs } from '../inputs.js';
import { infoUntrusted } from '../report/untrusted.js';
import { acquireDeployLock, lockHost } from '../rollout/lock.js';
import type { DeployLock, Release } from '../rollout/ports.js';
import { lockName } from '../rollout/spec.js';
import { runUrl } from './gates.js';
import { newestJournal, type Journal } from './journal.js';
import type { Connected } from './preflight.js';

/** Saved for the post step, which releases the lock when the job was cancelled mid-deploy. */
export const LOCK_STATE = 'deploy-lock';

export interface HeldLock {
  host: string;
  name: string;
  runId: string;
  attempt: string;
  /** Whether it was taken over from a run that had ended (see acquireDeployLock). */
  tookOver: boolean;
}

/** What taking the lock gives the next stage: the lock, and what a run whose lock was taken over left. */
export interface TakenLock {
  held: HeldLock;
  /** The journal the run whose stale lock was taken over kept in it (undefined: it kept none). */
  leftBehind?: Journal;
}

/** A sleep that ends at once when `signal` aborts. */
const abortableSleep = (signal?: AbortSignal) => (ms: number) => delay(ms, undefined, signal ? { signal } : {}).catch(() => undefined);

export async function takeLock(
  inputs: Inputs,
  config: Config,
  connected: Connected,
  target: Release,
  github: GitHubApi | undefined,
  signal?: AbortSignal,
): Promise<TakenLock> {
  const host = connected.hosts.get(lockHost(connected.env.hosts))!;
  const { actor, workflow, runId, runAttempt } = inputs.run;
  const mine: DeployLock = {
    holder: `${actor || 'someone'} (${workflow || 'workflow'} run ${runId || '?'}, attempt ${runAttempt})`,
    runUrl: runUrl(inputs),
    runId: runId || `local-${process.pid}`,
    attempt: runAttempt,
    version: target.version,
    since: new Date(),
  };
  const name = lockName(config.app);
  const { tookOverFrom, journal } = await acquireDeployLock(host, name, mine, target.ref, {
    config: connected.env.lock,
    // Without a token or a GitHub run id GitHub cannot be asked; an error from it is no answer.
    runEnded: async (id) => (github && /^\d+$/.test(id) ? github.runEnded(id) : undefined),
    signOfLife: (texts) => {
      const aliveAt = newestJournal(texts)?.aliveAt;
      return aliveAt ? new Date(aliveAt) : undefined;
    },
    ...(signal ? { signal } : {}),
    sleep: abortableSleep(signal),
    now: () => new Date(),
    warn: (line) => core.warning(line),
    // Lock labels are whatever another run wrote.
    info: infoUntrusted,
  });
  const held = { host: host.host, name, runId: mine.runId, attempt: mine.attempt, tookOver: tookOverFrom !== undefined };
  core.saveState(LOCK_STATE, JSON.stringify(held));
  core.info(`Took the deploy lock ${name} on ${host.host}`);
  const leftBehind = journal && newestJournal(journal);
  return leftBehind ? { held, leftBehind } : { held };
}

export async function releaseLock(connected: Connected, held: HeldLock): Promise<void> {
  await connected.hosts.get(held.host)!.releaseLock(held.name, held).then(
    () => core.saveState(LOCK_STATE, ''),
    (error: Error) => core.warning(`Could not release the deploy lock on ${held.host}: ${error.message}`),
  );
}

/** The post step: a cancelled job leaves its lock behind; release it if this run still holds it. */
export async function releaseLeftoverLock(connected: Connected, lock: HeldLock, runAttempt: string): Promise<void> {
  const released = await connected.hosts.get(lock.host)!.releaseLock(lock.name, { runId: lock.runId, attempt: lock.attempt ?? runAttempt });
  core.info(released ? `Released the deploy lock ${lock.name} on ${lock.host} left by this run` : 'No deploy lock of this run was left');
}
