// command: build, run as the runner runs it, against the estate's runner engine and registry.
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { runAction, type ActionRun } from './support/action.js';
import { REPO_ROOT, loadEstate, type Estate } from './support/estate.js';
import { loopbackRegistry, withScratchEngine } from './support/scratch-engine.js';

const run = promisify(execFile);
const BUILD_SECRET = 'npm_s3cr3t-token-value-7f3a';
// A commit of its own per run: the test app bakes it in, so no build step comes from the cache.
const SHA = randomBytes(20).toString('hex');

let estate: Estate;
let repository: string;
/** A bin dir whose `docker` is the estate's BuildKit-capable CLI (the runner's would be buildx). */
let binDir: string;

function workspace(config: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'workspace-'));
  cpSync(join(REPO_ROOT, 'test/app'), join(dir, 'app'), { recursive: true });
  mkdirSync(join(dir, '.github'));
  writeFileSync(join(dir, '.github/deploy.yml'), config);
  return dir;
}

function config(extra = ''): string {
  return `app: demo
image: ${repository}
build: { context: app, dockerfile: Dockerfile, secrets: [NPM_TOKEN], latest: true }
container: { port: 3000 }
environments:
  staging: { hosts: [10.231.0.11] }
${extra}`;
}

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run(estate.dockerCli, args, { env: { ...process.env, DOCKER_HOST: estate.runnerDockerHost } });
  return stdout;
}

interface BuildOptions {
  password?: string;
  config?: string;
  secret?: string;
  env?: Record<string, string>;
  post?: { state: Record<string, string> };
}

async function build(ref: string, options: BuildOptions = {}): Promise<ActionRun> {
  return runAction({
    ...(options.post ? { post: options.post } : {}),
    workspace: workspace(options.config ?? config()),
    ref,
    inputs: {
      command: 'build',
      'registry-username': estate.registry.username,
      'registry-password': options.password ?? estate.registry.password,
    },
    env: {
      GITHUB_SHA: SHA,
      DOCKER_HOST: estate.runnerDockerHost,
      PATH: `${binDir}:${process.env.PATH}`,
      NPM_TOKEN: options.secret ?? BUILD_SECRET,
      ...options.env,
    },
  });
}

/**
 * A self-hosted runner's traps for the registry password: every credential helper the docker CLI
 * could pick (its Linux defaults pass and secretservice, and one the user's own config names) on
 * PATH, each recording what it is handed; and DEBUG=* for the libraries the action bundles.
 */
function hostileRunner(): { env: Record<string, string>; helperRecord: string } {
  const dir = mkdtempSync(join(tmpdir(), 'hostile-runner-'));
  const helperRecord = join(dir, 'helpers-called');
  mkdirSync(join(dir, 'bin'));
  for (const name of ['docker-credential-pass', 'docker-credential-secretservice', 'docker-credential-evil', 'pass']) {
    writeFileSync(join(dir, 'bin', name), `#!/bin/sh\n{ echo "$0 $*"; cat; echo; } >> '${helperRecord}'\necho '{}'\n`);
    chmodSync(join(dir, 'bin', name), 0o755);
  }
  symlinkSync(estate.dockerCli, join(dir, 'bin', 'docker'));
  mkdirSync(join(dir, 'user-docker-config'));
  writeFileSync(join(dir, 'user-docker-config', 'config.json'), JSON.stringify({ credsStore: 'evil', credHelpers: { [estate.registry.address]: 'evil' } }));
  return {
    helperRecord,
    env: { PATH: `${join(dir, 'bin')}:${process.env.PATH}`, DOCKER_CONFIG: join(dir, 'user-docker-config'), DEBUG: '*' },
  };
}

/** Every base64 / base64url run of 16+ characters in `text`, decoded. */
function decodedRuns(text: string): string[] {
  return [...text.matchAll(/[A-Za-z0-9+/_-]{16,}={0,2}/g)].map((m) => Buffer.from(m[0].replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('latin1'));
}

/** What the registry holds for a tag, asked with a fresh pull through the runner engine. */
/** Environment for a docker CLI logged in to the estate's registry, in a config of its own. */
async function loggedIn(): Promise<NodeJS.ProcessEnv> {
  const env = { ...process.env, DOCKER_HOST: estate.runnerDockerHost, DOCKER_CONFIG: mkdtempSync(join(tmpdir(), 'docker-config-')) };
  const login = run(estate.dockerCli, ['login', estate.registry.address, '-u', estate.registry.username, '--password-stdin'], { env });
  login.child.stdin?.end(estate.registry.password);
  await login;
  return env;
}

async function registryDigest(tag: string, repo = repository): Promise<string | undefined> {
  const env = await loggedIn();
  try {
    await run(estate.dockerCli, ['rmi', '-f', `${repo}:${tag}`], { env }).catch(() => undefined);
    const { stdout } = await run(estate.dockerCli, ['pull', `${repo}:${tag}`], { env });
    return /Digest: (sha256:[a-f0-9]{64})/.exec(stdout)?.[1];
  } catch {
    return undefined;
  }
}

beforeAll(async () => {
  estate = loadEstate();
  // A repository of its own: other tests push clay/demo.
  repository = `${estate.registry.address}/clay/build-test-${process.pid}`;
  binDir = mkdtempSync(join(tmpdir(), 'bin-'));
  symlinkSync(estate.dockerCli, join(binDir, 'docker'));
  await run('bash', [join(REPO_ROOT, 'test/app/prepare.sh')]);
});

describe('command: build', () => {
  let v1: ActionRun;
  let helperRecord: string;
  beforeAll(async () => {
    const runner = hostileRunner();
    helperRecord = runner.helperRecord;
    v1 = await build('refs/tags/v1.0.0', { env: runner.env });
  }, 300_000);

  it('pushes the release tag and outputs the digest the registry holds', async () => {
    expect(v1.code, v1.log).toBe(0);
    expect(v1.outputs.version).toBe('v1.0.0');
    expect(v1.outputs.image).toBe(repository);
    expect(v1.outputs.digest).toMatch(/^sha256:[a-f0-9]{64}$/);
    expect(v1.outputs['image-ref']).toBe(`${repository}@${v1.outputs.digest}`);
    expect(await registryDigest('v1.0.0')).toBe(v1.outputs.digest);
  });

  it('labels the image with version, revision, source and creation time', async () => {
    await docker('rmi', '-f', v1.outputs['image-ref']!).catch(() => undefined);
    await run(estate.dockerCli, ['pull', v1.outputs['image-ref']!], { env: await loggedIn() });
    const labels = JSON.parse(await docker('image', 'inspect', '--format', '{{json .Config.Labels}}', v1.outputs['image-ref']!)) as Record<string, string>;
    expect(labels['org.opencontainers.image.version']).toBe('v1.0.0');
    expect(labels['org.opencontainers.image.revision']).toBe(SHA);
    expect(labels['org.opencontainers.image.source']).toBe('https://github.com/clay/demo');
    expect(Date.parse(labels['org.opencontainers.image.created']!)).not.toBeNaN();
  });

  it('moves latest for a stable release', async () => {
    expect(await registryDigest('latest')).toBe(v1.outputs.digest);
  });

  it('does not move latest for a prerelease', async () => {
    const rc = await build('refs/tags/v1.1.0-rc.1');
    expect(rc.code, rc.log).toBe(0);
    expect(await registryDigest('v1.1.0-rc.1')).toBe(rc.outputs.digest);
    expect(await registryDigest('latest')).toBe(v1.outputs.digest);
  }, 300_000);

  it('hands the build secret to RUN without leaking it to the log, outputs, summary or history', async () => {
    const sha = (await docker('run', '--rm', '--network', 'none', '--entrypoint', 'cat', v1.outputs['image-ref']!, '/www/secret-sha')).trim();
    expect(sha).toBe(createHash('sha256').update(BUILD_SECRET).digest('hex'));
    const history = await docker('history', '--no-trunc', v1.outputs['image-ref']!);
    expect(v1.masks).toContain(BUILD_SECRET);
    expect(v1.masks).toContain(estate.registry.password);
    for (const text of [v1.log, JSON.stringify(v1.outputs), v1.summary, history]) {
      expect(text).not.toContain(BUILD_SECRET);
      expect(text).not.toContain(estate.registry.password);
    }
  });

  it('keeps the registry credential from every credential helper on PATH', () => {
    expect(v1.code, v1.log).toBe(0);
    expect(existsSync(helperRecord) ? readFileSync(helperRecord, 'utf8') : '').toBe('');
  });

  it('prints no debug output of its libraries under DEBUG=*, so no auth header in any encoding', () => {
    const { password } = estate.registry;
    expect(v1.log).not.toMatch(/X-Registry-Auth|modem/i);
    expect(v1.log).not.toContain(password);
    expect(decodedRuns(v1.log).filter((decoded) => decoded.includes(password))).toEqual([]);
  });

  it('writes a job summary with image, tag and digest', () => {
    expect(v1.summary).toContain(repository);
    expect(v1.summary).toContain('v1.0.0, latest');
    expect(v1.summary).toContain(v1.outputs.digest);
  });

  it('folds its log per phase', () => {
    expect(v1.log).toContain(`::group::Log in to ${estate.registry.address}`);
    expect(v1.log).toContain('::group::Build');
    expect(v1.log).toContain('::group::Push');
  });
});

describe('build.cache on an engine with nothing in it, as a fresh runner has', () => {
  // This machine's BuildKit is the engine's own (no buildx): registry falls back to the inline
  // cache, which it can export; the buildx paths are unit-tested (test/unit/build-cache.test.ts).
  // The engine's BuildKit reaches the registry through a loopback port (loopbackRegistry).
  const path = `clay/build-cache-test-${process.pid}`;
  let cold: ActionRun;
  let warm: ActionRun;
  let image: string;
  beforeAll(async () => {
    const registry = await loopbackRegistry(estate.registry.address);
    image = `${registry.address}/${path}`;
    const cached = config().replace(`image: ${repository}`, `image: ${image}`).replace('latest: true', 'latest: true, cache: registry');
    try {
      cold = await withScratchEngine((dockerHost) => build('refs/tags/v2.0.0', { config: cached, env: { DOCKER_HOST: dockerHost } }));
      warm = await withScratchEngine((dockerHost) => build('refs/tags/v2.0.1', { config: cached, env: { DOCKER_HOST: dockerHost } }));
    } finally {
      await registry.close();
    }
  }, 600_000);

  it('says the engine\'s builder exports inline only, and pushes the image as the cache ref too', async () => {
    expect(cold.code, cold.log).toBe(0);
    expect(cold.log).toMatch(/::warning::build\.cache: registry needs a builder that exports a cache.*exports inline only/);
    expect(await registryDigest('buildcache', `${estate.registry.address}/${path}`)).toBe(warm.outputs.digest);
  });

  it('builds the first release whole, the next from the cache it imported', () => {
    expect(warm.code, warm.log).toBe(0);
    for (const run of [cold, warm]) expect(run.log).toContain(`--cache-from ${image}:buildcache`);
    // The busybox install comes before anything a release changes (DEPLOY_VERSION, the commit).
    const install = /#(\d+) \[\d\/\d\] RUN \["\/bin\/busybox", "--install", "-s", "\/bin"\]/;
    const cachedStep = (log: string) => new RegExp(`^#${install.exec(log)?.[1]} CACHED$`, 'm').test(log);
    expect(install.test(cold.log) && install.test(warm.log), warm.log).toBe(true);
    expect(cachedStep(cold.log)).toBe(false);
    expect(cachedStep(warm.log), warm.log).toBe(true);
  });

  it('serves the new release, not the cached one', async () => {
    const ref = `${estate.registry.address}/${path}@${warm.outputs.digest}`;
    await run(estate.dockerCli, ['pull', ref], { env: await loggedIn() });
    const answer = await docker('run', '--rm', '--network', 'none', '--entrypoint', 'cat', ref, '/www/index.html');
    expect(answer.trim()).toBe('v2.0.1');
  });
});

describe('the post step of a cancelled build', () => {
  it('removes the private DOCKER_CONFIG the build left, and nothing that is not one', async () => {
    const temp = mkdtempSync(join(tmpdir(), 'runner-temp-'));
    const left = join(temp, 'deploy-action-docker-0123456789abcdef01234567');
    mkdirSync(left);
    writeFileSync(join(left, 'config.json'), JSON.stringify({ auths: { [estate.registry.address]: { auth: 'dTpw' } } }));
    const result = await build('refs/tags/v1.0.0', { post: { state: { post: 'true', 'docker-config': left } } });
    expect(result.code, result.log).toBe(0);
    expect(result.log).toContain('Removed the private DOCKER_CONFIG a cancelled build left');
    expect(existsSync(left)).toBe(false);
    const notOurs = mkdtempSync(join(tmpdir(), 'not-a-docker-config-'));
    const again = await build('refs/tags/v1.0.0', { post: { state: { post: 'true', 'docker-config': notOurs } } });
    expect(again.code, again.log).toBe(0);
    expect(existsSync(notOurs)).toBe(true);
  });
});

describe('command: build refuses bad input before pushing anything', () => {
  it.each([
    ['a branch push', 'refs/heads/main', {}, /GITHUB_REF "refs\/heads\/main" is not a tag/],
    ['a non-semver tag', 'refs/tags/release-7', {}, /"release-7" is not a release tag; expected a semver tag like v1\.4\.0/],
    ['an invalid config', 'refs/tags/v9.0.1', { config: 'app: demo\nimage: x\nbogus: 1\n' }, /bogus: unknown key/],
    ['a missing Dockerfile', 'refs/tags/v9.0.2', { config: config().replace('dockerfile: Dockerfile', 'dockerfile: Nope') }, /build\.dockerfile: .*app\/Nope does not exist/],
    ['a missing build secret', 'refs/tags/v9.0.3', { secret: '' }, /build\.secrets: NPM_TOKEN is not set in the step's env/],
    ['a gha cache off GitHub', 'refs/tags/v9.0.6', { config: config().replace('latest: true', 'latest: true, cache: gha') }, /build\.cache: gha needs GitHub's cache service/],
    ['an ssh:// build engine', 'refs/tags/v9.0.5', { env: { DOCKER_HOST: 'ssh://deploy@10.231.0.11' } }, /DOCKER_HOST: an ssh:\/\/ engine is refused/],
  ])('%s', async (_name, ref, options, message) => {
    const result = await build(ref, options);
    expect(result.code).toBe(1);
    expect(result.log).toMatch(message);
    expect(result.outputs).toEqual({});
    const tag = ref.split('/').pop()!;
    if (/^v\d/.test(tag)) expect(await registryDigest(tag)).toBeUndefined();
  }, 120_000);

  it('a wrong registry password names the registry, not the password', async () => {
    const wrong = 'wrong-Passw0rd-9d1c';
    const result = await build('refs/tags/v9.0.4', { password: wrong });
    expect(result.code).toBe(1);
    expect(result.log).toContain(`registry login to ${estate.registry.address} as ${estate.registry.username} failed`);
    expect(result.masks).toContain(wrong);
    expect(result.log).not.toContain(wrong);
    expect(await registryDigest('v9.0.4')).toBeUndefined();
  }, 120_000);
});
