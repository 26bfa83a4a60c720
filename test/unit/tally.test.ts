// The receipt's arithmetic on HAProxy's counters, as the canary and the receipt use it: what a
// stretch of time holds, which answers count as errors, and the latencies the receipt prints.
// Written against mutation testing (npm run mutate): each test kills changes to
// src/receipt/tally.ts that the receipt tests let through.
import { describe, expect, it } from 'vitest';
import { addInto, between, emptyTally, errorRate, errorsOf, latency, subtract, type Tally } from '../../src/receipt/tally.js';
import type { ServerCounters } from '../../src/rollout/ports.js';

const counters = (requests: number, more: Partial<ServerCounters> = {}): ServerCounters => ({
  requests, http5xx: 0, connectionErrors: 0, responseErrors: 0, retries: 0, redispatches: 0, responseMs: 0, totalMs: 0, ...more,
});
const tally = (more: Partial<Tally>): Tally => ({ ...emptyTally(), ...more });

describe('errors', () => {
  it('a release that fails only by cutting responses has errors, at their rate', () => {
    const cut = tally({ requests: 200, responseErrors: 10 });
    expect(errorsOf(cut)).toBe(10);
    expect(errorRate(cut)).toBe(5);
  });

  it('5xx answers, failed connections and cut responses all count, each once', () => {
    const t = tally({ requests: 100, http5xx: 1, connectionErrors: 2, responseErrors: 4, retries: 8, redispatches: 16 });
    expect(errorsOf(t)).toBe(7);
    expect(errorRate(t)).toBe(7);
  });
});

describe('a stretch of time', () => {
  it('since a reading is the later total less the earlier: the hold judges only what came after it began', () => {
    const atStart = tally({ requests: 1000, http5xx: 50, connectionErrors: 3, responseErrors: 2, responseMsWeighted: 4000 });
    const atEnd = tally({ requests: 1100, http5xx: 50, connectionErrors: 4, responseErrors: 2, responseMsWeighted: 4500 });
    expect(subtract(atEnd, atStart)).toEqual(tally({ requests: 100, connectionErrors: 1, responseMsWeighted: 500 }));
  });

  it('sums of several servers add up every counter', () => {
    const sum = addInto(tally({ requests: 10, http5xx: 1 }), tally({ requests: 5, responseErrors: 2, totalMsWeighted: 50 }));
    expect(sum).toEqual(tally({ requests: 15, http5xx: 1, responseErrors: 2, totalMsWeighted: 50 }));
  });
});

describe('latency', () => {
  it('is HAProxy\'s averages weighted by the requests of each interval', () => {
    // 60 requests at 10 ms (response) / 30 ms (total), then 40 at 20 ms / 50 ms.
    const first = between(counters(100, { responseMs: 4, totalMs: 9 }), counters(160, { responseMs: 10, totalMs: 30 }));
    const second = between(counters(160), counters(200, { responseMs: 20, totalMs: 50 }));
    expect(first).toMatchObject({ requests: 60, responseMsWeighted: 600, totalMsWeighted: 1800 });
    expect(latency(addInto(first, second))).toEqual({ responseMs: 14, totalMs: 38 });
  });

  it('is 0, not NaN, over a stretch without requests', () => {
    expect(latency(emptyTally())).toEqual({ responseMs: 0, totalMs: 0 });
  });
});
