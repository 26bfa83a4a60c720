// The canary's arithmetic (src/receipt/stats.ts) against a reference any reader can check: the
// binomial tail summed term by term, and the closed forms of the lower bound where they exist.
// A wrong tail is a wrong verdict: a good release failed, or a bad one let through. Written
// against mutation testing (npm run mutate).
//
// Equivalent mutants (no input tells them apart), left in the report on purpose; the guards
// that only repeated what the next line does (binomialTail's p ≤ 0 and p ≥ 1, lowerBound's x ≤ 0,
// Lentz's zero-denominator checks, logGamma's reflection below ½, which no count reaches) are gone
// from the source, with why:
// - incompleteBeta's `x <= 0` → `x < 0` and `x >= 1` → `x > 1`: at exactly 0 and 1 the formula
//   that follows gives the same 0 and 1 (a factor x^a or (1 − x)^b of 0); `x >= 1` → false: the
//   mirror image, 1 − I_0(b, a), is 1 too.
// - the continued fraction's convergence test (3 mutants: also after the half step, only after
//   it, `<=` 1e-14): stopping a half step sooner or later moves the value by less than 1e-14; for
//   a binomial tail (a whole b) the fraction ends exactly at m = b, where a numerator is 0.
// - `m <= 10_000` → `m < 10_000` and the final `return front * f` after the loop: the fraction
//   converges within a few dozen terms for every count a canary meets.
// - lowerBound's `i < 60` → `i <= 60` and `< alpha` → `<= alpha`: one more halving, or the side a
//   rate exactly at alpha goes, moves the bound by less than 2^-60.
import { describe, expect, it } from 'vitest';
import { binomialTail, incompleteBeta, lowerBound } from '../../src/receipt/stats.js';

/** P(X ≥ x) for X ~ Binomial(n, p), summed term by term in log space. */
function referenceTail(x: number, n: number, p: number): number {
  const logFactorial = [0];
  for (let k = 1; k <= n; k++) logFactorial.push(logFactorial[k - 1]! + Math.log(k));
  let sum = 0;
  for (let k = Math.max(x, 0); k <= n; k++) {
    sum += Math.exp(logFactorial[n]! - logFactorial[k]! - logFactorial[n - k]! + k * Math.log(p) + (n - k) * Math.log(1 - p));
  }
  return sum;
}

describe('binomialTail: how surprising x errors in n requests are at a rate p', () => {
  it.each([
    // x, n, p: small counts, where canaries live; both sides of the mean; large counts.
    [1, 20, 0.05],
    [3, 20, 0.05],
    [5, 100, 0.01],
    [2, 10, 0.5],
    [9, 10, 0.5],
    [60, 100, 0.5],
    [30, 500, 0.05],
    [12, 2000, 0.002],
    [10, 10, 0.9],
    [1, 1, 0.3],
    [400, 5000, 0.07],
  ])('%d of %d at %d matches the sum of its terms', (x, n, p) => {
    const expected = referenceTail(x, n, p);
    expect(Math.abs(binomialTail(x, n, p) - expected)).toBeLessThan(1e-9 + 1e-9 * expected);
  });

  it('is certain for no errors, impossible for more errors than requests, and exact at the ends of p', () => {
    expect(binomialTail(0, 10, 0.3)).toBe(1);
    expect(binomialTail(0, 10, 0.01)).toBe(1);
    expect(binomialTail(11, 10, 0.5)).toBe(0);
    // At a high rate too: worseThan asks at the canary's share of the requests, up to nearly 1.
    expect(binomialTail(11, 10, 0.95)).toBe(0);
    expect(binomialTail(3, 10, 0)).toBe(0);
    expect(binomialTail(3, 10, 1)).toBe(1);
  });
});

describe('incompleteBeta at the middle: even odds', () => {
  // Where the continued fraction and its mirror image meet: 5 or more of 9 at even odds is as
  // likely as 4 or fewer.
  it('5 or more errors in 9 requests at a rate of ½ is exactly as likely as not', () => {
    expect(binomialTail(5, 9, 0.5)).toBeCloseTo(0.5, 14);
  });
});

describe('incompleteBeta against its closed forms, fractional parameters included (ln Γ below ½, without the reflection formula)', () => {
  it.each([0.1, 0.35, 0.5, 0.8])('I_x(a, 1) = x^a and I_x(1, b) = 1 − (1 − x)^b at x = %s', (x) => {
    for (const a of [0.3, 0.5, 2.5]) expect(incompleteBeta(x, a, 1)).toBeCloseTo(x ** a, 12);
    for (const b of [0.3, 0.5, 2.5]) expect(incompleteBeta(x, 1, b)).toBeCloseTo(1 - (1 - x) ** b, 12);
  });

  it.each([0.1, 0.5, 0.9])('I_x(½, ½) is the arcsine law, (2/π)·asin(√x), at x = %s', (x) => {
    expect(incompleteBeta(x, 0.5, 0.5)).toBeCloseTo((2 / Math.PI) * Math.asin(Math.sqrt(x)), 12);
  });
});

describe('incompleteBeta at the ends', () => {
  it('is 0 at 0 and 1 at 1', () => {
    expect(incompleteBeta(0, 3, 4)).toBe(0);
    expect(incompleteBeta(-0.5, 3, 4)).toBe(0);
    expect(incompleteBeta(1, 3, 4)).toBe(1);
    expect(incompleteBeta(1.5, 3, 4)).toBe(1);
  });
});

describe('lowerBound: the lowest rate that makes x errors in n unsurprising', () => {
  it('for one error in n is 1 − confidence^(1/n) (P(X ≥ 1) = 1 − (1 − p)^n)', () => {
    expect(lowerBound(1, 100, 0.99)).toBeCloseTo(1 - 0.99 ** (1 / 100), 12);
    expect(lowerBound(1, 20, 0.999)).toBeCloseTo(1 - 0.999 ** (1 / 20), 12);
  });

  it('for every request failed is (1 − confidence)^(1/n) (P(X ≥ n) = p^n)', () => {
    expect(lowerBound(20, 20, 0.99)).toBeCloseTo(0.01 ** (1 / 20), 12);
  });

  it('elsewhere is where the tail crosses 1 − confidence', () => {
    const bound = lowerBound(30, 500, 0.99);
    expect(referenceTail(30, 500, bound)).toBeCloseTo(0.01, 9);
  });

  it('is 0 without an error', () => {
    expect(lowerBound(0, 100, 0.99)).toBe(0);
  });
});
