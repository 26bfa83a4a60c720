// The receipt in the job summary: totals next to the baseline, a table per host, and two Mermaid
// charts on one time axis (requests and errors per second; each host's steps). Pure text.
import { htmlText } from '../report/summary.js';
import { describePhases } from '../rollout/execute.js';
import type { Receipt, Totals } from './document.js';

const MAX_POINTS = 60;

/** Text for a Mermaid label: nothing that could end one (hosts and versions are checked, yet). */
const plain = (text: string) => text.replace(/[^A-Za-z0-9._+\- ]/g, '_');
const n = (x: number) => x.toLocaleString('en-US');

const ROWS: { label: string; cell: (t: Totals, seconds: number) => string }[] = [
  { label: 'Requests', cell: (t) => n(t.requests) },
  { label: 'Requests per second', cell: (t, s) => (s > 0 ? n(Math.round(t.requests / s)) : '—') },
  { label: 'Errors (rate)', cell: (t) => `${n(t.errors)} (${Number(t.errorRate.toFixed(2))}%)` },
  { label: '5xx answers', cell: (t) => n(t.http5xx) },
  { label: 'Failed connections', cell: (t) => n(t.connectionErrors) },
  { label: 'Cut responses', cell: (t) => n(t.responseErrors) },
  { label: 'Retries / redispatches', cell: (t) => `${n(t.retries)} / ${n(t.redispatches)}` },
  { label: 'Response time / total time', cell: (t) => (t.requests ? `${t.responseMs} / ${t.totalMs} ms` : '—') },
];

/** Markdown and HTML for the summary (core.summary.addRaw). */
export function renderReceipt(receipt: Receipt): string {
  const versions = Object.keys(receipt.releases);
  const head = ['', `Baseline (${receipt.baseline.seconds} s before)`, `Rollout (${receipt.window.seconds} s)`, ...versions.map((v) => `${plain(v)} during the rollout`)];
  const table = [
    `| ${head.join(' | ')} |`,
    `|${head.map(() => ' --- ').join('|')}|`,
    ...ROWS.map(
      (row) =>
        `| ${row.label} | ${row.cell(receipt.baseline.totals, receipt.baseline.seconds)} | ${row.cell(receipt.totals, receipt.window.seconds)} | ${versions
          .map((v) => row.cell(receipt.releases[v]!, receipt.window.seconds))
          .join(' | ')} |`,
    ),
  ];
  const hostHead = ['Host', 'Time', 'Phases', ...versions.map((v) => `${plain(v)}: requests / errors`)];
  const hosts = [
    `| ${hostHead.join(' | ')} |`,
    `|${hostHead.map(() => ' --- ').join('|')}|`,
    ...receipt.hosts.map((h) => {
      const cells = versions.map((v) => (h.releases[v] ? `${n(h.releases[v].requests)} / ${n(h.releases[v].errors)}` : '—'));
      return `| ${plain(h.host)} | ${h.seconds} s | ${h.phases.map(describePhases).join('<br>') || '—'} | ${cells.join(' | ')} |`;
    }),
  ];
  const gaps = receipt.gaps.length ? `\n\nNot every reading was complete: ${receipt.gaps.map((g) => `${plain(g.loadBalancer)} at ${g.at}`).join(', ')} (counted in the next reading).` : '';
  const unattributed = receipt.unattributed.length
    ? `\n\nOn no release (a load balancer missed the reading at a container change): ${receipt.unattributed
        .map((u) => `${n(u.requests)} requests and ${n(u.errors)} errors of ${plain(u.server)} on ${plain(u.loadBalancer)}, across ${plain(u.from)} → ${plain(u.to)}`)
        .join('; ')}.`
    : '';
  const notices = receipt.notices.length ? `\n\n${receipt.notices.map((x) => `${plain(x.loadBalancer)} at ${x.at}: ${htmlText(x.why)}`).join('<br>')}` : '';
  const canary = receipt.canary?.verdicts.length ? `\n\nCanary: ${receipt.canary.verdicts.map(htmlText).join('; ')}.` : '';
  return [
    // A blank line first: Markdown after an HTML block (the rollout's table) needs one to start.
    '',
    '### Receipt: what the load balancers counted',
    '',
    ...table,
    '',
    ...hosts,
    gaps + unattributed + notices + canary,
    '',
    chart(receipt),
    '',
    steps(receipt),
    '',
    `<sub>Counters read ${receipt.cost.readings} times in ${receipt.cost.seconds} s in all, alongside the rollout, which waited ${receipt.cost.waitedSeconds} s for them.</sub>`,
    '',
  ].join('\n');
}

/** Requests and errors per second, at most MAX_POINTS points (buckets, each weighted by the time it spans). */
function chart(receipt: Receipt): string {
  const series = receipt.series;
  if (series.length === 0) return '';
  const size = Math.ceil(series.length / MAX_POINTS);
  const buckets: { t: number; requests: number; errors: number }[] = [];
  for (let i = 0; i < series.length; i += size) {
    const part = series.slice(i, i + size);
    const seconds = part.reduce((sum, p) => sum + p.seconds, 0);
    const rate = (key: 'requests' | 'errors') => (seconds > 0 ? Math.round(part.reduce((sum, p) => sum + p[key] * p.seconds, 0) / seconds) : 0);
    buckets.push({ t: part.at(-1)!.t, requests: rate('requests'), errors: rate('errors') });
  }
  return [
    '```mermaid',
    'xychart-beta',
    '  title "Requests (line) and errors (bars) per second, every load balancer"',
    `  x-axis "seconds into the rollout" [${axisLabels(buckets.map((b) => b.t)).map((label) => `"${label}"`).join(', ')}]`,
    '  y-axis "per second"',
    `  bar [${buckets.map((b) => b.errors).join(', ')}]`,
    `  line [${buckets.map((b) => b.requests).join(', ')}]`,
    '```',
  ].join('\n');
}

/**
 * Labels for a band axis, which merges equal ones: whole seconds where that keeps them apart,
 * else tenths, else hundredths (times in the series differ by half a second at least).
 */
export function axisLabels(times: number[]): string[] {
  for (const digits of [0, 1, 2]) {
    const labels = times.map((t) => t.toFixed(digits));
    if (new Set(labels).size === labels.length) return labels;
  }
  return times.map((t, i) => `${t.toFixed(2)} (${i + 1})`);
}

/**
 * Each host's container changes (out of service → in service) at the time of day they happened
 * (the viewer's time zone, as Mermaid draws dates): hours, minutes and seconds, so that it stays
 * right however long the rollout.
 */
function steps(receipt: Receipt): string {
  const lines: string[] = [];
  const start = Date.parse(receipt.window.start);
  const at = (t: number) => start + Math.round(t * 1000);
  const hosts = [...new Set(receipt.steps.map((s) => s.host))];
  for (const host of hosts) {
    lines.push(`  section ${plain(host)}`);
    const own = receipt.steps.filter((s) => s.host === host);
    own.forEach((step, i) => {
      if (step.what !== 'out of service') return;
      const back = own.slice(i + 1).find((s) => s.role === step.role && s.what === 'in service');
      const end = back?.t ?? receipt.window.seconds;
      lines.push(`  ${step.role} to ${plain(step.version)} : ${at(step.t)}, ${Math.max(at(end), at(step.t) + 1)}`);
    });
  }
  if (lines.length === 0) return '';
  return ['```mermaid', 'gantt', '  title Each container change, out of service to back in service (time of day)', '  dateFormat x', '  axisFormat %H:%M:%S', ...lines, '```'].join('\n');
}
