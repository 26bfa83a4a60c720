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
      'a post step that does not finish (it cannot reach the environment, a host or load balancer being cut off, or a step of its ' +
      'repair fails) leaves the deployment record in_progress',
    schedule: { scenario: 'hand-run containers', faults: [{ kind: 'sigterm', at: 173 }, { kind: 'lost-host', at: 103 }] },
    explains: (v, run) =>
      v.invariant === 'report' && logged(run, /Could not finish the rollout cut short/) && /is left in_progress/.test(v.detail),
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
  {
    what:
      'a run killed after opening its deployment record and before its journal says so leaves the record without a status: ' +
      'the post step does not know of it',
    schedule: { scenario: 'rollback to previous', faults: [{ kind: 'sigkill', at: 23 }, { kind: 'lost-lb', at: 33 }] },
    explains: (v, run) => v.invariant === 'report' && fired(run, 'sigkill', 'runner-death') && /is left without a status/.test(v.detail),
  },
];

export const explained = (violation: Violation, run: Run) => OPEN.some((finding) => finding.explains(violation, run));
