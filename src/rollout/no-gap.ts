// rollout.procedure: no-gap. A role's container is replaced without a moment out of service: the
// new container starts in the role's other slot (its spare port, with its own HAProxy server,
// in MAINT meanwhile), is proven healthy, its server goes in service (HAProxy 2.6 marks a server
// leaving MAINT UP at once), and only then is the old server drained, put in maintenance and its
// container stopped. The host's other role is never touched meanwhile, so a backup stands behind
// the master at every moment, and the host runs one container more than usual for those few
// seconds. The backup-first procedure (execute.ts) stays the default and handles what this does
// not: a first deploy, an adopted container, a server the operator holds out of service.
import { Cancelled, HostRun, phaseTimer, StepFailed, type RolloutDeps } from './execute.js';
import { planHost, type HostTarget } from './plan.js';
import type { Release, Role, Slot } from './ports.js';

const otherSlot = (slot: Slot): Slot => (slot === 'a' ? 'b' : 'a');

/** Whether this replacement goes without a gap: the opt-in, spare servers, and an old container of ours serving. */
export function usesNoGap(run: HostRun, role: Role, to: Release): boolean {
  const { deps } = run;
  const from = run.current[role];
  if (deps.procedure !== 'no-gap' || !deps.lb?.slots || !from || from.adopted || to.adopted) return false;
  const oldServer = run.server(role);
  const newServer = run.server(role, otherSlot(run.slot(role)));
  return oldServer !== undefined && newServer !== undefined && !deps.lb.held.has(oldServer);
}

export async function replaceWithoutGap(run: HostRun, role: Role, to: Release, canary: boolean): Promise<void> {
  const { deps, driver } = run;
  const { host } = run.plan;
  const lb = deps.lb!;
  const name = deps.containerName(role);
  const oldName = deps.oldName?.(role) ?? `${name}-old`;
  const from = run.current[role]!;
  const fromSlot = run.slot(role);
  const toSlot = otherSlot(fromSlot);
  const oldServer = run.server(role, fromSlot)!;
  const newServer = run.server(role, toSlot)!;
  if (canary) {
    // Unjudged from before it goes in service until its hold ends (as in the default procedure).
    run.unproven = true;
    await deps.journal?.unproven(host, true);
  }
  run.log(`${role}: ${from.version} → ${to.version} without a gap (${newServer} takes over from ${oldServer})`);
  await run.markTouched();
  await deps.journal?.changing(host, role, true);
  const { times, timed } = phaseTimer(role);
  // Nothing may reach the new container before it is proven healthy: its server stays in MAINT
  // until then (it is there already, unless someone put it back by hand).
  await lb.driver.setState(newServer, 'maint');
  // The old container steps aside under another name, still serving, for the new one to take the role's.
  await driver.rename(name, oldName);
  try {
    const noted = deps.observer?.changing(host, role, to, newServer);
    await timed('start', () => driver.run(deps.spec(role, to, toSlot)));
    const verdict = await timed('healthy', () => run.waitHealthy(role, name, toSlot));
    if (!verdict.healthy && run.signal?.aborted) throw new Cancelled();
    if (!verdict.healthy) {
      run.log(`${role} ${to.version} did not become healthy: ${verdict.detail}`);
      if (verdict.logs) run.log(verdict.logs);
      throw new StepFailed(host, role, to, `did not become healthy: ${verdict.detail}`, verdict.logs);
    }
    await noted;
    await timed('inService', () => run.ensureInService(role, newServer));
    // Puts the old server back and throws when cancelled or out of drain time: undone below.
    await timed('drain', () => run.takeOutOfService(role, oldServer));
  } catch (error) {
    await undo(run, role, { name, oldName, newServer, oldServer });
    throw error;
  }
  // Switched: the new container serves alone in its slot.
  run.current[role] = to;
  const active = lb.slots!.active.get(host) ?? {};
  active[role] = toSlot;
  lb.slots!.active.set(host, active);
  // A load balancer reloaded from a state saved before the `ready` would have the new server in
  // MAINT again: it must be UP everywhere before the old container stops.
  await run.ensureInService(role, newServer);
  await timed('stop', () => driver.stopAndRemove(oldName, deps.stopTimeoutSeconds));
  // Out of service by design now (the idle slot's server): nothing for a repair to put back.
  await deps.journal?.outOfService(oldServer, false);
  await deps.observer?.changing(host, role, undefined, oldServer);
  await run.inService(role, to, times, canary);
}

/**
 * Before the switch: the new server out of service again (drained of what it got), the new
 * container removed, the old one given its name back; the old server serves as before. Best
 * effort: what fails is logged, and the step's own failure is what the caller reports.
 */
async function undo(run: HostRun, role: Role, { name, oldName, newServer, oldServer }: { name: string; oldName: string; newServer: string; oldServer: string }): Promise<void> {
  const { deps, driver } = run;
  const lb = deps.lb!;
  try {
    await lb.driver.setState(newServer, 'drain');
    const deadline = Date.now() + lb.drainTimeoutSeconds * 1000;
    let status = await lb.driver.status(newServer);
    while (status.sessions + status.queued > 0 && Date.now() < deadline) {
      await deps.sleep(deps.pollMs);
      status = await lb.driver.status(newServer);
    }
    await lb.driver.setState(newServer, 'maint');
    await driver.stopAndRemove(name, deps.stopTimeoutSeconds);
    await driver.rename(oldName, name);
    const { status: old } = await lb.driver.status(oldServer);
    if (!old.startsWith('UP')) await lb.driver.setState(oldServer, 'ready');
    await deps.journal?.outOfService(oldServer, false);
    await deps.journal?.changing(run.plan.host, role, false);
  } catch (error) {
    deps.log.warning(`[${run.plan.host}] could not undo the ${role}'s unfinished switch (${error instanceof Error ? error.message : String(error)}): ${oldName} may still hold the old release`);
  }
}

/**
 * A switch its run was killed in the middle of (APP-old still on the host), finished from what
 * the host and the load balancers say, not from the journal (which may lag by one step): a new
 * container that runs and whose server every load balancer reports UP is proven, and the old one
 * is drained, put in MAINT, stopped and removed; otherwise the switch is undone (the new server
 * to MAINT, the new container removed, APP-old given its name back). `unjudged`: the new
 * container is a canary whose hold never ended, never proven. Updates `state` (what the host
 * runs) and the active slot; false when the host has no APP-old (nothing of the kind to finish).
 */
export async function settleSwitch(host: string, role: Role, state: HostTarget, deps: RolloutDeps, unjudged: boolean): Promise<boolean> {
  const driver = deps.hosts.get(host);
  const lb = deps.lb;
  const name = deps.containerName(role);
  const oldName = deps.oldName?.(role) ?? `${name}-old`;
  if (!driver || !lb?.slots || !(await driver.hasContainer(oldName))) return false;
  const read = async () => (await driver.containers(deps.containerName('master')))[role];
  const active = lb.slots.active.get(host) ?? {};
  lb.slots.active.set(host, active);
  const found = await read();
  const run = new HostRun(planHost(host, state, state), driver, deps);
  if (!found) {
    // Killed between the rename and the start: no new container (its server still in MAINT);
    // the old one takes its name back, and its label says which slot it serves in.
    deps.log.info(`[${host}] ${role}: the cut-short run's switch started no new container: ${oldName} takes its name back`);
    await driver.rename(oldName, name);
    const back = await read();
    const slot = back?.slot ?? 'a';
    active[role] = slot;
    await lb.driver.setState(run.server(role, otherSlot(slot))!, 'maint');
    const oldServer = run.server(role, slot)!;
    if (back?.running && !(await lb.driver.status(oldServer)).status.startsWith('UP')) await lb.driver.setState(oldServer, 'ready');
    await deps.journal?.outOfService(oldServer, false);
    await deps.journal?.changing(host, role, false);
    if (back?.running) state[role] = back.release;
    else delete state[role];
    return true;
  }
  const newSlot: Slot = found.slot ?? 'a';
  active[role] = newSlot;
  const newServer = run.server(role, newSlot)!;
  const oldServer = run.server(role, otherSlot(newSlot))!;
  const release = found?.running ? found.release : undefined;
  if (release && !unjudged && (await lb.driver.status(newServer)).status.startsWith('UP')) {
    deps.log.info(`[${host}] ${role}: the cut-short run's switch to ${release.version} is proven (${newServer} UP on every load balancer): finishing it`);
    run.current[role] = release;
    await run.takeOutOfService(role, oldServer);
    await driver.stopAndRemove(oldName, deps.stopTimeoutSeconds);
    await deps.journal?.outOfService(oldServer, false);
    await deps.journal?.changing(host, role, false);
    state[role] = release;
    return true;
  }
  deps.log.info(`[${host}] ${role}: the cut-short run's switch is not proven (${release ? `${newServer} not UP on every load balancer, or a canary not judged` : 'the new container does not run'}): undoing it`);
  await undo(run, role, { name, oldName, newServer, oldServer });
  if (await driver.hasContainer(oldName)) throw new Error(`${host}: could not undo the ${role}'s unfinished switch: ${oldName} still holds the old release`);
  active[role] = otherSlot(newSlot);
  const back = await read();
  if (back?.running) state[role] = back.release;
  else delete state[role];
  return true;
}
