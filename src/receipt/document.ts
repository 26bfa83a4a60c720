// The receipt as data: output `receipt` (JSON, documented in docs/receipt-and-canary.md), the job summary's
// tables and chart, and the one line of the deployment record, all from the same numbers. Pure.
import type { HostOutcome, PhaseTimes } from '../rollout/execute.js';
import type { Ledger } from './ledger.js';
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
  /** By release version; "none": a server with no container behind it. */
  releases: Record<string, Totals>;
  hosts: { host: string; seconds: number; phases: PhaseTimes[]; releases: Record<string, Totals> }[];
  canary?: { holdSeconds: number; maxErrorRate: number; minRequests: number; verdicts: string[] };
  /** Load balancers that did not answer a reading: their counts land in the next one. */
  gaps: { at: string; loadBalancer: string; why: string }[];
  /** Requests and errors per second through every load balancer, `t` seconds into the window. */
  series: { t: number; requests: number; errors: number }[];
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
const byVersion = (tallies: Map<string, Tally>) => Object.fromEntries([...tallies].map(([version, t]) => [version, totalsOf(t)]));

export function buildReceipt(input: {
  environment: string;
  version: string;
  outcome: Receipt['outcome'];
  baseline: Ledger;
  deploy: Ledger;
  hosts: HostOutcome[];
  canary?: Receipt['canary'];
  cost: { ms: number; waitedMs: number; readings: number };
}): Receipt {
  const { baseline, deploy } = input;
  const start = deploy.first ?? Date.now();
  const end = deploy.lastAt ?? start;
  const baselineMs = (baseline.lastAt ?? 0) - (baseline.first ?? 0);
  const perSecond = (requests: number, ms: number) => (ms > 0 ? round((requests * 1000) / ms, 1) : 0);
  let previous = start;
  return {
    environment: input.environment,
    version: input.version,
    outcome: input.outcome,
    window: { start: new Date(start).toISOString(), end: new Date(end).toISOString(), seconds: seconds(end - start) },
    baseline: { seconds: seconds(baselineMs), requestsPerSecond: perSecond(baseline.total.requests, baselineMs), totals: totalsOf(baseline.total) },
    totals: totalsOf(deploy.total),
    requestsPerSecond: perSecond(deploy.total.requests, end - start),
    releases: byVersion(deploy.byRelease),
    hosts: input.hosts.map((h) => ({ host: h.host, seconds: round(h.seconds, 2), phases: h.phases, releases: byVersion(deploy.byHost.get(h.host) ?? new Map()) })),
    ...(input.canary ? { canary: input.canary } : {}),
    gaps: deploy.gaps.map((g) => ({ at: new Date(g.at).toISOString(), loadBalancer: g.lb, why: g.why })),
    series: deploy.series.map((p) => {
      const span = p.at - previous;
      previous = p.at;
      return { t: seconds(p.at - start), requests: perSecond(p.requests, span), errors: perSecond(p.errors, span) };
    }),
    steps: deploy.marks.map((m) => ({ t: seconds(m.at - start), host: m.host, role: m.role, what: m.what, version: m.version })),
    cost: { seconds: seconds(input.cost.ms), waitedSeconds: seconds(input.cost.waitedMs), readings: input.cost.readings },
  };
}

/** The deployment record's line: "v1.4.0 on 4 hosts in 6.2 s: 0 errors in 12,345 requests". */
export function receiptLine(receipt: Receipt, hosts: number): string {
  const n = (x: number) => x.toLocaleString('en-US');
  return `${receipt.version} on ${hosts} hosts in ${receipt.window.seconds.toFixed(1)} s: ${n(receipt.totals.errors)} errors in ${n(receipt.totals.requests)} requests`;
}
