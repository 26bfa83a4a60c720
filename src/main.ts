// Runs one command: read inputs and config, dispatch, set outputs. Errors surface as one
// failure message; config errors also annotate the config file.
import * as core from '@actions/core';
import { build } from './commands/build.js';
import { LOCK_STATE, deploy, plan, releaseLeftoverLock } from './commands/deploy.js';
import { haproxyConfig } from './commands/haproxy-config.js';
import { ConfigError } from './config/fields.js';
import type { Config } from './config/schema.js';
import { readConfig, readInputs, readState, type Command, type Inputs } from './inputs.js';

type Handler = (inputs: Inputs, config: Config) => Promise<Record<string, string>>;

const notYet = (command: Command): Handler => async () => {
  throw new Error(`command: ${command} is not implemented yet (available: build, deploy, plan, haproxy-config)`);
};

const handlers: Record<Command, Handler> = {
  build,
  deploy,
  rollback: notYet('rollback'),
  plan,
  'haproxy-config': haproxyConfig,
};

function fail(error: unknown): void {
  if (error instanceof ConfigError) {
    for (const problem of error.problems) {
      core.error(`${problem.path}: ${problem.message}`, { title: 'deploy config', file: error.source });
    }
  }
  core.setFailed(error instanceof Error ? error.message : String(error));
}

export async function main(): Promise<void> {
  try {
    core.saveState('post', 'true');
    const inputs = readInputs();
    const config = await readConfig(inputs);
    const outputs = await handlers[inputs.command](inputs, config);
    for (const [name, value] of Object.entries(outputs)) core.setOutput(name, value);
  } catch (error) {
    fail(error);
  }
}

/** The post step: only a deploy cut short (cancelled job) leaves something to clean up. */
export async function post(): Promise<void> {
  const saved = readState(LOCK_STATE);
  if (!saved) return;
  try {
    const inputs = readInputs();
    await releaseLeftoverLock(inputs, await readConfig(inputs), saved);
  } catch (error) {
    core.warning(`Could not release the deploy lock: ${error instanceof Error ? error.message : String(error)}`);
  }
}
