// The Docker CLI on the runner, for the build stage only: the CLI is what gives BuildKit
// (secrets, caching, buildx on hosted runners), which the Engine API alone does not.
// Arguments are always arrays; the registry password travels on stdin only.
import * as exec from '@actions/exec';
import { mkdtemp, rm, symlink, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';

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
}

interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** How this machine's CLI runs a BuildKit build. */
type BuildKitPath = { argv: string[]; env: Record<string, string> };

export class DockerCli {
  private constructor(
    private readonly configDir: string,
    private readonly buildKit: BuildKitPath,
  ) {}

  /**
   * Opens a CLI session with a private DOCKER_CONFIG (credentials never land in the user's
   * ~/.docker) and finds a BuildKit path: `docker buildx build` where buildx is installed (hosted
   * runners), else `DOCKER_BUILDKIT=1 docker build` on a client that still has BuildKit built in
   * (before 23.0). Call dispose() in a finally block.
   */
  static async open(tempDir: string): Promise<DockerCli> {
    const configDir = await mkdtemp(join(tempDir, 'deploy-action-docker-'));
    try {
      await shareCliSetup(configDir);
      const probe = (args: string[]) => run(configDir, args, { silent: true });
      if ((await probe(['buildx', 'version'])).code === 0) {
        return new DockerCli(configDir, { argv: ['buildx', 'build', '--load'], env: {} });
      }
      const version = (await probe(['version', '--format', '{{.Client.Version}}'])).stdout.trim();
      const major = Number(version.split('.')[0]);
      if (Number.isFinite(major) && major > 0 && major < 23) {
        return new DockerCli(configDir, { argv: ['build'], env: { DOCKER_BUILDKIT: '1' } });
      }
      throw new DockerCliError(
        `the docker CLI (client ${version || 'not found'}) has no BuildKit: install buildx (docker/setup-buildx-action) before this step`,
      );
    } catch (error) {
      await rm(configDir, { recursive: true, force: true });
      throw error;
    }
  }

  async dispose(): Promise<void> {
    await rm(this.configDir, { recursive: true, force: true });
  }

  async login(registry: string, username: string, password: string): Promise<void> {
    const result = await run(this.configDir, ['login', registry, '--username', username, '--password-stdin'], {
      input: Buffer.from(password),
    });
    if (result.code !== 0) {
      throw new DockerCliError(`registry login to ${registry} as ${username} failed: ${lastLine(result.stderr)}`);
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
    args.push(request.context);
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
