// A Docker engine with nothing in it (test/estate/scratch-engine.sh): no image, no build cache,
// as on a fresh runner. For the build cache's test and bench.
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './estate.js';

const run = promisify(execFile);
const SCRIPT = join(REPO_ROOT, 'test/estate/scratch-engine.sh');

export interface ScratchEngine {
  /** unix:///... for DOCKER_HOST. */
  dockerHost: string;
  stop(): Promise<void>;
}

export async function startScratchEngine(): Promise<ScratchEngine> {
  const dir = await mkdtemp(join(tmpdir(), 'scratch-engine-'));
  const { stdout } = await run('bash', [SCRIPT, 'start', dir]);
  return { dockerHost: stdout.trim(), stop: async () => void (await run('bash', [SCRIPT, 'stop', dir])) };
}

/** Runs `work` against a new empty engine, stopped (and its files removed) afterwards. */
export async function withScratchEngine<T>(work: (dockerHost: string) => Promise<T>): Promise<T> {
  const engine = await startScratchEngine();
  try {
    return await work(engine.dockerHost);
  } finally {
    await engine.stop();
  }
}
