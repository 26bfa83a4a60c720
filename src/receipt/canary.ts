// The canary and the error budget: the first host's new master serves alone for `hold` seconds,
// judged by what every load balancer counted for it; afterwards the new release's running total
// is judged each time one of its containers goes in service. A release fails when its error
// rate is over `max-error-rate`, or clearly worse than the old release's over the same time,
// once it has answered at least `min-requests` requests (fewer prove nothing either way).
import type { Logger } from '../rollout/execute.js';
import type { Release } from '../rollout/ports.js';
import type { ReceiptRecorder } from './recorder.js';
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
/** Standard errors by which the new release's rate must exceed the old one's to be "clearly" worse. */
const CLEARLY = 3;

const percent = (rate: number) => `${rate < 10 ? rate.toFixed(1) : Math.round(rate)}%`;

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
 * Whether `fresh` fails clearly more often than `old`: twice the rate at least, and more than
 * CLEARLY standard errors apart (a two-proportion z-test), so that noise on small counts, or an
 * error rate the old release has as well, does not fail a deploy.
 */
export function clearlyWorse(fresh: Tally, old: Tally): boolean {
  const [n1, n2] = [Math.max(fresh.requests, errorsOf(fresh)), Math.max(old.requests, errorsOf(old))];
  if (n1 === 0 || n2 === 0) return false;
  const [p1, p2] = [errorsOf(fresh) / n1, errorsOf(old) / n2];
  if (p1 < 2 * p2) return false;
  const pooled = (errorsOf(fresh) + errorsOf(old)) / (n1 + n2);
  const standardError = Math.sqrt(pooled * (1 - pooled) * (1 / n1 + 1 / n2));
  return standardError === 0 ? p1 > p2 : (p1 - p2) / standardError > CLEARLY;
}

/** The verdict on `version`'s numbers (`fresh`) next to the other releases' over the same time. */
export function judge(version: string, fresh: Tally, old: Tally, policy: CanaryPolicy, where: string): Verdict {
  const numbers = `${version} answered ${describeErrors(fresh)} ${where}`;
  if (Math.max(fresh.requests, errorsOf(fresh)) < policy.minRequests) {
    return { ok: true, text: `${numbers}: too few to judge (canary.min-requests: ${policy.minRequests})` };
  }
  if (errorRate(fresh) > policy.maxErrorRate) return { ok: false, text: `${numbers}; budget ${policy.maxErrorRate}%` };
  if (old.requests >= policy.minRequests && clearlyWorse(fresh, old)) {
    return { ok: false, text: `${numbers}, clearly more than the release it replaces: ${describeErrors(old)} over the same time` };
  }
  return { ok: true, text: `${numbers}: within the budget of ${policy.maxErrorRate}%` };
}

export class Canary {
  /** Every verdict given, in order, for the receipt. */
  readonly verdicts: string[] = [];

  constructor(
    private readonly recorder: ReceiptRecorder,
    private readonly policy: CanaryPolicy,
    private readonly target: Release,
    private readonly log: Logger,
  ) {}

  /**
   * Holds while the canary (host's new master) serves alone; returns why the release fails, or
   * undefined. Returns early, with no verdict, when `signal` aborts.
   */
  async hold(host: string, signal?: AbortSignal): Promise<string | undefined> {
    const { holdSeconds } = this.policy;
    const version = this.target.version;
    const ledger = this.recorder.deploy;
    await this.recorder.readNow();
    const [fresh0, old0] = [ledger.ofRelease(version), ledger.ofOthers(version)];
    this.log.info(`[${host}] canary: ${version} serves here alone for ${holdSeconds} s (canary.max-error-rate: ${this.policy.maxErrorRate}%)`);
    const until = Date.now() + holdSeconds * 1000;
    while (Date.now() < until && !signal?.aborted) {
      await pause(Math.min(PROGRESS_EVERY_MS, until - Date.now()), signal);
      await this.recorder.readNow();
      if (Date.now() < until) this.log.info(`[${host}] canary: ${describeErrors(subtract(ledger.ofRelease(version), fresh0))} so far`);
    }
    if (signal?.aborted) return undefined;
    const verdict = judge(version, subtract(ledger.ofRelease(version), fresh0), subtract(ledger.ofOthers(version), old0), this.policy, `on ${host} during the ${holdSeconds} s hold`);
    return this.record(verdict);
  }

  /** After a container of `release` went in service: why the error budget is spent, or undefined. */
  async check(release: Release): Promise<string | undefined> {
    if (release.digest !== this.target.digest) return undefined;
    const ledger = this.recorder.deploy;
    await this.recorder.readNow();
    const version = this.target.version;
    const verdict = judge(version, ledger.ofRelease(version), ledger.ofOthers(version), this.policy, 'since the rollout began');
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
