// How often the canary's verdict is wrong, measured on seeded simulated holds (the rates the
// README's "How sure the canary is" promises; `npm run bench` prints them for a wider grid).
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exampleVerdicts, verdictRates } from '../../src/receipt/verdict-rates.js';

describe('the verdict\'s error rates, measured on seeded simulated holds', () => {
  // Traffic at least 5 ÷ budget requests in the hold, the least at which a release at 5× the
  // budget is caught 99 % of the time (README, "How sure the canary is").
  it.each([
    [0.1, 5_000],
    [1, 500],
    [1, 5_000],
    [5, 100],
    [5, 2_000],
  ])('a budget of %s percent, %s requests in the hold: half the budget passes, 5× fails, no worse than the old passes, each at least 99 percent of the time', (budget, requests) => {
    const rates = verdictRates(budget, requests, 1000);
    expect(rates.halfBudgetPasses).toBeGreaterThanOrEqual(0.99);
    expect(rates.fiveTimesFails).toBeGreaterThanOrEqual(0.99);
    expect(rates.noWorsePassesAtWorst).toBeGreaterThanOrEqual(0.99);
  });

  it('with too few requests for that, a release at 5× the budget is not caught every time (the docs say so)', () => {
    expect(verdictRates(1, 100, 1000).fiveTimesFails).toBeLessThan(0.9);
  });
});

describe('the docs\' example verdicts', () => {
  it('docs/receipt-and-canary.md shows each, as judge() gives it (npm run bench:canary prints the table)', () => {
    const page = readFileSync(join(import.meta.dirname, '../../docs/receipt-and-canary.md'), 'utf8');
    for (const line of exampleVerdicts()) expect(page).toContain(line);
  });
});
