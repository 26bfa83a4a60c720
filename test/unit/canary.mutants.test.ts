// The canary's verdict at its edges, as a user reads it in the log: what max-error-rate: 0 and
// min-requests mean exactly, where "over the budget" and "worse than the old release" begin, and
// how the errors are named. Written against mutation testing (npm run mutate): each test kills
// changes to src/receipt/canary.ts that canary.test.ts and receipt.test.ts let through. The
// thresholds are checked against the binomial tail by hand in the comments.
//
// The hold and the check (what the log says and when, a cancelled hold, another release's
// containers) are tested in canary.test.ts, "the hold and the check, as the log shows them".
//
// Equivalent mutants of canary.ts (12 of 182 as npm run mutate counts them), left in the report
// on purpose:
// - worseThan's guard `n1 === 0 || n2 === 0` (any change to it, 5 mutants). Without requests on
//   the new side there are no errors there and the tail of 0 errors is 1; without them on the old
//   side each error falls on the new one with chance 1 and the tail is 1 too: "not worse" either way.
// - describeErrors' `kinds.length === 0 ? 'with errors'` (the test and its text, 2 mutants): with
//   errors > 0 one kind at least is counted, so that branch is never taken.
// - overBudget's and worseThan's `< 1 - CONFIDENCE` → `<=` (2 mutants): the tail would have to
//   equal 1 − 0.99 (0.010000000000000009 in floating point) or 1 − 0.999 exactly, which no count
//   of errors and requests at a budget a user writes gives.
// - the hold's loop `Date.now() < until` → `<=`: at exactly `until` it waits once more, for 0 ms;
//   the hold ends at the same moment and logs nothing more (the progress line checks on its own).
// - pause's `{ once: true }` → `{}` or `{ once: false }` (2 mutants): finish removes its listener
//   itself, on a cancel as on time.
import { describe, expect, it } from 'vitest';
import { describeErrors, judge, overBudget, worseThan } from '../../src/receipt/canary.js';
import { emptyTally, type Tally } from '../../src/receipt/tally.js';

const t = (requests: number, http5xx = 0, more: Partial<Tally> = {}): Tally => ({ ...emptyTally(), requests, http5xx, ...more });
const policy = (maxErrorRate: number, minRequests = 20) => ({ holdSeconds: 30, maxErrorRate, minRequests });

describe('max-error-rate: 0', () => {
  it('passes a release without an error, within the budget', () => {
    expect(judge('v2.0.0', t(100), t(0), policy(0), 'on h1')).toEqual({ ok: true, text: 'v2.0.0 answered 100 requests without an error on h1: within the budget of 0%' });
  });

  it('fails a release with a single error among enough requests', () => {
    expect(judge('v2.0.0', t(100, 1), t(0), policy(0), 'on h1')).toEqual({
      ok: false,
      text: 'v2.0.0 answered 1 of 100 requests with 5xx (1.0%) on h1; budget 0% (99% sure its rate is over 0.0%)',
    });
  });
});

describe('min-requests', () => {
  it('judges a release that answered exactly min-requests', () => {
    expect(judge('v2.0.0', t(20, 20), t(0), policy(5), 'on h1')).toEqual({ ok: false, text: 'v2.0.0 answered 20 of 20 requests with 5xx (100%) on h1; budget 5% (99% sure its rate is over 79%)' });
  });

  it('leaves one fewer unjudged', () => {
    expect(judge('v2.0.0', t(19, 19), t(0), policy(5), 'on h1')).toEqual({ ok: true, text: 'v2.0.0 answered 19 of 19 requests with 5xx (100%) on h1: too few to judge (canary.min-requests: 20)' });
  });

  it('compares with the old release once it answered exactly min-requests, not before', () => {
    // 20 of 100 is surely over 5 %; the old release's 20 (or 19) requests without an error do
    // not prove the new one worse (P = (100/120)^20 ≈ 2.6 %, over 0.1 %).
    expect(judge('v2.0.0', t(100, 20), t(20), policy(5), 'on h1')).toEqual({
      ok: true,
      text: 'v2.0.0 answered 20 of 100 requests with 5xx (20%) on h1: over the budget of 5%, but no worse than the release it replaces: 20 requests without an error over the same time',
    });
    expect(judge('v2.0.0', t(100, 20), t(19), policy(5), 'on h1')).toEqual({ ok: false, text: 'v2.0.0 answered 20 of 100 requests with 5xx (20%) on h1; budget 5% (99% sure its rate is over 12%)' });
  });
});

describe('the budget', () => {
  it('passes a rate exactly at the budget as within it', () => {
    expect(judge('v2.0.0', t(100, 5), t(0), policy(5), 'on h1')).toEqual({ ok: true, text: 'v2.0.0 answered 5 of 100 requests with 5xx (5.0%) on h1: within the budget of 5%' });
  });

  it('passes a rate over the budget that chance explains, saying so', () => {
    expect(judge('v2.0.0', t(100, 6), t(0), policy(5), 'on h1')).toEqual({
      ok: true,
      text: 'v2.0.0 answered 6 of 100 requests with 5xx (6.0%) on h1: over the budget of 5% here, but no more than chance gives a release at the budget (not 99% sure it is over)',
    });
  });

  it('is surely exceeded from 5 errors in 100 at 1 % (P(X ≥ 5) ≈ 0.34 %), not from 4 (P(X ≥ 4) ≈ 1.8 %)', () => {
    expect(overBudget(t(100, 4), 1)).toBe(false);
    expect(overBudget(t(100, 5), 1)).toBe(true);
  });

  it('counts failed connections beyond the requests as trials: 3 of them alone do not prove a 50 % budget exceeded (P = 1/8)', () => {
    expect(overBudget(t(0, 0, { connectionErrors: 3 }), 50)).toBe(false);
    expect(overBudget(t(0, 0, { connectionErrors: 10 }), 50)).toBe(true);
  });
});

describe('worse than the old release', () => {
  // 20 requests against the old release's 200: at equal rates each error is the new one's with
  // chance 1/11; two of two has P = 1/121 ≈ 0.8 %, three of three 1/1331 ≈ 0.075 %.
  it('from 3 errors of its own against none of 200 for the old release, not from 2', () => {
    expect(worseThan(t(20, 2), t(200))).toBe(false);
    expect(worseThan(t(20, 3), t(200))).toBe(true);
  });

  it('not when the old release errs as often', () => {
    expect(worseThan(t(100, 20), t(100, 15))).toBe(false);
  });

  it('passes a release over the budget that errs no more than the old one, naming both', () => {
    expect(judge('v2.0.0', t(100, 20), t(100, 15), policy(5), 'on h1')).toEqual({
      ok: true,
      text: 'v2.0.0 answered 20 of 100 requests with 5xx (20%) on h1: over the budget of 5%, but no worse than the release it replaces: 15 of 100 requests with 5xx (15%) over the same time',
    });
  });

  it('fails a release over the budget and worse than the old one, naming both', () => {
    expect(judge('v2.0.0', t(100, 30), t(100, 1), policy(5), 'since the rollout began')).toEqual({
      ok: false,
      text: 'v2.0.0 answered 30 of 100 requests with 5xx (30%) since the rollout began; budget 5% (99% sure its rate is over 20%), more than the release it replaces: 1 of 100 requests with 5xx (1.0%) over the same time',
    });
  });
});

describe('the errors named', () => {
  it.each([
    [t(100, 1, { connectionErrors: 2, responseErrors: 3 }), '6 of 100 requests with errors (1 5xx, 2 failed connections, 3 cut responses) (6.0%)'],
    [t(100, 0, { responseErrors: 2 }), '2 of 100 requests with cut responses (2.0%)'],
    [t(100, 10), '10 of 100 requests with 5xx (10%)'],
    [t(1000, 5), '5 of 1000 requests with 5xx (0.5%)'],
    [t(0, 0, { connectionErrors: 3 }), '3 of 0 requests with failed connections (100%)'],
    [t(430), '430 requests without an error'],
  ])('%o: %s', (tally, text) => {
    expect(describeErrors(tally)).toBe(text);
  });
});
