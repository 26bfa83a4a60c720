// The interrupted-run repair, the post step's stage for a rollout cut short (the job cancelled,
// the runner killed): from the journal the main step kept (journal.ts), it brings the hosts
// touched to both roles on one release, in service on every load balancer. It has no time limit.
import * as core from '@actions/core';
import { executeRollout, type RolloutDeps } from '../rollout/execute.js';
import { planHost, settleTarget, type HostPlan, type HostTarget } from '../rollout/plan.js';
import type { Journal } from './journal.js';

/** The hosts a journal leaves to settle: those touched, and those with a server out of service. */
export function hostsToSettle(journal: Journal): string[] {
  const fromServers = journal.outOfService.map((server) => server.slice(0, server.lastIndexOf(':')));
  return [...new Set([...journal.touched, ...fromServers])];
}

/**
 * Each journaled host back to both roles on one release (the master's when it is in service on
 * every load balancer, else the backup's), every server it took out put back once its container
 * is healthy. `current` is what the hosts run now; `deps` drive them (no rollback on failure:
 * a failure here is reported, and the lock stays).
 */
export async function repairInterrupted(journal: Journal, current: Map<string, HostTarget>, deps: RolloutDeps): Promise<void> {
  const hosts = hostsToSettle(journal).filter((host) => deps.hosts.has(host));
  core.info(`The rollout of ${journal.environment} was cut short: settling ${hosts.join(', ') || 'nothing'}`);
  const { lb } = deps;
  const plans: HostPlan[] = [];
  for (const host of hosts) {
    const now = current.get(host) ?? {};
    const server = lb?.servers.get(host)?.master;
    // A canary killed during its hold is unproven, in service or not.
    const unproven = journal.unproven?.includes(host) ?? false;
    const masterInService = !unproven && (!lb || !server ? true : (await lb.driver.status(server)).status.startsWith('UP'));
    plans.push(planHost(host, now, settleTarget(now, masterInService && now.master !== undefined)));
  }
  const target = plans.map((p) => p.target.master ?? p.target.backup).find((r) => r !== undefined);
  if (!target) return;
  const result = await executeRollout({ target, hosts: plans, batches: plans.map((p) => [p.host]) }, deps);
  if (!result.ok) throw new Error(`could not settle ${result.failures.map((f) => f.message).join('; ')}`);
}
