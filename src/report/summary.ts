// The job summary. Runs outside a runner (no GITHUB_STEP_SUMMARY) simply skip it.
import * as core from '@actions/core';
import { redact } from './secrets.js';
import { describePhases, type RolloutResult } from '../rollout/execute.js';
import type { Release } from '../rollout/ports.js';

type Summary = typeof core.summary;

export async function writeSummary(build: (summary: Summary) => void): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  build(core.summary);
  const text = redact(core.summary.stringify());
  await core.summary.emptyBuffer().addRaw(text).write();
}

const versionOf = (release: Release | undefined) => release?.version ?? '—';

export function rolloutSummary(
  s: Summary,
  report: { environment: string; target: Release; result: RolloutResult },
): void {
  const { environment, target, result } = report;
  s.addHeading(`${result.ok ? '✅' : '❌'} ${target.version} to ${environment}`, 3);
  s.addRaw(`Image \`${target.ref}\``, true);
  s.addTable([
    ['Host', 'Master before → after', 'Backup before → after', 'Time', 'Phases', 'Health'].map((data) => ({ data, header: true })),
    ...result.hosts.map((h) => [
      h.host,
      `${versionOf(h.before.master)} → ${versionOf(h.after.master)}`,
      `${versionOf(h.before.backup)} → ${versionOf(h.after.backup)}`,
      `${h.seconds.toFixed(1)} s`,
      h.phases.map(describePhases).join('<br>') || '—',
      h.health || '—',
    ]),
  ]);
  if (result.failure) {
    s.addRaw(`Failed on ${result.failure.host}: ${result.failure.role} ${result.failure.reason}.`, true);
    s.addRaw(
      result.rollbackErrors.length === 0
        ? `Rolled back: ${result.hosts.filter((h) => h.rolledBack).map((h) => h.host).join(', ') || 'nothing had changed'}.`
        : `Rollback incomplete: ${result.rollbackErrors.join('; ')}`,
      true,
    );
    if (result.failure.logs) s.addDetails('Last log lines of the failing container', `\n\n\`\`\`\n${result.failure.logs}\n\`\`\`\n`);
  }
}
