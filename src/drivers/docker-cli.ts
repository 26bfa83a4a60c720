// The Docker CLI on the runner, for the build stage only: the CLI is what gives BuildKit
// (secrets, caching, buildx on hosted runners), which the Engine API alone does not.
// Arguments are always arrays; the registry password travels on stdin only.
import * as exec from '@actions/exec';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import type { Builder } from '../release/build-cache.js';

const CONFIG_DIR_PREFIX = 'deploy-action-docker-';

/**
 * config.json of the private DOCKER_CONFIG. A config with no auths entry, no credsStore and no
 * credHelpers makes the CLI look for its platform's credential helper on PATH
 * (docker-credential-pass or -secretservice on Linux; DetectDefaultStore in docker/cli) and
 * hand the password to it, outside this directory. One placeholder entry keeps it in the file.
 */
const PRIVATE_CONFIG = { auths: { 'deploy-action.invalid': {} } };

export class DockerCliError extends Error {
  override name = 'DockerCliError';
}

export interface BuildRequest {
  context: string;
  dockerfile: string;
  target: string;
  args: Record<string, string>;
  /** Names of environment variables handed to BuildKit as secrets (id = name). */
  secrets: string[];
  labels: Record<string, string>;
  tags: string[];
  /** Cache flags (release/build-cache.ts planCache), passed as they are. */
  cacheFlags: string[];
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** How this machine's CLI runs a BuildKit build. */
type BuildKitPath = Builder & { argv: string[]; env: Record<string, string> };

export class DockerCli {
  private constructor(
    private readonly configDir: string,
    private readonly buildKit: BuildKitPath,
  ) {}

  /**
   * Opens a CLI session with a private DOCKER_CONFIG (credentials never land in the user's
   * ~/.docker) and finds a BuildKit path: `docker buildx build` where buildx is installed (hosted
   * runners), else `DOCKER_BUILDKIT=1 docker build` on a client that still has BuildKit built in
   * (before 23.0). Call dispose() in a finally block. `remember` gets the directory before it
   * exists, so that a cancelled job (no finally runs) can remove it in the post step.
   */
  static async open(tempDir: string, remember: (configDir: string) => void = () => undefined): Promise<DockerCli> {
    const configDir = join(tempDir, CONFIG_DIR_PREFIX + randomBytes(12).toString('hex'));
    remember(configDir);
    await mkdir(configDir, { mode: 0o700 });
    try {
      await writeFile(join(configDir, 'config.json'), JSON.stringify(PRIVATE_CONFIG), { mode: 0o600 });
      await shareCliSetup(configDir);
      const probe = (args: string[]) => run(configDir, args, { silent: true });
      const buildx = await probe(['buildx', 'version']);
      if (buildx.code === 0) {
        // --push: buildx pushes as it exports, where --load would first copy the image into the
        // engine (a whole tarball from a docker-container builder) for `docker push` to read back.
        // --provenance=false: one image manifest, as a loaded and pushed image has, not an index
        // (buildx 0.10 added provenance, and the flag; an older one has neither).
        const [, major, minor] = /v(\d+)\.(\d+)/.exec(buildx.stdout) ?? [];
        const provenance = major === undefined || Number(major) > 0 || Number(minor) >= 10 ? ['--provenance=false'] : [];
        const exportsCache = await builderExportsCache(probe);
        return new DockerCli(configDir, { kind: 'buildx', exportsCache, argv: ['buildx', 'build', '--push', ...provenance], env: {} });
      }
      const version = (await probe(['version', '--format', '{{.Client.Version}}'])).stdout.trim();
      const major = Number(version.split('.')[0]);
      if (Number.isFinite(major) && major > 0 && major < 23) {
        return new DockerCli(configDir, { kind: 'classic', exportsCache: false, argv: ['build'], env: { DOCKER_BUILDKIT: '1' } });
      }
      throw new DockerCliError(
        `the docker CLI (client ${version || 'not found'}) has no BuildKit: install buildx (docker/setup-buildx-action) before this step`,
      );
    } catch (error) {
      await rm(configDir, { recursive: true, force: true });
      throw error;
    }
  }

  /** The builder found, for the cache plan. */
  get builder(): Builder {
    return { kind: this.buildKit.kind, exportsCache: this.buildKit.exportsCache };
  }

  /** Whether build() pushed the tags itself (buildx); else push() each after it. */
  get pushesOnBuild(): boolean {
    return this.buildKit.kind === 'buildx';
  }

  async dispose(): Promise<void> {
    await rm(this.configDir, { recursive: true, force: true });
  }

  /** The post step's cleanup: removes a private DOCKER_CONFIG that open() made, if still there. */
  static async removeLeftover(configDir: string): Promise<boolean> {
    if (!basename(configDir).startsWith(CONFIG_DIR_PREFIX)) return false;
    if (!(await stat(configDir).then(() => true, () => false))) return false;
    await rm(configDir, { recursive: true, force: true });
    return true;
  }

  async login(registry: string, username: string, password: string): Promise<void> {
    const result = await run(this.configDir, ['login', registry, '--username', username, '--password-stdin'], {
      input: Buffer.from(password),
    });
    if (result.code !== 0) {
      throw new DockerCliError(`registry login to ${registry} as ${username} failed: ${lastLine(result.stderr)}`);
    }
    // What a future CLI might do differently: the credential must be where dispose() deletes it.
    const config = await readFile(join(this.configDir, 'config.json'), 'utf8').catch(() => '');
    if (!credentialInFile(config)) {
      throw new DockerCliError(
        `registry login to ${registry} did not store the credential in the action's private DOCKER_CONFIG ` +
          '(a docker credential helper took it?): refusing to go on',
      );
    }
  }

  async build(request: BuildRequest): Promise<void> {
    const args = [...this.buildKit.argv, '--file', join(request.context, request.dockerfile)];
    if (request.target) args.push('--target', request.target);
    for (const [name, value] of Object.entries(request.args)) args.push('--build-arg', `${name}=${value}`);
    // id=NAME,env=NAME: BuildKit reads the value from the environment; it never enters the
    // command line, a layer or the image history.
    for (const name of request.secrets) args.push('--secret', `id=${name},env=${name}`);
    for (const [name, value] of Object.entries(request.labels)) args.push('--label', `${name}=${value}`);
    for (const tag of request.tags) args.push('--tag', tag);
    args.push(...request.cacheFlags, request.context);
    const result = await run(this.configDir, args, { env: this.buildKit.env });
    if (result.code !== 0) {
      throw new DockerCliError(`docker build failed (exit ${result.code}): ${lastLine(result.stderr)}`);
    }
  }

  async push(tag: string): Promise<void> {
    const result = await run(this.configDir, ['push', tag]);
    if (result.code !== 0) throw new DockerCliError(`docker push ${tag} failed: ${lastLine(result.stderr)}`);
  }
}

async function run(
  configDir: string,
  args: string[],
  options: { input?: Buffer; env?: Record<string, string>; silent?: boolean } = {},
): Promise<RunResult> {
  let stdout = '';
  let stderr = '';
  const code = await exec.exec('docker', args, {
    env: { ...(process.env as Record<string, string>), DOCKER_CONFIG: configDir, ...options.env },
    ignoreReturnCode: true,
    silent: options.silent ?? false,
    ...(options.input ? { input: options.input } : {}),
    listeners: {
      stdout: (data) => (stdout += data.toString()),
      stderr: (data) => (stderr += data.toString()),
    },
  });
  return { code, stdout, stderr };
}

/**
 * Whether buildx's current builder exports a cache of its own: any driver but `docker`
 * (docker-container, kubernetes, remote), or `docker` on an engine with the containerd image store.
 */
async function builderExportsCache(probe: (args: string[]) => Promise<RunResult>): Promise<boolean> {
  const inspect = await probe(['buildx', 'inspect']);
  const driver = /^Driver:\s*(\S+)/m.exec(inspect.stdout)?.[1];
  if (inspect.code !== 0 || !driver) return false;
  if (driver !== 'docker') return true;
  const info = await probe(['info', '--format', '{{json .DriverStatus}}']);
  return info.code === 0 && info.stdout.includes('io.containerd.snapshotter');
}

/**
 * The build engine is DOCKER_HOST's. Over ssh:// the pushed digest would be read through
 * dockerode's own SSH client, which accepts any host key: refused, before anything is built.
 * The value is not echoed: an ssh:// URL may carry a password.
 */
export function checkBuildEngine(dockerHost: string | undefined): void {
  if (!dockerHost || !/^\s*ssh:/i.test(dockerHost)) return;
  throw new DockerCliError(
    'DOCKER_HOST: an ssh:// engine is refused for the build, because the action would reach it without checking its ' +
      'SSH host key. Forward its socket with a host-key-checked ssh (ssh -L /tmp/docker.sock:/var/run/docker.sock ' +
      'user@host) and set DOCKER_HOST=unix:///tmp/docker.sock, or build on a runner with a local Docker engine.',
  );
}

/** Whether a config.json holds a login's credential itself, with no credential helper named. */
export function credentialInFile(configJson: string): boolean {
  let config: { auths?: Record<string, { auth?: unknown }>; credsStore?: unknown; credHelpers?: Record<string, unknown> };
  try {
    config = JSON.parse(configJson) as typeof config;
  } catch {
    return false;
  }
  if (config.credsStore || Object.keys(config.credHelpers ?? {}).length > 0) return false;
  return Object.values(config.auths ?? {}).some((entry) => typeof entry.auth === 'string' && entry.auth.length > 0);
}

function lastLine(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trim()).filter(Boolean);
  return lines.slice(-3).join(' | ') || 'no error output';
}

/**
 * A private DOCKER_CONFIG would also hide the user's CLI plugins (setup-buildx-action installs
 * buildx under ~/.docker/cli-plugins), buildx builders and contexts: link those in, read-only use.
 */
async function shareCliSetup(configDir: string): Promise<void> {
  const original = process.env.DOCKER_CONFIG || join(homedir(), '.docker');
  for (const entry of ['cli-plugins', 'buildx', 'contexts']) {
    const from = join(original, entry);
    if (await stat(from).then(() => true, () => false)) await symlink(from, join(configDir, entry));
  }
}
