// command: run — a one-off task (the `task` input) in a container of the release the environment
// runs now, by the release command's mechanism (pipeline/one-off.ts): the app's image by digest,
// its env, secrets and volumes, on the host that holds the deploy lock, under that lock (so no
// deploy moves the release under it), output streamed as untrusted text, bounded by `timeout`.
// The step fails when the task does not exit 0, quoting its last lines.
import * as core from '@actions/core';
import type { Config } from '../config/schema.js';
import { readSecretValues, type Inputs } from '../inputs.js';
import { htmlText, preformatted, writeSummary } from '../report/summary.js';
import { lockHost } from '../rollout/lock.js';
import type { HostTarget } from '../rollout/plan.js';
import type { Release } from '../rollout/ports.js';
import { oneOffSpec } from '../rollout/spec.js';
import { describeEnd, failureText, runOneOff, succeeded } from '../pipeline/one-off.js';
import { unfinished } from '../pipeline/journal.js';
import { releaseLock, takeLock, type HeldLock } from '../pipeline/lock.js';
import { selectEnvironment } from '../config/environment.js';
import { gitHub, runUrl } from '../pipeline/gates.js';
import { PreflightError, connect, readHosts, type Connected } from '../pipeline/preflight.js';
import { runningVersion } from '../pipeline/target.js';

export class TaskFailed extends Error {
  override name = 'TaskFailed';
}

/** The release most hosts' masters run, as one of them runs it (pinned by digest). */
export function runningRelease(current: Map<string, HostTarget>): Release | undefined {
  const version = runningVersion(current);
  const hosts = [...current.keys()].sort();
  for (const host of hosts) {
    for (const release of [current.get(host)?.master, current.get(host)?.backup]) {
      if (release?.version === version && release.digest) return release;
    }
  }
  return undefined;
}

async function releaseNow(connected: Connected, config: Config): Promise<Release> {
  const release = runningRelease(await readHosts(connected, config.app));
  if (!release) throw new PreflightError(`nothing ${connected.env.name} runs has a release tag and a registry digest: deploy a release first`);
  return release;
}

export async function run(inputs: Inputs, config: Config, signal?: AbortSignal): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  const secrets = readSecretValues(env.container.secrets, `environments.${env.name}.container.secrets`);
  const connected = await connect(inputs, config, env);
  let lock: HeldLock | undefined;
  try {
    const host = connected.hosts.get(lockHost(env.hosts))!;
    // The lock is a container of the image, which must be on its host first; a pull changes nothing.
    let release = await releaseNow(connected, config);
    await host.pull(release.ref, connected.auth);
    const taken = await takeLock(inputs, config, connected, release, gitHub(inputs), signal);
    lock = taken.held;
    // A stale lock taken over (lock.takeover) may come with a rollout cut short: a deploy finishes that, not a task.
    const pending = taken.leftBehind ? unfinished(taken.leftBehind) : [];
    if (pending.length > 0) {
      throw new TaskFailed(`the deploy lock taken over was left by a run that ended mid-rollout (${pending.join('; ')}): deploy or roll back ${env.name} first, which finishes it`);
    }
    // A deploy may have finished in between: the task runs what runs now.
    const now = await releaseNow(connected, config);
    if (now.digest !== release.digest) await host.pull(now.ref, connected.auth);
    release = now;
    if (signal?.aborted) throw new TaskFailed(`cancelled before the task started in ${env.name}`);
    const spec = oneOffSpec({ app: config.app, environment: env, secrets, runUrl: runUrl(inputs), now: () => new Date() }, 'run', release, inputs.task);
    const result = await core.group(`Run ${JSON.stringify(inputs.task)} on ${host.host} (${release.version})`, () =>
      runOneOff(host, spec, { timeoutSeconds: inputs.timeoutSeconds, ...(signal ? { signal } : {}) }),
    );
    await writeSummary((s) => {
      s.addHeading(`${succeeded(result) ? '✅' : '❌'} Task in ${env.name}`, 3);
      s.addRaw(`<p>${htmlText(`${JSON.stringify(result.command)} in ${release.version} on ${result.host}: ${describeEnd(result)} after ${result.seconds} s`)}</p>`, true);
      s.addRaw(`<details><summary>Last lines of its output</summary>\n${preformatted(result.lastLines || '(no output)')}</details>\n`, true);
    });
    if (!succeeded(result)) throw new TaskFailed(failureText(`the task in ${env.name}`, result, `the timeout input (${inputs.timeoutSeconds} s)`));
    return { version: release.version, 'image-ref': release.ref, 'exit-code': String(result.exitCode) };
  } finally {
    if (lock) await releaseLock(connected, lock);
    connected.dispose();
  }
}
