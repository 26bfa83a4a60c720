// command: unlock — clears an environment's deploy lock left by a run that has ended, in place of
// committing lock.takeover: true. GitHub decides: while it reports the holder's run live, or
// cannot tell (no token, an answer that failed, a lock taken outside GitHub), the lock stays; so
// does a lock whose journal says its run left work unfinished (a takeover repairs that first).
// Who cleared it (the actor and this run) and why (the reason input) go to the log, the job
// summary and the `unlocked` output; the run, bound to the environment, keeps them in GitHub.
import * as core from '@actions/core';
import type { Config } from '../config/schema.js';
import type { GitHubApi } from '../drivers/github.js';
import { InputError, type Inputs } from '../inputs.js';
import { htmlText, writeSummary } from '../report/summary.js';
import { infoUntrusted } from '../report/untrusted.js';
import { describeLock, lockHost } from '../rollout/lock.js';
import { lockName } from '../rollout/spec.js';
import { selectEnvironment } from '../config/environment.js';
import { gitHub, runUrl } from '../pipeline/gates.js';
import { newestJournal, unfinished } from '../pipeline/journal.js';
import { connect } from '../pipeline/preflight.js';

export class UnlockRefused extends Error {
  override name = 'UnlockRefused';
}

/** GitHub's word on the holder's run: ended, live, or why it cannot tell. */
async function holderRun(github: GitHubApi | undefined, runId: string): Promise<{ ended: boolean } | { unknown: string }> {
  if (!github) return { unknown: 'no github-token to ask GitHub' };
  if (!/^\d+$/.test(runId)) return { unknown: `its run id ${JSON.stringify(runId)} is not a GitHub workflow run's` };
  try {
    return { ended: await github.runEnded(runId) };
  } catch (error) {
    return { unknown: `GitHub did not answer: ${error instanceof Error ? error.message : String(error)}` };
  }
}

export async function unlock(inputs: Inputs, config: Config): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  const reason = inputs.reason.trim();
  if (!reason) throw new InputError('reason: required for command: unlock: say why the lock is cleared (it is recorded with who cleared it)');
  const at = lockHost(env.hosts);
  // Only the lock's host: a host or load balancer that is down (often why a run died) must not stop this.
  const { haproxy: _unused, ...hostOnly } = env;
  const connected = await connect(inputs, config, { ...hostOnly, hosts: [at] });
  try {
    const host = connected.hosts.get(at)!;
    const name = lockName(config.app);
    const lock = await host.readLock(name);
    if (!lock) {
      core.info(`The deploy lock of ${env.name} (${name} on ${at}) is not held: nothing to clear.`);
      await writeSummary((s) => s.addHeading(`Deploy lock of ${env.name}`, 3).addRaw(`<p>${htmlText('Not held: nothing was cleared.')}</p>`, true));
      return { unlocked: '' };
    }
    // The lock's labels are whatever another run wrote.
    infoUntrusted(`The deploy lock of ${env.name} is held on ${at} by ${describeLock(lock)}`);
    const verdict = await holderRun(gitHub(inputs), lock.runId);
    if (!('ended' in verdict) || !verdict.ended) {
      const why = 'ended' in verdict ? 'GitHub reports its run as still running' : `GitHub cannot tell whether its run has ended (${verdict.unknown})`;
      throw new UnlockRefused(
        `environment ${env.name}: the deploy lock was not cleared: ${why}. Cancel that run (or wait for it); its post step releases the lock. ` +
          'A lock GitHub can say nothing about is cleared by a deploy with lock.takeover: true once lock.stale-after has passed.',
      );
    }
    // The journal kept in the lock is what a deploy taking it over repairs first: clearing the
    // lock would lose it, and leave servers out of service for good.
    const left = newestJournal(await host.readLockJournal(name));
    const pending = left ? unfinished(left) : [];
    if (pending.length > 0) {
      throw new UnlockRefused(
        `environment ${env.name}: the deploy lock was not cleared: its run ended mid-rollout and left work unfinished (${pending.join('; ')}). ` +
          'A deploy or rollback with lock.takeover: true takes the lock over and finishes that first.',
      );
    }
    // Only the lock judged above: one another run took meanwhile has another run id and stays.
    if (!(await host.releaseLock(name, lock))) {
      throw new UnlockRefused(`environment ${env.name}: the deploy lock changed hands while it was being cleared; nothing was cleared`);
    }
    const record = {
      environment: env.name,
      host: at,
      lock: { holder: lock.holder, runId: lock.runId, attempt: lock.attempt, runUrl: lock.runUrl, version: lock.version, since: lock.since.toISOString() },
      clearedBy: inputs.run.actor || 'someone',
      clearedIn: runUrl(inputs),
      reason,
      at: new Date().toISOString(),
    };
    const line = `Cleared the deploy lock of ${env.name} (its run has ended): by ${record.clearedBy}${record.clearedIn ? ` in ${record.clearedIn}` : ''}, because: ${reason}`;
    infoUntrusted(line);
    core.notice(`Deploy lock of ${env.name} cleared by ${record.clearedBy}; run command: status to see where the ended run left each host`);
    await writeSummary((s) =>
      s.addHeading(`Deploy lock of ${env.name} cleared`, 3).addRaw(
        `<table>${[
          ['held by', describeLock(lock)],
          ['cleared by', `${record.clearedBy}${record.clearedIn ? ` (${record.clearedIn})` : ''}`],
          ['why', reason],
          ['at', record.at],
        ]
          .map(([k, v]) => `<tr><th>${htmlText(k!)}</th><td>${htmlText(v!)}</td></tr>`)
          .join('')}</table>\n<p>${htmlText('The run that held it may have left hosts mid-rollout: command: status shows each host and server.')}</p>\n`,
        true,
      ),
    );
    return { unlocked: JSON.stringify(record) };
  } finally {
    connected.dispose();
  }
}
