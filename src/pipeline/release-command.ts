// The release command as a stage of the deploy: once per deploy, on the host holding the deploy
// lock, after the pull (every host has the new image) and the gates, before any traffic moves.
// It runs in a one-off container of the new image with the app's env, secrets and volumes
// (pipeline/one-off.ts). Anything but exit code 0 stops the deploy with no container changed,
// quoting its last lines. A rollback runs it only with release-command.on-rollback: migrations
// go forward, and the release rolled back to must run against the schema as it is.
import * as core from '@actions/core';
import type { Config, EnvironmentConfig } from '../config/schema.js';
import type { Inputs } from '../inputs.js';
import { htmlText, preformatted, writeSummary } from '../report/summary.js';
import { lockHost } from '../rollout/lock.js';
import type { Release } from '../rollout/ports.js';
import { oneOffSpec } from '../rollout/spec.js';
import { runUrl } from './gates.js';
import type { Connected } from './preflight.js';
import { describeEnd, failureText, runOneOff, succeeded, type OneOffResult } from './one-off.js';

export class ReleaseCommandFailed extends Error {
  override name = 'ReleaseCommandFailed';
}

/** What the summary and the receipt say of it. */
export interface ReleaseCommandReport {
  host: string;
  command: string[];
  outcome: OneOffResult['outcome'];
  exitCode?: number;
  seconds: number;
}

/** Whether this deploy or rollback runs the release command. */
export function runsReleaseCommand(env: EnvironmentConfig, task: 'deploy' | 'rollback'): boolean {
  return env.releaseCommand !== undefined && (task === 'deploy' || env.releaseCommand['on-rollback']);
}

export async function runReleaseCommand(
  context: { inputs: Inputs; config: Config; connected: Connected; target: Release; task: 'deploy' | 'rollback'; secrets: Record<string, string> },
  signal?: AbortSignal,
): Promise<ReleaseCommandReport | undefined> {
  const { inputs, config, connected, target, task, secrets } = context;
  const env = connected.env;
  const settings = env.releaseCommand;
  if (!settings) return undefined;
  if (!runsReleaseCommand(env, task)) {
    core.info('release-command: not run on a rollback (release-command.on-rollback is false)');
    return undefined;
  }
  const host = connected.hosts.get(lockHost(env.hosts))!;
  const spec = oneOffSpec({ app: config.app, environment: env, secrets, runUrl: runUrl(inputs), now: () => new Date() }, 'release-command', target, settings.command);
  const result = await core.group(`Release command on ${host.host}`, () => runOneOff(host, spec, { timeoutSeconds: settings.timeout, ...(signal ? { signal } : {}) }));
  const report: ReleaseCommandReport = {
    host: result.host,
    command: result.command,
    outcome: result.outcome,
    ...(result.exitCode !== undefined ? { exitCode: result.exitCode } : {}),
    seconds: result.seconds,
  };
  await writeSummary((s) => {
    s.addHeading(`${succeeded(result) ? '✅' : '❌'} Release command of ${target.version} in ${env.name}`, 3);
    s.addRaw(`<p>${htmlText(`${JSON.stringify(result.command)} on ${result.host}: ${describeEnd(result)} after ${result.seconds} s`)}</p>`, true);
    if (!succeeded(result)) s.addRaw(`<details><summary>Its last lines</summary>\n${preformatted(result.lastLines || '(no output)')}</details>\n`, true);
  });
  if (result.outcome === 'cancelled') throw new ReleaseCommandFailed(`cancelled during the release command in ${env.name}: no container was changed`);
  if (!succeeded(result)) {
    throw new ReleaseCommandFailed(`${failureText('release-command', result, `release-command.timeout (${settings.timeout} s)`)}\nNo container was changed in ${env.name}.`);
  }
  return report;
}
