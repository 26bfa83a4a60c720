// How often the canary's verdict is wrong, measured: simulated holds (seeded, so the figures
// repeat) of a release with a known error rate next to an old release with its own, each judged
// by judge() exactly as a deploy would. Used by the unit tests (the rates the docs promise) and
// by `npm run bench` (the grid the docs print). Pure.
import { judge, type CanaryPolicy } from './canary.js';
import { emptyTally, type Tally } from './tally.js';

export interface HoldScenario {
  /** max-error-rate, percent */
  budget: number;
  /** Requests the canary answers during the hold. */
  requests: number;
  /** The canary's true error rate, percent. */
  freshRate: number;
  /** Requests the other releases answer over the same time. */
  oldRequests: number;
  oldRate: number;
  minRequests?: number;
}

/** mulberry32: a small seeded generator, good enough for counting. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A draw of Binomial(n, p): the gaps between errors are geometric, so the cost is the errors'. */
export function binomial(n: number, p: number, random: () => number): number {
  if (p <= 0) return 0;
  if (p >= 1) return n;
  if (p > 0.5) return n - binomial(n, 1 - p, random);
  const logQ = Math.log(1 - p);
  let errors = 0;
  for (let at = Math.floor(Math.log(1 - random()) / logQ); at < n; at += Math.floor(Math.log(1 - random()) / logQ) + 1) errors++;
  return errors;
}

/** The share of `holds` simulated holds of `scenario` that the verdict fails. */
export function failRate(scenario: HoldScenario, holds: number, seed: number): number {
  const random = seeded(seed);
  const policy: CanaryPolicy = { holdSeconds: 30, maxErrorRate: scenario.budget, minRequests: scenario.minRequests ?? 20 };
  let failed = 0;
  for (let i = 0; i < holds; i++) {
    const fresh = { ...emptyTally(), requests: scenario.requests, http5xx: binomial(scenario.requests, scenario.freshRate / 100, random) };
    const old = { ...emptyTally(), requests: scenario.oldRequests, http5xx: binomial(scenario.oldRequests, scenario.oldRate / 100, random) };
    if (!judge('v2', fresh, old, policy, 'in the simulation').ok) failed++;
  }
  return failed / holds;
}

/** The three rates the docs promise, for one budget and one traffic (old side: 3× the canary's). */
export function verdictRates(budget: number, requests: number, holds: number, seed = 20): { halfBudgetPasses: number; fiveTimesFails: number; noWorsePassesAtWorst: number } {
  const base = { budget, requests, oldRequests: 3 * requests };
  // "Whatever the old rate": from none to far over the budget; the worst case is reported.
  const noWorse = [0, budget / 2, budget, 2 * budget, 10 * budget].filter((rate) => rate <= 100).map((rate, i) => 1 - failRate({ ...base, freshRate: rate, oldRate: rate }, holds, seed + 10 + i));
  return {
    halfBudgetPasses: 1 - failRate({ ...base, freshRate: budget / 2, oldRate: 0 }, holds, seed),
    fiveTimesFails: failRate({ ...base, freshRate: Math.min(100, 5 * budget), oldRate: budget / 10 }, holds, seed + 1),
    noWorsePassesAtWorst: Math.min(...noWorse),
  };
}

/** Canary errors and requests, the old release's over the same time, the budget: the docs' examples. */
export const EXAMPLES: [fresh: [number, number], old: [number, number], budget: number][] = [
  [[1, 20], [0, 1000], 5],
  [[4, 20], [0, 1000], 5],
  [[5, 20], [0, 1000], 5],
  [[17, 4135], [0, 12_000], 5],
  [[1, 1000], [0, 10_000], 1],
  [[2, 100], [0, 3000], 1],
  [[11, 500], [0, 1500], 1],
  [[12, 500], [0, 1500], 1],
  [[40, 1000], [130, 3000], 1],
  [[212, 430], [0, 1290], 1],
  [[10, 10], [0, 1000], 1],
];

/** The examples as the lines of a Markdown table: the numbers, and the verdict as judge() words it. */
export function exampleVerdicts(): string[] {
  const n = (x: number) => x.toLocaleString('en-US');
  const rows = EXAMPLES.map(([[errors, requests], [oldErrors, oldRequests], budget]) => {
    const tally = (e: number, r: number): Tally => ({ ...emptyTally(), requests: r, http5xx: e });
    const verdict = judge('v2', tally(errors, requests), tally(oldErrors, oldRequests), { holdSeconds: 30, maxErrorRate: budget, minRequests: 20 }, 'in the hold');
    const why = verdict.text.replace(/^.* in the hold[:;] /, '');
    return `| ${n(errors)} of ${n(requests)} | ${n(oldErrors)} of ${n(oldRequests)} | ${budget}% | ${verdict.ok ? 'passes' : '**fails**'}: ${why} |`;
  });
  return ['| Canary: errors | Old release, same time | `max-error-rate` | Verdict |', '| --- | --- | --- | --- |', ...rows];
}
