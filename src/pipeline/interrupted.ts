// The interrupted-run repair: what the post step (the job cancelled, the runner killed) or a run
// that took the lock over after a dead runner does with the journal the cut-short run kept
// (journal.ts). It first finishes any container change that run had in flight, then brings each
// host it touched to both roles on one release, in service on every load balancer, restoring or
// discarding the adopted containers it set aside. It has no time limit.
import * as core from '@actions/core';
import { executeRollout, takeOutOfService, type RolloutDeps } from '../rollout/execute.js';
import { planHost, sameRelease, settleTarget, type HostPlan, type HostTarget } from '../rollout/plan.js';
import type { HostDriver, Role } from '../rollout/ports.js';
import { settleSwitch } from '../rollout/no-gap.js';
import { settleLeftovers } from '../rollout/roles.js';
import type { Journal } from './journal.js';

const split = (entry: string) => [entry.slice(0, entry.lastIndexOf('/')), entry.slice(entry.lastIndexOf('/') + 1) as Role] as const;

/** The hosts a journal leaves to settle: those touched, and those with a server out of service or a container mid-change or set aside. */
export function hostsToSettle(journal: Journal): string[] {
  const fromServers = journal.outOfService.map((server) => server.slice(0, server.lastIndexOf(':')));
  const fromRoles = [...(journal.changing ?? []), ...(journal.asides ?? [])].map((entry) => split(entry)[0]);
  return [...new Set([...journal.touched, ...fromServers, ...fromRoles])];
}

/** What each host the repair settled runs at its end. */
export type Settled = Map<string, HostTarget>;

/**
 * Each journaled host back to both roles on one release: the master's when it is proven (in
 * service on every load balancer, not a canary left unjudged, not mid-change), else what the
 * host ran before the cut-short run; every server that run took out put back once its container
 * is healthy (those the operator held stay held: `deps.lb.held`). `current` is what the hosts
 * run now; `deps` drive them, with a journal that stays true as the repair goes (no rollback on
 * failure: a failure here is reported, and the lock stays).
 */
export async function repairInterrupted(journal: Journal, current: Map<string, HostTarget>, deps: RolloutDeps): Promise<Settled> {
  const hosts = hostsToSettle(journal).filter((host) => deps.hosts.has(host));
  core.info(`The rollout of ${journal.environment} was cut short: settling ${hosts.join(', ') || 'nothing'}`);
  const now = new Map(hosts.map((host) => [host, { ...current.get(host) }]));
  journal = await finishSwitches(journal, now, deps);
  await finishChanges(journal, now, deps);
  const { lb } = deps;
  const plans: HostPlan[] = [];
  for (const host of hosts) {
    const state = now.get(host)!;
    // The server of the slot the master runs in (a no-gap switch may have moved it).
    const server = (lb?.slots?.active.get(host)?.master === 'b' ? lb.slots.spares : lb?.servers)?.get(host)?.master;
    const proven =
      state.master !== undefined &&
      !(journal.unproven ?? []).includes(host) &&
      !(journal.changing ?? []).includes(`${host}/master`) &&
      (!lb || !server || (await lb.driver.status(server)).status.startsWith('UP'));
    plans.push(planHost(host, state, await restorable(host, state, settleTarget(state, proven, journal.before?.[host]), deps)));
  }
  const target = plans.map((p) => p.target.master ?? p.target.backup).find((r) => r !== undefined);
  // Settling is the web role's; the roles beside it are only put back below, never moved on.
  const { roles, ...web } = deps;
  if (target) {
    const result = await executeRollout({ target, hosts: plans, batches: plans.map((p) => [p.host]) }, { ...web, rollBackOnFailure: false });
    if (!result.ok) throw new Error(`could not settle ${result.failures.map((f) => f.message).join('; ')}`);
  }
  // Adopted containers the cut-short run set aside: a host that went back has them in service
  // again (restored above); one that settled on a release of ours no longer needs them.
  for (const [host, role] of (journal.asides ?? []).map(split)) {
    const plan = plans.find((p) => p.host === host);
    if (!plan || plan.target[role]?.adopted) continue;
    await deps.hosts.get(host)!.stopAndRemove(deps.asideName(role), 0);
    await deps.journal?.aside(host, role, false);
    deps.log.info(`[${host}] removed the adopted ${role} container the cut-short run had set aside`);
  }
  // A role container the cut-short run had set aside (a worker mid-move): the new one kept if
  // it is ready by its role's rule, else the one set aside put back.
  if (roles) for (const [host, driver] of deps.hosts) await settleLeftovers(host, driver, roles, deps.log);
  return new Map(plans.map((p) => [p.host, p.target]));
}

/**
 * rollout.procedure no-gap: a role the cut-short run was switching (its old container still
 * stepped aside as APP-old) finished or undone by what the host and load balancers say
 * (settleSwitch); the journal that is left, without those roles mid-change.
 */
async function finishSwitches(journal: Journal, now: Map<string, HostTarget>, deps: RolloutDeps): Promise<Journal> {
  const settled: string[] = [];
  for (const entry of journal.changing ?? []) {
    const [host, role] = split(entry);
    const state = now.get(host);
    if (state && (await settleSwitch(host, role, state, deps, role === 'master' && (journal.unproven ?? []).includes(host)))) settled.push(entry);
  }
  return settled.length === 0 ? journal : { ...journal, changing: (journal.changing ?? []).filter((entry) => !settled.includes(entry)) };
}

/**
 * `target`, when every adopted container it puts back waits set aside. One that does not (gone:
 * discarded by a run that got further than its journal says) cannot be put back: the host settles
 * on the release of ours it runs instead (proven healthy by the settling itself), and with none,
 * the repair fails naming what is missing (the lock stays).
 */
async function restorable(host: string, state: HostTarget, target: HostTarget, deps: RolloutDeps): Promise<HostTarget> {
  const driver = deps.hosts.get(host)!;
  for (const role of ['master', 'backup'] as const) {
    const wanted = target[role];
    if (!wanted?.adopted || sameRelease(state[role], wanted) || (await driver.hasContainer(deps.asideName(role)))) continue;
    const ours = [state.master, state.backup].find((r) => r && !r.adopted);
    if (!ours) throw new Error(`${host}: cannot put the hand-run ${role} back: ${deps.asideName(role)} does not exist, and the host runs no release to settle on`);
    deps.log.warning(`[${host}] the hand-run ${role} it ran before is gone (no ${deps.asideName(role)}): settling on ${ours.version}, which it runs`);
    return { master: ours, backup: ours };
  }
  return target;
}

/**
 * A role the cut-short run was changing while its server was out of service may have a stop in
 * flight: the engine carries a stop through after its caller is gone, so a container that still
 * runs now may die a stop-timeout later. It is stopped for good before anything judges it; an
 * adopted one not yet set aside is set aside whole (never removed), to be restored. The journal
 * lags the load balancers (that run may have put the server back, or be draining it, and died
 * before saying so), so the server is first made sure to be MAINT on every one of them, taken
 * out the way a rollout does it; a load balancer out of reach fails the repair, the container
 * left running.
 */
async function finishChanges(journal: Journal, now: Map<string, HostTarget>, deps: RolloutDeps): Promise<void> {
  for (const [host, role] of (journal.changing ?? []).map(split)) {
    const driver = deps.hosts.get(host);
    const state = now.get(host);
    if (!driver || !state) continue;
    const server = deps.lb?.servers.get(host)?.[role];
    // Back in service: the change got past its stop and its new container was proven healthy.
    if (server && !journal.outOfService.includes(server)) continue;
    if (deps.lb && server && !(await deps.lb.driver.status(server)).status.startsWith('MAINT')) {
      deps.log.info(`[${host}] ${role}: ${server} is not in maintenance on every load balancer: taking it out before the container is stopped`);
      await takeOutOfService(host, role, state, deps);
    }
    const name = deps.containerName(role);
    // Where the hand-run container is, the host says, not the journal: the run may have died
    // between a rename and its note of it, either way. Waiting aside, whatever has its name is
    // the run's own new container; else a release of ours running there means the run got past
    // it (and it is gone); else it is the one under its name, and is set aside whole.
    const inPlace = state[role];
    const adopted = journal.before?.[host]?.[role]?.adopted;
    const waitsAside = adopted && (await driver.hasContainer(deps.asideName(role)));
    if (adopted && !waitsAside && !(inPlace && !inPlace.adopted)) {
      deps.log.info(`[${host}] ${role}: finishing the set-aside of the adopted container the cut-short run was stopping`);
      if (await setAsideOrFind(host, role, driver, deps)) await deps.journal?.aside(host, role, true);
    } else {
      deps.log.info(`[${host}] ${role}: stopping the container the cut-short run was changing before judging it`);
      await driver.stopAndRemove(name, deps.stopTimeoutSeconds);
      if (waitsAside) await deps.journal?.aside(host, role, true);
    }
    delete state[role];
  }
}

/**
 * Sets the adopted container of `role` aside; whether it now waits there. A set-aside that fails
 * is judged by what the host has: still under its own name (the rename failed, the host was cut
 * off), it fails the repair, recorded as nothing set aside, for whoever finishes next; already
 * renamed (the cut-short run died before it could journal it), it is set aside all the same.
 */
async function setAsideOrFind(host: string, role: Role, driver: HostDriver, deps: RolloutDeps): Promise<boolean> {
  const name = deps.containerName(role);
  const aside = deps.asideName(role);
  try {
    await driver.setAside(name, aside, deps.stopTimeoutSeconds);
    return true;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    if (await driver.hasContainer(name)) throw new Error(`${host}: could not set the hand-run ${role} aside (${why}): it stays as ${name}, to be set aside by whoever finishes next`);
    deps.log.info(`[${host}] ${role}: ${why}`);
    return driver.hasContainer(aside);
  }
}
