// command: rollback — `previous` (the release before the current one in the environment's
// history), or an earlier release tag this environment ran, at the digest it ran; the same
// pipeline as a deploy, so a rollback drops no request either.
import type { Config } from '../config/schema.js';
import { selectEnvironment } from '../config/environment.js';
import { InputError, type Inputs } from '../inputs.js';
import { runPipeline } from '../pipeline/index.js';
import { parseRelease } from '../release/version.js';

export async function rollback(inputs: Inputs, config: Config, signal?: AbortSignal): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  if (!inputs.version) throw new InputError('version: required for rollback: a release tag like v1.3.0, or previous');
  const version = inputs.version === 'previous' ? 'previous' : parseRelease(inputs.version, 'version').tag;
  return runPipeline(inputs, config, env, { task: 'rollback', version, allowNeverDeployed: inputs.allowNeverDeployed }, signal);
}
