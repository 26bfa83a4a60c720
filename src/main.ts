// Runs one command: read inputs and config, dispatch, set outputs. Errors surface as one
// failure message; config errors also annotate the config file.
import * as core from '@actions/core';
import { DOCKER_CONFIG_STATE, build, removeLeftoverDockerConfig } from './commands/build.js';
import { deploy } from './commands/deploy.js';
import { plan } from './commands/plan.js';
import { rollback } from './commands/rollback.js';
import { LOCK_STATE } from './pipeline/lock.js';
import { JOURNAL_STATE } from './pipeline/journal.js';
import { DeployFailed, finishCutShort } from './pipeline/index.js';
import { GateError } from './pipeline/gates.js';
import { haproxyConfig } from './commands/haproxy-config.js';
import { CheckFailed, check } from './commands/check.js';
import { status } from './commands/status.js';
import { logs } from './commands/logs.js';
import { run } from './commands/run.js';
import { unlock } from './commands/unlock.js';
import { ONE_OFF_STATE, removeLeftoverOneOff } from './pipeline/one-off.js';
import { ConfigError } from './config/fields.js';
import type { Config } from './config/schema.js';
import { readConfig, readInputs, readState, type Command, type Inputs } from './inputs.js';
import { preformatted, writeSummary } from './report/summary.js';

type Handler = (inputs: Inputs, config: Config, signal: AbortSignal) => Promise<Record<string, string>>;

const handlers: Record<Command, Handler> = {
  build,
  deploy,
  rollback,
  plan,
  'haproxy-config': haproxyConfig,
  check,
  status,
  unlock,
  logs,
  run,
};

async function fail(error: unknown, configFile: string | undefined): Promise<void> {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof ConfigError) {
    for (const problem of error.problems) {
      core.error(`${problem.path}: ${problem.message}`, { title: 'deploy config', file: error.source });
    }
  } else if (error instanceof GateError) {
    core.error(message, { title: error.key, ...(configFile ? { file: configFile } : {}) });
  }
  core.setFailed(message);
  // A rollout and a check write their own table; every other failure still leaves its reason in the summary.
  if (!(error instanceof DeployFailed || error instanceof CheckFailed)) {
    await writeSummary((s) => s.addHeading('❌ deploy-action failed', 3).addRaw(preformatted(message))).catch(() => undefined);
  }
}

/**
 * GitHub cancels a job with SIGINT, then SIGTERM 7.5 s later, then kills the process tree: either
 * signal cancels the command, which then settles what it has in flight and exits on its own.
 */
function cancellation(): AbortController {
  const controller = new AbortController();
  const cancel = (signal: NodeJS.Signals) => {
    if (!controller.signal.aborted) core.warning(`${signal}: the job is being cancelled; no new step starts, what is in flight is settled`);
    controller.abort();
  };
  process.on('SIGINT', cancel);
  process.on('SIGTERM', cancel);
  return controller;
}

export async function main(): Promise<void> {
  let configFile: string | undefined;
  const cancelled = cancellation();
  try {
    core.saveState('post', 'true');
    const inputs = readInputs();
    configFile = inputs.configFile;
    const config = await readConfig(inputs);
    const outputs = await handlers[inputs.command](inputs, config, cancelled.signal);
    for (const [name, value] of Object.entries(outputs)) core.setOutput(name, value);
  } catch (error) {
    await fail(error, configFile);
  }
}

/** The post step: only a build or deploy cut short (cancelled job) leaves something to clean up. */
export async function post(): Promise<void> {
  const dockerConfig = readState(DOCKER_CONFIG_STATE);
  if (dockerConfig) {
    await removeLeftoverDockerConfig(dockerConfig).catch((error: Error) =>
      core.warning(`Could not remove the private DOCKER_CONFIG ${dockerConfig}: ${error.message}`),
    );
  }
  const lock = readState(LOCK_STATE);
  const journal = readState(JOURNAL_STATE);
  const oneOff = readState(ONE_OFF_STATE);
  if (!lock && !journal && !oneOff) return;
  try {
    const inputs = readInputs();
    const config = await readConfig(inputs);
    // A release command or task still running: stop it before its lock goes.
    if (oneOff) await removeLeftoverOneOff(inputs, config, oneOff);
    if (!lock && !journal) return;
    await finishCutShort(inputs, config, { journal, lock });
  } catch (error) {
    core.warning(`Could not finish the rollout cut short, nor release its lock: ${error instanceof Error ? error.message : String(error)}`);
  }
}
