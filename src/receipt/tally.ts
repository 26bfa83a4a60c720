// Arithmetic on HAProxy's per-server counters: what happened between two readings, added up by
// release and host. Pure.
import type { ServerCounters } from '../rollout/ports.js';

/** The counting part of HAProxy's counters. */
export type Counts = Omit<ServerCounters, 'responseMs' | 'totalMs'>;

/** Requests and errors over a stretch of time; latency as sums weighted by requests. */
export interface Tally extends Counts {
  /** Σ (HAProxy's average response time × requests in the interval): divide by requests. */
  responseMsWeighted: number;
  totalMsWeighted: number;
}

const ADDITIVE = ['requests', 'http5xx', 'connectionErrors', 'responseErrors', 'retries', 'redispatches'] as const;

export function emptyTally(): Tally {
  return { requests: 0, http5xx: 0, connectionErrors: 0, responseErrors: 0, retries: 0, redispatches: 0, responseMsWeighted: 0, totalMsWeighted: 0 };
}

/**
 * What one server did between two readings of one load balancer, in the same HAProxy process
 * (the ledger tells a new process by its pid). A counter lower than before all the same means
 * the server was counted anew (re-added): the later reading is then all there is since.
 */
export function between(before: ServerCounters, after: ServerCounters): Tally {
  if (ADDITIVE.some((key) => after[key] < before[key])) return wholeTally(after);
  const out = emptyTally();
  for (const key of ADDITIVE) out[key] = after[key] - before[key];
  return withLatency(out, after);
}

/** Counters read from a process that started since the last reading: all of them are new. */
export function wholeTally(counters: ServerCounters): Tally {
  const out = emptyTally();
  for (const key of ADDITIVE) out[key] = counters[key];
  return withLatency(out, counters);
}

function withLatency(out: Tally, after: ServerCounters): Tally {
  out.responseMsWeighted = after.responseMs * out.requests;
  out.totalMsWeighted = after.totalMs * out.requests;
  return out;
}

export function addInto(sum: Tally, more: Tally): Tally {
  for (const key of Object.keys(sum) as (keyof Tally)[]) sum[key] += more[key];
  return sum;
}

export function subtract(later: Tally, earlier: Tally): Tally {
  const out = emptyTally();
  for (const key of Object.keys(out) as (keyof Tally)[]) out[key] = later[key] - earlier[key];
  return out;
}

/** 5xx answers, failed connections and cut responses: what a client may have seen fail. */
export function errorsOf(t: Tally): number {
  return t.http5xx + t.connectionErrors + t.responseErrors;
}

/**
 * Errors per request, in percent. A failed connection may not count as a request, so errors can
 * outnumber requests: the rate is then 100 %.
 */
export function errorRate(t: Tally): number {
  const errors = errorsOf(t);
  return errors === 0 ? 0 : (100 * errors) / Math.max(t.requests, errors);
}

/** HAProxy's response and total times, averaged over the requests of the tally (ms). */
export function latency(t: Tally): { responseMs: number; totalMs: number } {
  return t.requests === 0 ? { responseMs: 0, totalMs: 0 } : { responseMs: t.responseMsWeighted / t.requests, totalMs: t.totalMsWeighted / t.requests };
}
