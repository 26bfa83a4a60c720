// Releases of the test app (test/app), built and pushed with the runner's own engine and the
// BuildKit-capable CLI, as the build stage would: what the hosts then pull from the registry.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Release } from '../../../src/rollout/ports.js';
import { REPO_ROOT, type Estate } from './estate.js';

const run = promisify(execFile);

export interface TestAppBuild {
  /** Default: the estate registry's clay/demo. Tests that must not meet others use their own. */
  repository?: string;
  version: string;
  /** /healthcheck answers 404, so both HEALTHCHECK and HTTP probes fail. */
  broken?: boolean;
  startDelaySeconds?: number;
  /** GET / answers 500 (a number N: one time in N, at random) while /healthcheck answers 200. */
  failingPages?: boolean | number;
  /** The app prints workflow commands, a fence and HTML to its log (test/app/Dockerfile). */
  hostileLog?: boolean;
  /** /bin/worker exits at once: the worker role never becomes ready (test/app/worker.sh). */
  workerFails?: boolean;
  /**
   * A new image, created now, even where the runner's build cache already holds this release
   * (from an earlier run): for tests that order images by age, which a cache hit's old creation
   * time would reorder.
   */
  fresh?: boolean;
}

export interface TestAppRelease extends Release {
  repository: string;
  /** repository:version */
  tag: string;
  /** The image ID (config digest), as `docker images` lists it. */
  id: string;
  created: Date;
}

/** Builds test/app with the given build args, pushes it, and returns it pinned by digest. */
export async function pushTestApp(estate: Estate, build: TestAppBuild): Promise<TestAppRelease> {
  const repository = build.repository ?? `${estate.registry.address}/clay/demo`;
  const tag = `${repository}:${build.version}`;
  const config = await mkdtemp(join(tmpdir(), 'deploy-action-test-docker-'));
  const docker = (args: string[], input?: string) => {
    const child = run(estate.dockerCli, args, {
      env: { ...process.env, DOCKER_HOST: estate.runnerDockerHost, DOCKER_CONFIG: config, DOCKER_BUILDKIT: '1' },
      maxBuffer: 16 * 1024 * 1024,
    });
    if (input !== undefined) child.child.stdin?.end(input);
    return child.then(({ stdout }) => stdout);
  };
  try {
    await run('bash', [join(REPO_ROOT, 'test/app/prepare.sh')]);
    const { address, username, password } = estate.registry;
    await docker(['login', address, '--username', username, '--password-stdin'], password);
    await docker([
      'build',
      '--build-arg', `DEPLOY_VERSION=${build.version}`,
      '--build-arg', `BROKEN=${build.broken ? 1 : 0}`,
      '--build-arg', `START_DELAY=${build.startDelaySeconds ?? 0}`,
      '--build-arg', `FAILING_PAGES=${build.failingPages === true ? 1 : build.failingPages || 0}`,
      '--build-arg', `HOSTILE_LOG=${build.hostileLog ? 1 : 0}`,
      '--build-arg', `WORKER_FAILS=${build.workerFails ? 1 : 0}`,
      ...(build.fresh ? ['--build-arg', `BUILD_NONCE=${randomUUID()}`] : []),
      '--tag', tag,
      join(REPO_ROOT, 'test/app'),
    ]);
    await docker(['push', tag]);
    const [image] = JSON.parse(await docker(['image', 'inspect', tag])) as {
      Id: string;
      Created: string;
      RepoDigests: string[];
    }[];
    const ref = image?.RepoDigests.find((digested) => digested.startsWith(`${repository}@`));
    if (!image || !ref) throw new Error(`${tag} was pushed but has no digest of ${repository}`);
    return {
      repository,
      version: build.version,
      tag,
      ref,
      digest: ref.slice(ref.indexOf('@') + 1),
      id: image.Id,
      created: new Date(image.Created),
    };
  } finally {
    await rm(config, { recursive: true, force: true });
  }
}
