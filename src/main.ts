// Runs one command: read inputs and config, dispatch, set outputs. Errors surface as one
// failure message; config errors also annotate the config file.
import * as core from '@actions/core';
import { build } from './commands/build.js';
import { ConfigError } from './config/fields.js';
import { readConfig, readInputs, type Command, type Inputs } from './inputs.js';
import type { Config } from './config/schema.js';

type Handler = (inputs: Inputs, config: Config) => Promise<Record<string, string>>;

const notYet = (command: Command): Handler => async () => {
  throw new Error(`command: ${command} is not implemented yet (available: build)`);
};

const handlers: Record<Command, Handler> = {
  build,
  deploy: notYet('deploy'),
  rollback: notYet('rollback'),
  plan: notYet('plan'),
  'haproxy-config': notYet('haproxy-config'),
};

export async function main(): Promise<void> {
  try {
    const inputs = readInputs();
    const config = await readConfig(inputs);
    const outputs = await handlers[inputs.command](inputs, config);
    for (const [name, value] of Object.entries(outputs)) core.setOutput(name, value);
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) {
        core.error(`${problem.path}: ${problem.message}`, { title: 'deploy config', file: error.source });
      }
    }
    core.setFailed(error instanceof Error ? error.message : String(error));
  }
}
