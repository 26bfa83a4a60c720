// The commands that move releases: deploy (the run's tag), rollback (an earlier release this
// environment ran, or previous), and plan (what a deploy would do, changing nothing).
import * as core from '@actions/core';
import type { Config } from '../config/schema.js';
import { InputError, type Inputs } from '../inputs.js';
import { parseRelease, releaseFromRun } from '../release/version.js';
import { writeSummary } from '../report/summary.js';
import { lockHost } from '../rollout/lock.js';
import { describePlan, planRollout } from '../rollout/plan.js';
import { selectEnvironment } from './environment.js';
import { connect, findServers, pinRelease, readHosts } from './preflight.js';
import { rollOut } from './rollout.js';
import { runningVersion } from './target.js';

export async function deploy(inputs: Inputs, config: Config, signal?: AbortSignal): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  const release = releaseFromRun(inputs.version, inputs.run.ref);
  return rollOut(inputs, config, env, { task: 'deploy', tag: release.tag, digest: inputs.digest }, signal);
}

/**
 * command: rollback — `previous` (the release before the current one in the environment's
 * history), or an earlier release tag this environment ran, at the digest it ran.
 */
export async function rollback(inputs: Inputs, config: Config, signal?: AbortSignal): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  if (!inputs.version) throw new InputError('version: required for rollback: a release tag like v1.3.0, or previous');
  const version = inputs.version === 'previous' ? 'previous' : parseRelease(inputs.version, 'version').tag;
  return rollOut(inputs, config, env, { task: 'rollback', version, allowNeverDeployed: inputs.allowNeverDeployed }, signal);
}

/** command: plan — what a deploy would do on each host, changing nothing. */
export async function plan(inputs: Inputs, config: Config): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  const release = releaseFromRun(inputs.version, inputs.run.ref);
  const connected = await connect(inputs, config, env);
  try {
    const current = await readHosts(connected, config.app);
    const target = await pinRelease(connected, config.image, release.tag, inputs.digest, 'the digest input (the build job\'s)');
    await findServers(connected, { tookOverLock: false, running: current });
    const lines = [
      ...describePlan(planRollout(target, env.hosts.map((host) => ({ host, current: current.get(host) ?? {} })), env.maxParallel, env.canary?.hold)),
      `Load balancers: ${env.haproxy ? env.haproxy.hosts.join(', ') : 'none (no haproxy section)'}`,
      env.releaseCommand
        ? `Release command: ${JSON.stringify(env.releaseCommand.command)} on ${lockHost(env.hosts)}, after the pull, before any traffic moves (at most ${env.releaseCommand.timeout} s)`
        : 'Release command: none',
    ];
    core.info(lines.join('\n'));
    await writeSummary((s) => s.addHeading(`Plan: ${target.version} to ${env.name}`, 3).addCodeBlock(lines.join('\n')));
    return { version: target.version, image: config.image, digest: target.digest, 'image-ref': target.ref, 'previous-version': runningVersion(current), plan: lines.join('\n') };
  } finally {
    connected.dispose();
  }
}
