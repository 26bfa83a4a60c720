// What must hold after every schedule, whatever the faults did (issue 19):
//   hosts      every host reachable at the end runs both roles on one release, the one it ran
//              before or the target proven healthy (and judged, where a canary applies);
//   kept       no container that served before the deploy is gone unless its host ended on the
//              new release;
//   servers    every server is in service on every load balancer, except those an operator held
//              out, which stay held;
//   lock       no lock is left without a journal that explains it, none is taken from a run
//              still running; the next deploy succeeds;
//   report     the summary, the deployment record and the receipt say what happened to each host;
//   requests   no request routed to a stopped or unhealthy container, never no server serving
//              (the estate's own check at every operation), except where a reload caused it.
import type { Role } from '../../src/rollout/ports.js';
import { ROLES, serverOf } from '../support/memory-estate.js';
import { NEXT, V1, WORKERS, type Run } from './simulate.js';

export const INVARIANTS = ['hosts', 'kept', 'servers', 'lock', 'next deploy', 'report', 'requests'] as const;
export type Invariant = (typeof INVARIANTS)[number];

export interface Violation {
  invariant: Invariant;
  detail: string;
}

const LOCK = 'app-deploy-lock';

export function check(run: Run): Violation[] {
  const out: Violation[] = [];
  const v = (invariant: Invariant, detail: string) => out.push({ invariant, detail });
  const { scenario, world, main } = run;
  if (run.stuck) v('next deploy', `a run never ended: ${run.stuck}`);
  const held = new Map(scenario.held ?? []);
  const target = run.target;
  const canaryPassed = [main, run.second].some((p) => p?.logs.some((l) => /within the budget/.test(l)));
  const targetAllowed = target !== undefined && !target.includes('broken') && !scenario.failingPages && (!scenario.canaryHold || canaryPassed);
  const releaseOf = (host: string, role: Role) => {
    const there = run.phase2.boxes.get(`${host}/${role}`);
    return there?.serving ? there.box.release.version : undefined;
  };

  // After the main step and its post step (or the next run). With a load balancer cut off, no
  // server can be taken out of service there: a host is not moved, whatever state it was left
  // in, until the load balancer is back (the lock and its journal say what to finish).
  const lbLost = scenario.lbs.some((lb) => run.unreachableInPhase2.has(lb));
  // A lock left with its journal is work explained and pending (a run that could not take it
  // over: GitHub gave no answer): the hosts wait for the next deploy, which must finish it.
  const lockHost = [...scenario.hosts].sort()[0]!;
  const pending = run.phase2.locks.has(`${lockHost}/${LOCK}`) && run.phase2.journals.has(lockHost);
  for (const host of scenario.hosts) {
    if (run.unreachableInPhase2.has(host)) continue;
    const master = releaseOf(host, 'master');
    const backup = releaseOf(host, 'backup');
    const before = run.before.get(host)!;
    const beforeVersion = before.master?.release.version;
    if (lbLost || pending) {
      // Only what is gone for good counts.
    } else if (master !== backup) {
      v('hosts', `${host} runs master ${master ?? 'nothing'} and backup ${backup ?? 'nothing'} (not both roles on one release)`);
    } else if (master !== beforeVersion && !(master === target && targetAllowed)) {
      v('hosts', `${host} ended on ${master ?? 'nothing'}: neither what it ran before (${beforeVersion ?? 'nothing'}) nor a target proven healthy${scenario.canaryHold ? ' and judged' : ''}`);
    }
    if (master !== target) {
      for (const role of ROLES) {
        const was = before[role];
        const key = `${host}/${role}`;
        if (was?.release.adopted && run.phase2.boxes.get(key)?.box !== was && run.phase2.asides.get(key) !== was) {
          v('kept', `${host}'s hand-run ${role} (${was.release.version}) is gone, and the host is not on the new release`);
        }
      }
    }
  }
  for (const [lb, states] of run.phase2.lbs) {
    if (lbLost || pending) break;
    for (const host of scenario.hosts) {
      if (run.unreachableInPhase2.has(host)) continue;
      for (const role of ROLES) {
        const server = serverOf(host, role);
        const want = held.get(server) ?? 'ready';
        const state = states.get(server);
        // No container there before the deploy nor after it: nothing to serve, in any state.
        if (!run.before.get(host)?.[role] && !run.phase2.boxes.get(`${host}/${role}`)) continue;
        if (state !== want) v('servers', `${server} is ${state} on ${lb}, ${held.has(server) ? `held ${want} by the operator` : 'not in service'}`);
        else if (!run.phase2.boxes.get(`${host}/${role}`)?.serving && (run.before.get(host)?.[role] || releaseOf(host, 'master') === target)) v('servers', `${server} is ${state} on ${lb}, and DOWN: no healthy container behind it`);
      }
    }
  }
  for (const line of run.locksTakenFromLive) v('lock', line);
  if (!run.unreachableInPhase2.has(lockHost) && run.phase2.locks.has(`${lockHost}/${LOCK}`) && !run.phase2.journals.has(lockHost)) {
    v('lock', `the deploy lock of run ${run.phase2.locks.get(`${lockHost}/${LOCK}`)!.runId} is left on ${lockHost} with no journal to explain it`);
  }

  // What the main step reported, against what it left (when it ended on its own, and no rival
  // run changed the hosts after it).
  const rivalMoved = run.rival?.done && !run.rival.failed;
  if (main.done && !main.dead && !rivalMoved) {
    // The hosts' table (the roles' own table follows it where there are roles).
    const rows = main.tables.findLast((t) => t[0]?.[1] === 'Master before → after')?.slice(1) ?? [];
    for (const [host, masterCell, backupCell] of rows) {
      if (run.unreachableAfterMain.has(host!)) continue;
      const after = run.afterMain.get(host!);
      const said = { master: masterCell?.split(' → ')[1], backup: backupCell?.split(' → ')[1] };
      for (const role of ROLES) {
        const actual = after?.[role] ?? '—';
        if (said[role] !== actual) v('report', `the summary says ${host}'s ${role} is ${said[role]} after the deploy; it runs ${actual}`);
      }
    }
    const rolledBack = /Rolled back: ([^.<]*)/.exec(main.summary.join('\n'))?.[1];
    for (const host of rolledBack?.split(', ') ?? []) {
      if (run.unreachableAfterMain.has(host)) continue;
      const after = run.afterMain.get(host);
      const was = run.before.get(host)?.master?.release.version;
      if (after && after.master !== was) v('report', `the summary says ${host} was rolled back; its master runs ${after.master ?? 'nothing'}, not ${was ?? 'nothing'}`);
    }
    const receipt = main.outputs.get('receipt');
    if (receipt && (JSON.parse(receipt) as { outcome: string }).outcome === 'success') {
      for (const [host, after] of run.afterMain) if (after.master !== target) v('report', `the receipt says success; ${host}'s master runs ${after.master ?? 'nothing'}`);
    }
  }
  // A record GitHub would not take a status for, or whose run died with no post step, stays as
  // it was: nothing is left to finish it (GitHub marks it inactive once a later deploy succeeds).
  const recordsFinishable = !run.fired.some((f) => f.kind === 'github-5xx' || f.kind === 'runner-death');
  for (const record of run.github.records.filter((r) => r.ref !== NEXT)) {
    const last = record.statuses.at(-1);
    if (recordsFinishable && (!last || last.state === 'in_progress')) v('report', `deployment record ${record.id} (${record.ref}) is left ${last?.state ?? 'without a status'}`);
    if (last?.state === 'success') {
      for (const host of scenario.hosts) {
        if (run.unreachableInPhase2.has(host)) continue;
        if (releaseOf(host, 'master') !== record.ref) v('report', `deployment record ${record.id} says ${record.ref} succeeded; ${host} runs ${releaseOf(host, 'master') ?? 'nothing'}`);
      }
    }
  }
  // A reload puts servers back to the configuration's state, READY behind a container stopped
  // meanwhile, until HAProxy's health checks take it DOWN (which the estate does not model).
  const reloaded = run.fired.some((f) => f.kind === 'reload');
  // A failed first deploy goes back to nothing: the site it had brought up goes down again, by design.
  const counts = (line: string) => !(scenario.start === 'empty' && line.endsWith('no server is serving'));
  if (!reloaded) {
    for (const line of world.violations.slice(0, run.violationsBeforeFinal).filter(counts)) v('requests', line);
  }

  // One more deploy, every fault gone: it succeeds, and leaves everything whole.
  const final = run.final;
  if (final && final.done) {
    if (final.failed) v('next deploy', `the next deploy failed: ${final.failed.split('\n')[0]}`);
    for (const host of scenario.hosts) {
      for (const role of ROLES) {
        const box = world.boxes.get(`${host}/${role}`);
        if (box?.release.version !== NEXT || box.running === false) v('next deploy', `after the next deploy ${host}'s ${role} runs ${box?.release.version ?? 'nothing'}, not ${NEXT}`);
      }
    }
    for (const [lb, states] of world.lbs) {
      for (const [server, state] of states) {
        const want = held.get(server) ?? 'ready';
        if (state !== want) v('next deploy', `after the next deploy ${server} is ${state} on ${lb}, not ${want}`);
      }
    }
    if (world.locks.size > 0) v('next deploy', `after the next deploy a lock is left: ${[...world.locks.keys()].join(', ')}`);
    if (!reloaded) for (const line of world.violations.slice(run.violationsBeforeFinal).filter(counts)) v('requests', `during the next deploy: ${line}`);
  }
  return out;
}

/**
 * The worker role of ROLE_SCENARIOS (docs/roles.md), on top of the invariants above: after the
 * post step (or the next run), every worker of every host reachable runs, none is left set
 * aside, each on the release it ran or a target its workers proved ready; after the next
 * deploy, every worker runs that release. Where the hosts invariant waits (a load balancer cut
 * off, a lock left with its journal), so does this one.
 */
export function checkRoles(run: Run): string[] {
  const out: string[] = [];
  const { scenario, world } = run;
  const lockHost = [...scenario.hosts].sort()[0]!;
  const waits = scenario.lbs.some((lb) => run.unreachableInPhase2.has(lb)) || (run.phase2.locks.has(`${lockHost}/${LOCK}`) && run.phase2.journals.has(lockHost));
  const allowed = new Set([V1, ...(run.target && scenario.roles === 'ready' && !run.target.includes('broken') ? [run.target] : [])]);
  // A run that succeeded but could not remove a container set aside says so; the next deploy removes it.
  const warned = new Set([run.main, run.second].flatMap((p) => p?.logs ?? []).flatMap((l) => [...l.matchAll(/could not remove the container set aside: (\S+): (\S+):/g)].map((m) => `${m[1]}/${m[2]}-previous`)));
  const look = (when: string, roles: Map<string, { version: string; running: boolean }>, host: string, wanted: (version: string) => boolean) => {
    for (const [key] of roles) if (key.startsWith(`${host}/`) && key.endsWith('-previous') && !(when === 'after the post step' && warned.has(key))) out.push(`${when}: ${key} is left set aside`);
    for (const name of WORKERS) {
      const there = roles.get(`${host}/${name}`);
      if (!there?.running) out.push(`${when}: ${host}/${name} ${there ? `is stopped (${there.version})` : 'is gone'}`);
      else if (!wanted(there.version)) out.push(`${when}: ${host}/${name} runs ${there.version}`);
    }
  };
  for (const host of scenario.hosts) {
    if (!waits && !run.unreachableInPhase2.has(host)) look('after the post step', run.phase2.roles, host, (v) => allowed.has(v));
    if (run.final?.done && !run.stuck) look('after the next deploy', new Map([...world.roleBoxes].map(([k, b]) => [k, { version: b.release.version, running: b.running }])), host, (v) => v === NEXT);
  }
  return out;
}
