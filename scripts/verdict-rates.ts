// The canary verdict's error rates on a grid of budgets and traffic, from seeded simulated holds
// (src/receipt/verdict-rates.ts; no estate needed). Printed by `npm run bench` first, and alone
// by `npm run bench:canary` (with the docs' table of example verdicts). Each cell: of 2000 simulated holds, the share where a release at half
// the budget passed / one at 5× the budget failed / one as bad as the old release passed (the
// worst over old rates from 0 to 10× the budget). Old side: 3× the canary's requests.
import { pathToFileURL } from 'node:url';
import { exampleVerdicts, verdictRates } from '../src/receipt/verdict-rates.js';

export const BUDGETS = [0.1, 0.5, 1, 2, 5, 10];
export const REQUESTS = [20, 50, 100, 200, 500, 1000, 2000, 5000];

export function printVerdictRates(holds = 2000): void {
  const pct = (x: number) => `${(100 * x).toFixed(1)}`;
  console.log(`\nCanary verdicts on ${holds} simulated holds per cell: half the budget passes % / 5× the budget fails % / no worse than the old release passes % (worst old rate)`);
  const header = ['budget \\ requests', ...REQUESTS.map(String)];
  const rows = BUDGETS.map((budget) => [`${budget}%`, ...REQUESTS.map((requests) => {
    const r = verdictRates(budget, requests, holds);
    return `${pct(r.halfBudgetPasses)}/${pct(r.fiveTimesFails)}/${pct(r.noWorsePassesAtWorst)}`;
  })]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  for (const row of [header, ...rows]) console.log(row.map((c, i) => c.padEnd(widths[i]!)).join('  '));
}

/** docs/receipt-and-canary.md's table of example verdicts, as Markdown (a unit test holds the page to it). */
export function printExampleVerdicts(): void {
  console.log('\nExample verdicts (min-requests: 20):\n');
  for (const line of exampleVerdicts()) console.log(line);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  printExampleVerdicts();
  printVerdictRates();
}
