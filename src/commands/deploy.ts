// command: deploy — the run's release tag (pinned to the build job's digest) onto one environment.
import type { Config } from '../config/schema.js';
import { selectEnvironment } from '../config/environment.js';
import type { Inputs } from '../inputs.js';
import { runPipeline } from '../pipeline/index.js';
import { releaseFromRun } from '../release/version.js';

export async function deploy(inputs: Inputs, config: Config, signal?: AbortSignal): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  const release = releaseFromRun(inputs.version, inputs.run.ref);
  return runPipeline(inputs, config, env, { task: 'deploy', tag: release.tag, digest: inputs.digest }, signal);
}
