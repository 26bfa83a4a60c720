// Exact binomial arithmetic for the canary's verdict: small counts (one error in twenty requests)
// are where a normal approximation says the most nonsense, and where canaries live. Pure.

/**
 * ln Γ(x), Lanczos' approximation (g = 7, 9 terms): ample for the tails below. Without the
 * reflection formula for x < ½: a binomial tail asks for x ≥ 1 only (its parameters are counts),
 * and the sum alone stays within 2e-15 of it down to x = 0.001 (measured).
 */
function logGamma(x: number): number {
  const c = [0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905, -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7];
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/**
 * The regularized incomplete beta function I_x(a, b) (continued fraction, Lentz's method), the
 * one guard of the domain: outside 0 < x < 1 it is 0 or 1 (a rate of 0 or 1 reaches it from
 * binomialTail: `max-error-rate` 0 or 100).
 *
 * Without Lentz's usual guards against a zero denominator (|d| or |c| under 1e-300): below the
 * mean, where the fraction is evaluated, the first is 1 − (a+b)x/(a+1) ≥ 2/(a+b+2), and none of
 * them came under 0.003 in a one-off scan of every binomial tail of up to 600 requests at rates
 * from 1e-9 to 1 − 1e-6; a guard no input reaches would be dead code.
 */
export function incompleteBeta(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  // The continued fraction converges fast below the mean; above it, use the symmetry.
  if (x > (a + 1) / (a + b + 2)) return 1 - incompleteBeta(1 - x, b, a);
  const front = Math.exp(logGamma(a + b) - logGamma(a) - logGamma(b) + a * Math.log(x) + b * Math.log(1 - x)) / a;
  let c = 1;
  let d = 1 / (1 - ((a + b) * x) / (a + 1));
  let f = d;
  for (let m = 1; m <= 10_000; m++) {
    for (const step of [0, 1]) {
      const numerator = step === 0 ? (m * (b - m) * x) / ((a + 2 * m - 1) * (a + 2 * m)) : -((a + m) * (a + b + m) * x) / ((a + 2 * m) * (a + 2 * m + 1));
      d = 1 / (1 + numerator * d);
      c = 1 + numerator / c;
      f *= c * d;
      if (step === 1 && Math.abs(c * d - 1) < 1e-14) return front * f;
    }
  }
  return front * f;
}

/** P(X ≥ x) for X ~ Binomial(n, p): how surprising x errors in n requests are at rate p. */
export function binomialTail(x: number, n: number, p: number): number {
  if (x <= 0) return 1;
  if (x > n) return 0;
  // A rate of 0 or 1: incompleteBeta answers its ends.
  return incompleteBeta(p, x, n - x + 1);
}

/**
 * Clopper–Pearson's one-sided lower bound: the lowest rate at which x or more errors in n
 * requests are not too surprising (P ≥ 1 − confidence). A true rate below it would produce so
 * many errors less than (1 − confidence) of the time.
 */
export function lowerBound(x: number, n: number, confidence: number): number {
  // No error (x = 0): every tail is 1, never under alpha, so the bound stays at 0.
  const alpha = 1 - confidence;
  let [low, high] = [0, 1];
  for (let i = 0; i < 60; i++) {
    const mid = (low + high) / 2;
    if (binomialTail(x, n, mid) < alpha) low = mid;
    else high = mid;
  }
  return low;
}
