// Defects the simulator found that are not fixed yet, each with the schedule that shows it and
// the violations it explains. The budget in `npm test` holds every invariant except for
// violations one of these explains (narrowly: its faults, its words, its root cause's trace);
// each entry's own schedule must still show it (simulator.test.ts), so an entry goes once its
// defect is fixed. CONTRIBUTING.md ("The simulator") describes each. None is open now.
import type { Violation } from './invariants.js';
import type { Fault, Run } from './simulate.js';

export interface OpenFinding {
  what: string;
  schedule: { scenario: string; faults: Fault[] };
  explains(violation: Violation, run: Run): boolean;
}

export const OPEN: OpenFinding[] = [];

export const explained = (violation: Violation, run: Run) => OPEN.some((finding) => finding.explains(violation, run));
