// The canary and the error budget: the first host's new master serves alone for `hold` seconds,
// judged by what every load balancer counted for it; afterwards the new release's running total
// is judged each time one of its containers goes in service. A release fails when the evidence
// says, at 99 % confidence, that its error rate is over `max-error-rate`, and (when the old
// release answered enough over the same time to compare), at 99.9 %, that it errs more often than
// the old release: errors the old release makes as often are not the new one's doing. Exact binomial
// tests (stats.ts), not a normal approximation: canaries live on small counts. Below
// `min-requests` nothing is judged either way.
import type { Logger } from '../rollout/execute.js';
import type { Release } from '../rollout/ports.js';
import { EVERY_MS, type ReceiptRecorder } from './recorder.js';
import { binomialTail, lowerBound } from './stats.js';
import { errorRate, errorsOf, subtract, type Tally } from './tally.js';

export interface CanaryPolicy {
  holdSeconds: number;
  /** Percent of the new release's requests that may fail. */
  maxErrorRate: number;
  minRequests: number;
}

export interface Verdict {
  ok: boolean;
  /** One line: the numbers, and why they pass or fail. */
  text: string;
}

const PROGRESS_EVERY_MS = 5_000;
/** How sure the verdict must be that a release is over its budget before it fails it. */
export const CONFIDENCE = 0.99;
/**
 * How sure it must be that the release errs more than the old one. Stricter: with an old
 * release far over the budget, this test alone decides, and a release no worse than the old one
 * must pass at least 99 % of the time (measured: verdict-rates.ts).
 */
export const COMPARED_CONFIDENCE = 0.999;

const percent = (rate: number) => `${rate < 10 ? rate.toFixed(1) : Math.round(rate)}%`;
/** Requests counted for a rate: a failed connection may not count as a request (tally.ts). */
const trials = (t: Tally) => Math.max(t.requests, errorsOf(t));

/** "212 of 430 requests with 5xx (49%)", naming each kind of error there was; "430 requests without an error". */
export function describeErrors(t: Tally): string {
  const kinds = [
    [t.http5xx, '5xx'],
    [t.connectionErrors, 'failed connections'],
    [t.responseErrors, 'cut responses'],
  ].filter(([n]) => (n as number) > 0);
  const errors = errorsOf(t);
  if (errors === 0) return `${t.requests} requests without an error`;
  const what = kinds.length === 1 ? `with ${kinds[0]![1]}` : kinds.length === 0 ? 'with errors' : `with errors (${kinds.map(([n, k]) => `${n} ${k}`).join(', ')})`;
  return `${errors} of ${t.requests} requests ${what} (${percent(errorRate(t))})`;
}

/**
 * Whether `fresh`'s errors prove, at CONFIDENCE, a rate over `budget` percent: the exact
 * binomial test, P(at least this many errors | rate = budget) < 1 − CONFIDENCE. Equivalently,
 * Clopper–Pearson's one-sided lower bound on its rate is over the budget.
 */
export function overBudget(fresh: Tally, budget: number): boolean {
  return binomialTail(errorsOf(fresh), trials(fresh), budget / 100) < 1 - CONFIDENCE;
}

/**
 * Whether `fresh` errs more often than `old` over the same time, at COMPARED_CONFIDENCE: given the
 * errors of both together, at equal rates each error falls on `fresh` with the chance of its
 * share of the requests; more of them on `fresh` than that chance explains (exact conditional
 * binomial test) means a higher rate.
 */
export function worseThan(fresh: Tally, old: Tally): boolean {
  const [n1, n2] = [trials(fresh), trials(old)];
  if (n1 === 0 || n2 === 0) return false;
  return binomialTail(errorsOf(fresh), errorsOf(fresh) + errorsOf(old), n1 / (n1 + n2)) < 1 - COMPARED_CONFIDENCE;
}

/** The verdict on `version`'s numbers (`fresh`) next to the other releases' over the same time. */
export function judge(version: string, fresh: Tally, old: Tally, policy: CanaryPolicy, where: string): Verdict {
  const numbers = `${version} answered ${describeErrors(fresh)} ${where}`;
  if (trials(fresh) < policy.minRequests) {
    return { ok: true, text: `${numbers}: too few to judge (canary.min-requests: ${policy.minRequests})` };
  }
  const budget = `the budget of ${policy.maxErrorRate}%`;
  if (errorRate(fresh) <= policy.maxErrorRate) return { ok: true, text: `${numbers}: within ${budget}` };
  if (!overBudget(fresh, policy.maxErrorRate)) {
    return { ok: true, text: `${numbers}: over ${budget} here, but no more than chance gives a release at the budget (not ${CONFIDENCE * 100}% sure it is over)` };
  }
  const bound = `${CONFIDENCE * 100}% sure its rate is over ${percent(100 * lowerBound(errorsOf(fresh), trials(fresh), CONFIDENCE))}`;
  const comparable = trials(old) >= policy.minRequests;
  if (comparable && !worseThan(fresh, old)) {
    return { ok: true, text: `${numbers}: over ${budget}, but no worse than the release it replaces: ${describeErrors(old)} over the same time` };
  }
  const against = comparable ? `, more than the release it replaces: ${describeErrors(old)} over the same time` : '';
  return { ok: false, text: `${numbers}; budget ${policy.maxErrorRate}% (${bound})${against}` };
}

/** How far past `hold` the verdict's last reading may land; a load balancer later than that is a gap. */
const LAST_READING_GRACE_MS = 400;

export class Canary {
  /** Every verdict given, in order, for the receipt. */
  readonly verdicts: string[] = [];

  constructor(
    private readonly recorder: ReceiptRecorder,
    private readonly policy: CanaryPolicy,
    private readonly target: Release,
    private readonly log: Logger,
    private readonly everyMs = EVERY_MS,
  ) {}

  /**
   * Holds while the canary (host's new master) serves alone; returns why the release fails, or
   * undefined. Lasts `hold` (and the last reading, at most LAST_READING_GRACE_MS more) whatever
   * the load balancers do; returns at once, with no verdict, when `signal` aborts.
   */
  async hold(host: string, signal?: AbortSignal): Promise<string | undefined> {
    const { holdSeconds } = this.policy;
    const { version, digest } = this.target;
    const ledger = this.recorder.deploy;
    const until = Date.now() + holdSeconds * 1000;
    // From the last reading: the canary's requests since then count in the hold, as they should.
    const [fresh0, old0] = [ledger.ofRelease(digest), ledger.ofOthers(digest)];
    this.log.info(`[${host}] canary: ${version} serves here alone for ${holdSeconds} s (canary.max-error-rate: ${this.policy.maxErrorRate}%)`);
    while (Date.now() < until && !signal?.aborted) {
      await pause(Math.min(PROGRESS_EVERY_MS, until - Date.now()), signal);
      if (Date.now() < until && !signal?.aborted) this.log.info(`[${host}] canary: ${describeErrors(subtract(ledger.ofRelease(digest), fresh0))} so far`);
    }
    if (!signal?.aborted) await this.recorder.readNow(signal, until + LAST_READING_GRACE_MS);
    if (signal?.aborted) return undefined;
    const verdict = judge(version, subtract(ledger.ofRelease(digest), fresh0), subtract(ledger.ofOthers(digest), old0), this.policy, `on ${host} during the ${holdSeconds} s hold`);
    return this.record(verdict);
  }

  /**
   * After a container of `release` went in service: why the error budget is spent, or undefined.
   * A release that has erred, or answered too few requests to judge, is judged on a reading
   * begun now (landing within two periods, else on the last). One without an error in enough
   * requests goes on at once, judged on the last reading (at most a period old): the reading
   * under way lands alongside the next step, and the next check sees it.
   */
  async check(release: Release, signal?: AbortSignal): Promise<string | undefined> {
    if (release.digest !== this.target.digest) return undefined;
    const ledger = this.recorder.deploy;
    const sofar = ledger.ofRelease(release.digest);
    if (errorsOf(sofar) > 0 || trials(sofar) < this.policy.minRequests) await this.recorder.readNow(signal, Date.now() + 2 * this.everyMs);
    if (signal?.aborted) return undefined;
    const verdict = judge(this.target.version, ledger.ofRelease(release.digest), ledger.ofOthers(release.digest), this.policy, 'since the rollout began');
    if (verdict.ok) return undefined;
    return this.record(verdict);
  }

  private record(verdict: Verdict): string | undefined {
    this.verdicts.push(verdict.text);
    if (verdict.ok) this.log.info(`canary: ${verdict.text}`);
    else this.log.warning(`canary: ${verdict.text}`);
    return verdict.ok ? undefined : verdict.text;
  }
}

function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((done) => {
    const timer = setTimeout(finish, ms);
    function finish() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', finish);
      done();
    }
    signal?.addEventListener('abort', finish, { once: true });
  });
}
