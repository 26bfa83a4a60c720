// Defects the simulator found that are not fixed yet, each with the schedule that shows it and
// the violations it explains. The budget in `npm test` holds every invariant except for
// violations one of these explains (narrowly: its faults, its words, its root cause's trace);
// each entry's own schedule must still show it (simulator.test.ts), so an entry goes once its
// defect is fixed. CONTRIBUTING.md ("The simulator") describes each.
import type { Violation } from './invariants.js';
import type { Fault, FaultKind, Run } from './simulate.js';

export interface OpenFinding {
  what: string;
  schedule: { scenario: string; faults: Fault[] };
  explains(violation: Violation, run: Run): boolean;
}

const fired = (run: Run, ...kinds: FaultKind[]) => run.fired.some((f) => kinds.includes(f.kind));
const logged = (run: Run, pattern: RegExp) =>
  [run.main, run.rival, run.second, run.final].some((p) => p && (p.logs.some((l) => pattern.test(l)) || pattern.test(p.failed ?? '')));

export const OPEN: OpenFinding[] = [
  {
    what:
      'a post step that does not finish (it cannot reach the environment, a host or load balancer being cut off, or a step of its ' +
      'repair fails) leaves the deployment record in_progress',
    schedule: { scenario: 'operator-held servers', faults: [{ kind: 'sigterm', at: 101 }, { kind: 'lost-host', at: 96 }] },
    explains: (v, run) =>
      v.invariant === 'report' && logged(run, /Could not finish the rollout cut short/) && /is left in_progress/.test(v.detail),
  },
  {
    what:
      'a run killed after opening its deployment record and before its journal says so leaves the record without a status: ' +
      'the post step does not know of it',
    schedule: { scenario: 'rollback to previous', faults: [{ kind: 'sigkill', at: 23 }, { kind: 'lost-lb', at: 33 }] },
    explains: (v, run) => v.invariant === 'report' && fired(run, 'sigkill', 'runner-death') && /is left without a status/.test(v.detail),
  },
];

export const explained = (violation: Violation, run: Run) => OPEN.some((finding) => finding.explains(violation, run));
