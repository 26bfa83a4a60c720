// command: plan — what a deploy would do on each host, changing nothing.
import * as core from '@actions/core';
import type { Config } from '../config/schema.js';
import { selectEnvironment } from '../config/environment.js';
import type { Inputs } from '../inputs.js';
import { connect, findServers, pinRelease, readHosts } from '../pipeline/preflight.js';
import { runningVersion } from '../pipeline/target.js';
import { releaseFromRun } from '../release/version.js';
import { writeSummary } from '../report/summary.js';
import { describePlan, planRollout } from '../rollout/plan.js';
import type { RoleContainer } from '../rollout/ports.js';
import { describeRolePlan, planRoles } from '../rollout/roles.js';

export async function plan(inputs: Inputs, config: Config): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  const release = releaseFromRun(inputs.version, inputs.run.ref);
  const connected = await connect(inputs, config, env);
  try {
    const current = await readHosts(connected, config.app);
    const target = await pinRelease(connected, config.image, release.tag, inputs.digest, 'the digest input (the build job\'s)');
    await findServers(connected, { tookOverLock: false, running: current });
    const roleContainers = new Map<string, RoleContainer[]>();
    if (env.roles.length > 0) for (const [host, driver] of connected.hosts) roleContainers.set(host, await driver.roleContainers(config.app));
    const lines = [
      ...describePlan(planRollout(target, env.hosts.map((host) => ({ host, current: current.get(host) ?? {} })), env.maxParallel, env.canary?.hold)),
      ...describeRolePlan(planRoles(config.app, target, env.roles, roleContainers)),
      `Load balancers: ${env.haproxy ? env.haproxy.hosts.join(', ') : 'none (no haproxy section)'}`,
    ];
    core.info(lines.join('\n'));
    await writeSummary((s) => s.addHeading(`Plan: ${target.version} to ${env.name}`, 3).addCodeBlock(lines.join('\n')));
    return { version: target.version, image: config.image, digest: target.digest, 'image-ref': target.ref, 'previous-version': runningVersion(current), plan: lines.join('\n') };
  } finally {
    connected.dispose();
  }
}
