// The receipt as data: output `receipt` (JSON, documented in docs/receipt-and-canary.md), the job summary's
// tables and chart, and the one line of the deployment record, all from the same numbers. Pure.
import type { HostOutcome, PhaseTimes } from '../rollout/execute.js';
import type { Ledger, SeriesPoint } from './ledger.js';
import { errorRate, errorsOf, latency, type Counts, type Tally } from './tally.js';

export interface Totals extends Counts {
  /** 5xx answers, failed connections and cut responses */
  errors: number;
  /** errors per request, percent */
  errorRate: number;
  /** HAProxy's rtime and ttime, averaged over the requests (ms) */
  responseMs: number;
  totalMs: number;
}

export interface Receipt {
  environment: string;
  version: string;
  outcome: 'success' | 'failure' | 'cancelled';
  /** The rollout, from its first reading of the counters to its last. */
  window: { start: string; end: string; seconds: number };
  /** Before the first change (pre-flight), every server on the release it ran. */
  baseline: { seconds: number; requestsPerSecond: number; totals: Totals };
  totals: Totals;
  requestsPerSecond: number;
  /**
   * By release version ("v1.4.0+0123456789ab", with the digest's start, when two builds share
   * a version); "none": a server with no container behind it.
   */
  releases: Record<string, Totals>;
  hosts: { host: string; seconds: number; phases: PhaseTimes[]; releases: Record<string, Totals> }[];
  canary?: { holdSeconds: number; maxErrorRate: number; minRequests: number; verdicts: string[] };
  /** The release command, run before the rollout's window (with a release-command section, not on a rollback unless on-rollback). */
  releaseCommand?: { host: string; command: string[]; outcome: string; exitCode?: number; seconds: number };
  /** Load balancers that did not answer a reading: their counts land in the next one. */
  gaps: { at: string; loadBalancer: string; why: string }[];
  /**
   * Counts a load balancer reported across a container change whose reading it missed: in the
   * totals, on no release (nor judged by the canary).
   */
  unattributed: { at: string; loadBalancer: string; server: string; from: string; to: string; requests: number; errors: number }[];
  /** HAProxy reloads (a new process: its counters start at 0) and servers a load balancer stopped listing. */
  notices: { at: string; loadBalancer: string; why: string }[];
  /**
   * Requests and errors per second through every load balancer over the `seconds` up to `t`
   * seconds into the window (readings closer than half a second are taken together).
   */
  series: { t: number; seconds: number; requests: number; errors: number }[];
  steps: { t: number; host: string; role: string; what: string; version: string }[];
  /** The receipt's own cost: time spent reading counters, and what of it the rollout waited for. */
  cost: { seconds: number; waitedSeconds: number; readings: number };
}

export function totalsOf(t: Tally): Totals {
  const { responseMs, totalMs } = latency(t);
  return {
    requests: t.requests,
    errors: errorsOf(t),
    errorRate: round(errorRate(t), 3),
    http5xx: t.http5xx,
    connectionErrors: t.connectionErrors,
    responseErrors: t.responseErrors,
    retries: t.retries,
    redispatches: t.redispatches,
    responseMs: round(responseMs, 1),
    totalMs: round(totalMs, 1),
  };
}

const round = (n: number, digits: number) => Math.round(n * 10 ** digits) / 10 ** digits;
const seconds = (ms: number) => round(ms / 1000, 2);
/** Readings closer together than this make one point of the series: a rate over 5 ms means nothing. */
const SHORTEST_POINT_MS = 500;

export function buildReceipt(input: {
  environment: string;
  version: string;
  outcome: Receipt['outcome'];
  baseline: Ledger;
  deploy: Ledger;
  hosts: HostOutcome[];
  canary?: Receipt['canary'];
  releaseCommand?: Receipt['releaseCommand'];
  cost: { ms: number; waitedMs: number; readings: number };
}): Receipt {
  const { baseline, deploy } = input;
  const labels = deploy.labels();
  const byLabel = (tallies: Map<string, Tally>) => Object.fromEntries([...tallies].map(([digest, t]) => [labels.get(digest) ?? digest, totalsOf(t)]));
  const iso = (at: number) => new Date(at).toISOString();
  const start = deploy.first ?? Date.now();
  const end = deploy.lastAt ?? start;
  const baselineMs = (baseline.lastAt ?? 0) - (baseline.first ?? 0);
  const perSecond = (requests: number, ms: number) => (ms > 0 ? round((requests * 1000) / ms, 1) : 0);
  return {
    environment: input.environment,
    version: input.version,
    outcome: input.outcome,
    window: { start: new Date(start).toISOString(), end: new Date(end).toISOString(), seconds: seconds(end - start) },
    baseline: { seconds: seconds(baselineMs), requestsPerSecond: perSecond(baseline.total.requests, baselineMs), totals: totalsOf(baseline.total) },
    totals: totalsOf(deploy.total),
    requestsPerSecond: perSecond(deploy.total.requests, end - start),
    releases: byLabel(deploy.byRelease),
    hosts: input.hosts.map((h) => ({ host: h.host, seconds: round(h.seconds, 2), phases: h.phases, releases: byLabel(deploy.byHost.get(h.host) ?? new Map()) })),
    ...(input.canary ? { canary: input.canary } : {}),
    ...(input.releaseCommand ? { releaseCommand: input.releaseCommand } : {}),
    gaps: deploy.gaps.map((g) => ({ at: iso(g.at), loadBalancer: g.lb, why: g.why })),
    unattributed: deploy.unattributed.map((u) => ({ at: iso(u.at), loadBalancer: u.lb, server: u.server, from: u.from, to: u.to, requests: u.requests, errors: u.errors })),
    notices: deploy.notices.map((n) => ({ at: iso(n.at), loadBalancer: n.lb, why: n.why })),
    series: pointsOf(deploy.series, start).map((p) => ({ t: seconds(p.at - start), seconds: seconds(p.ms), requests: perSecond(p.requests, p.ms), errors: perSecond(p.errors, p.ms) })),
    steps: deploy.marks.map((m) => ({ t: seconds(m.at - start), host: m.host, role: m.role, what: m.what, version: m.version })),
    cost: { seconds: seconds(input.cost.ms), waitedSeconds: seconds(input.cost.waitedMs), readings: input.cost.readings },
  };
}

/** The series' readings, those closer than SHORTEST_POINT_MS to the one before taken with the next. */
function pointsOf(series: SeriesPoint[], start: number): (SeriesPoint & { ms: number })[] {
  const out: (SeriesPoint & { ms: number })[] = [];
  let from = start;
  let pending = { requests: 0, errors: 0 };
  for (const point of series) {
    pending = { requests: pending.requests + point.requests, errors: pending.errors + point.errors };
    if (point.at - from < SHORTEST_POINT_MS && point !== series.at(-1)) continue;
    out.push({ at: point.at, ...pending, ms: point.at - from });
    from = point.at;
    pending = { requests: 0, errors: 0 };
  }
  // A short last point joins the one before it.
  const last = out.at(-1);
  const before = out.at(-2);
  if (last && before && last.ms < SHORTEST_POINT_MS) {
    out.splice(-2, 2, { at: last.at, requests: before.requests + last.requests, errors: before.errors + last.errors, ms: before.ms + last.ms });
  }
  return out;
}

/** The deployment record's line: "v1.4.0 on 4 hosts in 6.2 s: 0 errors in 12,345 requests". */
export function receiptLine(receipt: Receipt, hosts: number): string {
  const n = (x: number) => x.toLocaleString('en-US');
  return `${receipt.version} on ${hosts} hosts in ${receipt.window.seconds.toFixed(1)} s: ${n(receipt.totals.errors)} errors in ${n(receipt.totals.requests)} requests`;
}
