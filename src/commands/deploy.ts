// command: deploy (and the rollout shared with rollback) — pre-flight on every host, then the
// backup-first rollout, then release the lock and prune old images.
import * as core from '@actions/core';
import type { Config, EnvironmentConfig } from '../config/schema.js';
import { InputError, readSecretValues, type Inputs } from '../inputs.js';
import { previousVersion as previousInHistory } from '../release/history.js';
import { parseRelease, releaseFromRun } from '../release/version.js';
import { rolloutSummary, writeSummary } from '../report/summary.js';
import { infoUntrusted } from '../report/untrusted.js';
import { executeRollout, type RolloutDeps } from '../rollout/execute.js';
import { acquireDeployLock } from '../rollout/lock.js';
import { describePlan, planRollout, type HostTarget } from '../rollout/plan.js';
import type { DeployLock, Release } from '../rollout/ports.js';
import { containerName, containerSpec, lockName } from '../rollout/spec.js';
import { selectEnvironment } from './environment.js';
import { GitHubDeployment, checkApproval, checkPromotionGate, gitHub, runUrl } from './gates.js';
import { connect, coreLogger, findServers, onEveryHost, pinRelease, readHosts, type Connected } from './preflight.js';

/** Saved for the post step, which releases the lock when the job was cancelled mid-deploy. */
export const LOCK_STATE = 'deploy-lock';
const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

export class DeployFailed extends Error {
  override name = 'DeployFailed';
}

export interface SavedLock {
  host: string;
  name: string;
  runId: string;
}

/** The release most hosts' masters run (before this rollout: the previous-version output). */
export function runningVersion(current: Map<string, HostTarget>): string {
  const counts = new Map<string, number>();
  for (const host of current.values()) {
    const version = host.master?.version ?? host.backup?.version;
    if (version) counts.set(version, (counts.get(version) ?? 0) + 1);
  }
  return [...counts].sort((a, b) => b[1] - a[1])[0]?.[0] ?? '';
}

async function takeLock(inputs: Inputs, config: Config, connected: Connected, target: Release): Promise<SavedLock> {
  const host = connected.hosts.values().next().value!;
  const { actor, workflow, runId, runAttempt } = inputs.run;
  const github = gitHub(inputs);
  const mine: DeployLock = {
    holder: `${actor || 'someone'} (${workflow || 'workflow'} run ${runId || '?'}, attempt ${runAttempt})`,
    runUrl: runUrl(inputs),
    runId: runId || `local-${process.pid}`,
    version: target.version,
    since: new Date(),
  };
  const name = lockName(config.app);
  await acquireDeployLock(host, name, mine, target.ref, {
    config: connected.env.lock,
    runEnded: async (id) => {
      if (!github || !/^\d+$/.test(id)) return undefined;
      return github.runEnded(id).catch((error: Error) => {
        core.info(`Could not ask GitHub whether run ${id} has ended: ${error.message}`);
        return undefined;
      });
    },
    sleep,
    now: () => new Date(),
    warn: (line) => core.warning(line),
    info: infoUntrusted,
  });
  const saved = { host: host.host, name, runId: mine.runId };
  core.saveState(LOCK_STATE, JSON.stringify(saved));
  core.info(`Took the deploy lock ${name} on ${host.host}`);
  return saved;
}

/** Which release a rollout puts on the hosts, decided once the current state is known. */
export interface RolloutRequest {
  task: 'deploy' | 'rollback';
  /** The release tag; for a rollback to `previous`, found from history and the hosts. */
  tag(connected: Connected, current: Map<string, HostTarget>): Promise<string>;
  /** The digest the build job handed over, or '' (then the registry's digest for the tag). */
  digest: string;
}

/**
 * Puts a release (pinned to its registry digest) on every host of `env`. Deploy and rollback
 * alike, so a rollback drops no request either. Every check that can refuse (approval,
 * promotion, the registry, the hosts) runs before the first container changes.
 */
export async function rollOut(inputs: Inputs, config: Config, env: EnvironmentConfig, request: RolloutRequest): Promise<Record<string, string>> {
  const secrets = readSecretValues(env.container.secrets, `environments.${env.name}.container.secrets`);
  const github = gitHub(inputs);
  await checkApproval(github, env);
  const connected = await core.group(`Connect to ${env.name} (${env.hosts.length} hosts${env.haproxy ? ` and ${env.haproxy.host}` : ''})`, () =>
    connect(inputs, config, env),
  );
  let lock: SavedLock | undefined;
  let record: GitHubDeployment | undefined;
  try {
    const { current, target, lb } = await core.group('Pre-flight', async () => {
      const current = await readHosts(connected, config.app);
      const tag = await request.tag(connected, current);
      const target = await pinRelease(connected, config.image, tag, request.digest);
      if (request.task === 'deploy') await checkPromotionGate(github, env, target);
      record = await GitHubDeployment.open(github, inputs, env, { ...target, image: config.image }, request.task);
      // Pulls change no container, so they come before the lock: the lock is a container
      // created from this very image, which must be on the host first.
      await onEveryHost(connected.hosts, `Pulling ${target.ref}`, async (host) => {
        await host.pull(target.ref, connected.auth, (line) => infoUntrusted(`[${host.host}] ${line}`));
        core.info(`[${host.host}] has ${target.ref}`);
      });
      lock = await takeLock(inputs, config, connected, target);
      return { current, target, lb: await findServers(connected) };
    });
    const plan = planRollout(target, env.hosts.map((host) => ({ host, current: current.get(host) ?? {} })), env.maxParallel);
    core.info(describePlan(plan).join('\n'));
    const now = () => new Date();
    const deps: RolloutDeps = {
      hosts: connected.hosts,
      ...(lb ? { lb } : {}),
      containerName: (role) => containerName(config.app, role),
      hostPort: (role) => env.ports[role],
      spec: (role, release) => containerSpec({ app: config.app, environment: env, secrets, runUrl: runUrl(inputs), now }, role, release),
      health: { path: env.health.path, timeoutSeconds: env.health.timeout, intervalSeconds: env.health.interval },
      stopTimeoutSeconds: env.container['stop-timeout'],
      log: coreLogger(env.maxParallel === 1),
      sleep,
      pollMs: 250,
    };
    const result = await executeRollout(plan, deps);
    const previous = runningVersion(current);
    await writeSummary((s) => rolloutSummary(s, { environment: env.name, target, result }));
    if (!result.ok) {
      const failure = result.failure!;
      const rollback = result.rollbackErrors.length === 0
        ? `every host touched was rolled back to the release it ran before (${result.hosts.filter((h) => h.rolledBack).map((h) => h.host).join(', ')})`
        : `ROLLBACK INCOMPLETE:\n  ${result.rollbackErrors.join('\n  ')}`;
      throw new DeployFailed(`${target.version} to ${env.name} failed on ${failure.host}: ${failure.role} ${failure.reason}; ${rollback}`);
    }
    await record?.set('success', `${target.version} on ${env.hosts.length} hosts`);
    await core.group('Prune old images', async () => {
      const protect = [target.ref, ...[...current.values()].flatMap((h) => [h.master?.ref, h.backup?.ref].filter((r): r is string => !!r))];
      await onEveryHost(connected.hosts, 'Pruning images', async (host) => {
        const removed = await host.pruneImages(config.image, env.retainImages, protect);
        core.info(`[${host.host}] removed ${removed.length} old image(s)${removed.length ? `: ${removed.join(', ')}` : ''}`);
      });
    });
    return {
      version: target.version,
      image: config.image,
      digest: target.digest,
      'image-ref': target.ref,
      'previous-version': previous,
      ...(record ? { 'deployment-id': String(record.id) } : {}),
    };
  } catch (error) {
    await record?.set('failure', (error instanceof Error ? error.message : String(error)).split('\n')[0]!).catch((e: Error) =>
      core.warning(`Could not mark the deployment failed: ${e.message}`),
    );
    throw error;
  } finally {
    if (lock) {
      const held = lock;
      const host = connected.hosts.get(held.host)!;
      await host.releaseLock(held.name, held.runId).then(
        () => core.saveState(LOCK_STATE, ''),
        (error: Error) => core.warning(`Could not release the deploy lock on ${held.host}: ${error.message}`),
      );
    }
    connected.dispose();
  }
}

export async function deploy(inputs: Inputs, config: Config): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  const release = releaseFromRun(inputs.version, inputs.run.ref);
  return rollOut(inputs, config, env, { task: 'deploy', tag: async () => release.tag, digest: inputs.digest });
}

/**
 * command: rollback — an earlier release, or `previous`: the release before the current one in
 * the environment's deployment history, else the newest other release the hosts still keep.
 */
export async function rollback(inputs: Inputs, config: Config): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  if (!inputs.version) throw new InputError('version: required for rollback: a release tag like v1.3.0, or previous');
  const explicit = inputs.version === 'previous' ? undefined : parseRelease(inputs.version, 'version').tag;
  return rollOut(inputs, config, env, {
    task: 'rollback',
    digest: '',
    tag: async (connected, current) => explicit ?? findPrevious(inputs, config, connected, current),
  });
}

async function findPrevious(inputs: Inputs, config: Config, connected: Connected, current: Map<string, HostTarget>): Promise<string> {
  const running = runningVersion(current);
  if (!running) throw new InputError(`version: previous: nothing of ${config.app} runs in ${connected.env.name} yet`);
  const github = gitHub(inputs);
  if (github) {
    const fromHistory = previousInHistory(await github.deployments(connected.env.name), running);
    if (fromHistory) {
      core.info(`previous: ${fromHistory} (the release before ${running} in the deployment history of ${connected.env.name})`);
      return fromHistory;
    }
  }
  const first = connected.hosts.values().next().value!;
  const kept = (await first.releases(config.image)).find((r) => r.version !== running);
  if (!kept) throw new InputError(`version: previous: no release before ${running} in the deployment history or on ${first.host}; give a tag`);
  core.info(`previous: ${kept.version} (the newest other release ${first.host} keeps; no deployment history)`);
  return kept.version;
}

/** command: plan — what a deploy would do on each host, changing nothing. */
export async function plan(inputs: Inputs, config: Config): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  const release = releaseFromRun(inputs.version, inputs.run.ref);
  const connected = await connect(inputs, config, env);
  try {
    const current = await readHosts(connected, config.app);
    const target = await pinRelease(connected, config.image, release.tag, inputs.digest);
    await findServers(connected);
    const lines = describePlan(planRollout(target, env.hosts.map((host) => ({ host, current: current.get(host) ?? {} })), env.maxParallel));
    core.info(lines.join('\n'));
    await writeSummary((s) => s.addHeading(`Plan: ${target.version} to ${env.name}`, 3).addCodeBlock(lines.join('\n')));
    return { version: target.version, image: config.image, digest: target.digest, 'image-ref': target.ref, 'previous-version': runningVersion(current), plan: lines.join('\n') };
  } finally {
    connected.dispose();
  }
}

/** The post step: a cancelled job leaves its lock behind; release it if this run still holds it. */
export async function releaseLeftoverLock(inputs: Inputs, config: Config, saved: string): Promise<void> {
  const lock = JSON.parse(saved) as SavedLock;
  const env = Object.values(config.environments).find((e) => e.hosts.includes(lock.host));
  if (!env) return;
  // Only the lock's host: the load balancer plays no part in releasing it.
  const { haproxy: _unused, ...hostOnly } = env;
  const connected = await connect(inputs, config, { ...hostOnly, hosts: [lock.host] });
  try {
    const released = await connected.hosts.get(lock.host)!.releaseLock(lock.name, lock.runId);
    core.info(released ? `Released the deploy lock ${lock.name} on ${lock.host} left by this run` : 'No deploy lock of this run was left');
  } finally {
    connected.dispose();
  }
}
