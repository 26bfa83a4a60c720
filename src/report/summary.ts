// The job summary. Runs outside a runner (no GITHUB_STEP_SUMMARY) simply skip it.
import * as core from '@actions/core';
import { redact } from './secrets.js';
import { describePhases, type RolloutResult } from '../rollout/execute.js';
import type { Release } from '../rollout/ports.js';

type Summary = typeof core.summary;

export async function writeSummary(build: (summary: Summary) => void): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  build(core.summary);
  const text = redact(core.summary.stringify(), [escapeHtml]);
  await core.summary.emptyBuffer().addRaw(text).write();
}

// Escaped text is redacted too: a secret with & or < in it would otherwise slip past redact().
const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ENTITIES[c]!);
}

/** Text as HTML that adds no markup: for table cells and paragraphs holding outside text. */
export function htmlText(text: string): string {
  // A line break becomes <br>: a blank line would end the HTML block and start Markdown.
  return escapeHtml(text).replace(/\r\n|\r|\n/g, '<br>');
}

/**
 * A block of text shown as it is (logs, error messages, HAProxy answers). It is an HTML <pre>
 * on lines of its own, HTML-escaped: GitHub's Markdown ends such a block only at `</pre>`, which
 * escaped text cannot contain, so neither a fence nor markup in the text breaks out of it.
 * (core.summary.addCodeBlock escapes nothing.)
 */
export function preformatted(text: string): string {
  return `\n<pre><code>${escapeHtml(text)}</code></pre>\n\n`;
}

const versionOf = (release: Release | undefined) => htmlText(release?.version ?? '—');

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
      htmlText(h.health || '—'),
    ]),
  ]);
  if (result.roles) {
    s.addTable([
      ['Host', 'Role', 'Container', 'Before → after'].map((data) => ({ data, header: true })),
      ...result.roles.containers.map((c) => [c.host, htmlText(c.role), htmlText(c.name), `${versionOf(c.before)} → ${versionOf(c.after)}${c.undone ? ' (put back)' : ''}`]),
    ]);
  }
  if (result.failure) {
    s.addRaw(`<p>${htmlText(`Failed on ${result.failure.host}: ${result.failure.role} ${result.failure.reason}.`)}</p>`, true);
    const rolledBack = result.hosts.filter((h) => h.rolledBack).map((h) => h.host);
    const after = result.cancelled
      ? // A cancel stops the rollback (or comes before it): each host in flight is settled, those done stay.
        `Cancelled${rolledBack.length ? ` after rolling back ${rolledBack.join(', ')}` : ' before the rollback'}: ` +
        (result.cancelled.settled ? 'each host runs one release, in service (see the table).' : `the post step settles ${result.cancelled.unsettled.join(', ')}.`)
      : result.rollbackErrors.length === 0
        ? `Rolled back: ${rolledBack.join(', ') || 'nothing had changed'}.`
        : `Rollback incomplete: ${result.rollbackErrors.join('; ')}`;
    s.addRaw(`<p>${htmlText(after)}</p>`, true);
    if (result.failure.logs) s.addDetails('Last log lines of the failing container', `\n${preformatted(result.failure.logs)}`);
  }
}
