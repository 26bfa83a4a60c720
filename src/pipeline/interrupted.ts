// The post step's repair of a rollout cut short (the job cancelled, the runner killed): from the
// journal the main step kept (journal.ts), it brings the hosts touched to both roles on one
// release, in service on every load balancer, then releases the lock. It has no time limit.
import * as core from '@actions/core';
import type { Config } from '../config/schema.js';
import { readSecretValues, type Inputs } from '../inputs.js';
import { executeRollout } from '../rollout/execute.js';
import { planHost, settleTarget, type HostPlan } from '../rollout/plan.js';
import { releaseLeftoverLock } from './lock.js';
import { GitHubDeployment, gitHub } from './gates.js';
import { JOURNAL_STATE, type Journal } from './journal.js';
import { connect, findServers, readHosts } from './preflight.js';
import { rolloutDeps } from './index.js';

/** The hosts a journal leaves to settle: those touched, and those with a server out of service. */
export function hostsToSettle(journal: Journal): string[] {
  const fromServers = journal.outOfService.map((server) => server.slice(0, server.lastIndexOf(':')));
  return [...new Set([...journal.touched, ...fromServers])];
}

/**
 * The post step's repair: each journaled host back to both roles on one release (the master's
 * when it is in service on every load balancer, else the backup's), every server it took out put
 * back once its container is healthy; then the lock goes. A repair that fails leaves the lock,
 * which the next deploy reports as stale (its run has ended) and may take over.
 */
export async function finishInterruptedRollout(inputs: Inputs, config: Config, saved: string, lock: string): Promise<void> {
  const journal = JSON.parse(saved) as Journal;
  const env = config.environments[journal.environment];
  if (!env) return;
  const hosts = hostsToSettle(journal).filter((host) => env.hosts.includes(host));
  core.info(`The rollout of ${env.name} was cut short: settling ${hosts.join(', ') || 'nothing'}`);
  const connected = await connect(inputs, config, env);
  try {
    const current = await readHosts(connected, config.app);
    const lb = await findServers(connected, { tookOverLock: false, heldBefore: journal.heldOn });
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
    if (target) {
      const secrets = readSecretValues(env.container.secrets, `environments.${env.name}.container.secrets`);
      const result = await executeRollout(
        { target, hosts: plans, batches: plans.map((p) => [p.host]) },
        { ...rolloutDeps(inputs, config, env, connected, lb, secrets), rollBackOnFailure: false },
      );
      if (!result.ok) throw new Error(`could not settle ${result.failures.map((f) => f.message).join('; ')}`);
    }
    core.saveState(JOURNAL_STATE, '');
  } finally {
    connected.dispose();
  }
  if (lock) await releaseLeftoverLock(inputs, config, lock);
  const github = gitHub(inputs);
  if (github && journal.deploymentId) {
    await GitHubDeployment.existing(github, inputs, env, journal.deploymentId).set('failure', 'cancelled; the post step settled every host');
  }
}
