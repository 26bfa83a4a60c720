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

export const OPEN: OpenFinding[] = [
  {
    what:
      'with the lock\'s host cut off, the journal kept next to the lock stops following the run; a run that takes the lock over ' +
      'then reads a server the dead run took out (MAINT) as one the operator holds, and leaves it out of service for good (or, ' +
      'the other way round, puts an operator\'s server back in service)',
    schedule: { scenario: 'canary passes', faults: [{ kind: 'lost-host', at: 75 }, { kind: 'remove-fails', at: 187 }] },
    explains: (v, run) =>
      fired(run, 'lost-host') &&
      // The lock's host (the first, sorted) cut off while the run went on.
      run.unreachableAfterMain.has([...run.scenario.hosts].sort()[0]!) &&
      (((v.invariant === 'next deploy' || v.invariant === 'servers') && / is (maint on lb\d, not (ready|in service|drain)|ready on lb\d, (not|held) (maint|drain))/.test(v.detail)) ||
        (v.invariant === 'hosts' && /not both roles on one release/.test(v.detail))),
  },
  {
    what:
      'a run that took a dead run\'s lock over and fails in its repair (a remove that fails) ends without a lock or a journal: ' +
      'the host it left half-repaired (a role stopped, its server in MAINT) has nothing that says so until the next deploy',
    schedule: {
      scenario: 'upgrade',
      faults: [
        { kind: 'remove-fails', at: 0, on: 'lb-set lb1 h1-master' },
        { kind: 'runner-death', at: 0, on: 'stop h1 app' },
      ],
    },
    explains: (v, run) =>
      (v.invariant === 'hosts' || v.invariant === 'servers') &&
      fired(run, 'runner-death') &&
      /^h\d: (remove|rename) \S+ failed \(simulated\)/.test(run.second?.failed ?? ''),
  },
];

export const explained = (violation: Violation, run: Run) => OPEN.some((finding) => finding.explains(violation, run));
