// The last stage: what a rollout's outcome means for the job (the message a cancel or a failure
// ends it with), and after a rollout that succeeded, the success record and the image prune.
import * as core from '@actions/core';
import type { Config, EnvironmentConfig } from '../config/schema.js';
import { receiptLine, type Receipt } from '../receipt/document.js';
import { inEffect } from '../release/history.js';
import type { RolloutResult } from '../rollout/execute.js';
import type { Release } from '../rollout/ports.js';
import type { GitHubDeployment } from './gates.js';
import { onEveryHost, type Connected } from './preflight.js';
import type { EnvironmentState } from './target.js';

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));
const RECORD_ATTEMPTS = 3;

/** Why the job fails after a rollout that did not succeed (cancelled, or failed and rolled back); undefined on success. */
export function outcomeFailure(env: EnvironmentConfig, target: Release, result: RolloutResult): string | undefined {
  if (result.cancelled) return cancelledMessage(env, result);
  if (!result.ok) return failureMessage(env, target, result);
  return undefined;
}

function cancelledMessage(env: EnvironmentConfig, result: RolloutResult): string {
  const runs = result.hosts.map((h) => `${h.host}: master ${h.after.master?.version ?? 'none'}, backup ${h.after.backup?.version ?? 'none'}`).join('; ');
  const left = result.cancelled!.settled ? 'every host serves, in service' : `the post step settles ${result.cancelled!.unsettled.join(', ')} and releases the lock`;
  return `cancelled in ${env.name}: ${left} (${runs})`;
}

function failureMessage(env: EnvironmentConfig, target: Release, result: RolloutResult): string {
  const failed = result.failures.map((f) => `${f.host}: ${f.role} ${f.reason}`).join('; ');
  const rolledBack = result.hosts.filter((h) => h.rolledBack).map((h) => h.host);
  // Only a host the rollout touched is rolled back: none, and it failed before any change.
  const rollback =
    result.rollbackErrors.length > 0
      ? `ROLLBACK INCOMPLETE:\n  ${result.rollbackErrors.join('\n  ')}`
      : rolledBack.length === 0
        ? 'no host was changed'
        : `every host touched was rolled back to the release it ran before (${rolledBack.join(', ')})`;
  return `${target.version} to ${env.name} failed on ${failed}; ${rollback}`;
}

/**
 * After a rollout that succeeded: the success record and the image prune. Neither may fail the
 * job now: every host runs the release, and a failed job would refuse its promotion.
 */
export async function tidyUp(
  config: Config,
  env: EnvironmentConfig,
  connected: Connected,
  { target, state }: { target: Release; state: EnvironmentState },
  record: GitHubDeployment | undefined,
  receipt: Receipt | undefined,
): Promise<void> {
  if (record) {
    const line = receipt ? receiptLine(receipt, env.hosts.length) : `${target.version} on ${env.hosts.length} hosts`;
    await retried(`record the deployment ${record.id} as a success`, () => record.set('success', line));
  }
  await core.group('Prune old images', async () => {
    // Never what ran before this run (the rollback target) nor the release before the target.
    const previous = inEffect(target.history ?? []).slice(-2, -1).map((entry) => entry.slice(entry.indexOf('@') + 1));
    const running = [...state.current.values()].flatMap((h) => [h.master?.ref, h.backup?.ref].filter((r): r is string => !!r));
    const protect = [target.ref, ...running, ...previous];
    await onEveryHost(connected.hosts, 'Pruning images', async (host) => {
      const removed = await host.pruneImages(config.image, env.retainImages, protect);
      core.info(`[${host.host}] removed ${removed.length} old image(s)${removed.length ? `: ${removed.join(', ')}` : ''}`);
    }).catch((error: Error) => core.warning(`Could not prune old images (the deploy itself succeeded): ${error.message}`));
  });
}

async function retried(what: string, run: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (attempt >= RECORD_ATTEMPTS) {
        core.warning(`Could not ${what} after ${attempt} attempts (the deploy itself succeeded): ${message}`);
        return;
      }
      core.info(`Could not ${what} (attempt ${attempt}): ${message}; trying again`);
      await sleep(1000 * attempt);
    }
  }
}
