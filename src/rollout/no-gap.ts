// rollout.procedure: no-gap. A role's container is replaced without a moment out of service: the
// new container starts in the role's other slot (its spare port, with its own HAProxy server,
// in MAINT meanwhile), is proven healthy, its server goes in service (HAProxy 2.6 marks a server
// leaving MAINT UP at once), and only then is the old server drained, put in maintenance and its
// container stopped. The host's other role is never touched meanwhile, so a backup stands behind
// the master at every moment, and the host runs one container more than usual for those few
// seconds. The backup-first procedure (execute.ts) stays the default and handles what this does
// not: a first deploy, an adopted container, a server the operator holds out of service.
import { Cancelled, phaseTimer, StepFailed, type HostRun } from './execute.js';
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
