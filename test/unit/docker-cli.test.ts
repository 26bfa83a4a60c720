// The build stage's Docker CLI session: its private DOCKER_CONFIG, where a login's credential
// must land, the post step's cleanup, and the build engines it refuses. A stand-in `docker` on
// PATH plays the CLI, except in the credential helper case, which runs the machine's real docker
// CLI against a stand-in engine; the whole build is exercised by test/integration/build.test.ts.
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { DockerCli, checkBuildEngine, credentialInFile } from '../../src/drivers/docker-cli.js';

describe('checkBuildEngine', () => {
  it.each([undefined, '', 'unix:///var/run/docker.sock', 'tcp://127.0.0.1:2375'])('accepts DOCKER_HOST=%s', (host) => {
    expect(() => checkBuildEngine(host)).not.toThrow();
  });

  it.each(['ssh://deploy:hunter2@build.example.com', ' SSH://build.example.com:2222'])('refuses %s, naming DOCKER_HOST and the way out', (host) => {
    expect(() => checkBuildEngine(host)).toThrow(/^DOCKER_HOST: an ssh:\/\/ engine is refused .*host key.*DOCKER_HOST=unix:\/\//);
    try {
      checkBuildEngine(host);
    } catch (error) {
      expect((error as Error).message).not.toContain('hunter2');
      expect((error as Error).message).not.toContain('build.example.com');
    }
  });
});

describe('credentialInFile', () => {
  it.each([
    ['a credential in auths', { auths: { 'registry:5000': { auth: 'dTpw' } } }, true],
    ['only the placeholder', { auths: { 'deploy-action.invalid': {} } }, false],
    ['an entry a helper filled (no auth)', { auths: { 'registry:5000': {} } }, false],
    ['a credsStore', { auths: { 'registry:5000': { auth: 'dTpw' } }, credsStore: 'evil' }, false],
    ['credHelpers', { auths: { 'registry:5000': { auth: 'dTpw' } }, credHelpers: { 'registry:5000': 'evil' } }, false],
  ])('%s', (_name, config, expected) => {
    expect(credentialInFile(JSON.stringify(config))).toBe(expected);
  });

  it('is false for a file that is not JSON', () => {
    expect(credentialInFile('')).toBe(false);
  });
});

describe('DockerCli', () => {
  let temp: string;
  let savedPath: string | undefined;

  /** A `docker` whose `login` runs `loginScript` (sh) with DOCKER_CONFIG set; buildx is "installed". */
  function fakeDocker(loginScript: string): void {
    const bin = join(temp, 'bin');
    mkdirSync(bin);
    writeFileSync(
      join(bin, 'docker'),
      `#!/bin/sh\ncase "$1" in\n  buildx) exit 0 ;;\n  login) cat >/dev/null; ${loginScript} ;;\nesac\n`,
    );
    chmodSync(join(bin, 'docker'), 0o755);
    process.env.PATH = `${bin}:${savedPath}`;
  }

  beforeEach(() => {
    temp = mkdtempSync(join(tmpdir(), 'docker-cli-test-'));
    savedPath = process.env.PATH;
  });
  afterEach(() => {
    process.env.PATH = savedPath;
  });

  it('opens a private config that names no credential helper, told to the caller before it exists', async () => {
    fakeDocker('exit 0');
    let remembered = '';
    let existedWhenTold = true;
    const cli = await DockerCli.open(temp, (dir) => {
      remembered = dir;
      existedWhenTold = existsSync(dir);
    });
    expect(existedWhenTold).toBe(false);
    expect(statSync(remembered).mode & 0o777).toBe(0o700);
    const config = JSON.parse(readFileSync(join(remembered, 'config.json'), 'utf8')) as Record<string, unknown>;
    expect(config).toEqual({ auths: { 'deploy-action.invalid': {} } });
    await cli.dispose();
    expect(existsSync(remembered)).toBe(false);
  });

  it('accepts a login whose credential landed in the private config', async () => {
    fakeDocker(`echo '{"auths":{"registry:5000":{"auth":"dTpw"}}}' > "$DOCKER_CONFIG/config.json"`);
    const cli = await DockerCli.open(temp);
    await expect(cli.login('registry:5000', 'u', 'p')).resolves.toBeUndefined();
    await cli.dispose();
  });

  it('fails a login whose credential went to a credential helper', async () => {
    fakeDocker(`echo '{"auths":{"registry:5000":{}},"credsStore":"evil"}' > "$DOCKER_CONFIG/config.json"`);
    const cli = await DockerCli.open(temp);
    await expect(cli.login('registry:5000', 'u', 'p')).rejects.toThrow(
      /registry login to registry:5000 did not store the credential in the action's private DOCKER_CONFIG/,
    );
    await cli.dispose();
  });

  /** A `docker` answering the probes open() makes with `answers` (sh case arms), recording every call. */
  function probedDocker(answers: string): string {
    const bin = join(temp, 'bin');
    const calls = join(temp, 'calls');
    mkdirSync(bin);
    writeFileSync(join(bin, 'docker'), `#!/bin/sh\necho "$*" >> '${calls}'\ncase "$*" in\n${answers}\nesac\n`);
    chmodSync(join(bin, 'docker'), 0o755);
    process.env.PATH = `${bin}:${savedPath}`;
    return calls;
  }

  it.each([
    ['buildx on a docker-container builder', '"buildx version") exit 0 ;;\n"buildx inspect") printf "Name: b\\nDriver: docker-container\\n" ;;', { kind: 'buildx', exportsCache: true }],
    ['buildx on the docker driver', '"buildx version") exit 0 ;;\n"buildx inspect") printf "Name: default\\nDriver: docker\\n" ;;\ninfo*) echo "[[\\"Backing Filesystem\\",\\"extfs\\"]]" ;;', { kind: 'buildx', exportsCache: false }],
    ['buildx on the docker driver with the containerd image store', '"buildx version") exit 0 ;;\n"buildx inspect") printf "Driver: docker\\n" ;;\ninfo*) echo "[[\\"driver-type\\",\\"io.containerd.snapshotter.v1\\"]]" ;;', { kind: 'buildx', exportsCache: true }],
    ['buildx whose inspect fails', '"buildx version") exit 0 ;;\n"buildx inspect") exit 1 ;;', { kind: 'buildx', exportsCache: false }],
    ['a client before 23 without buildx', 'buildx*) exit 1 ;;\nversion*) echo 20.10.24 ;;', { kind: 'classic', exportsCache: false }],
  ])('finds %s', async (_name, answers, builder) => {
    probedDocker(answers);
    const cli = await DockerCli.open(temp);
    expect(cli.builder).toEqual(builder);
    expect(cli.pushesOnBuild).toBe(builder.kind === 'buildx');
    await cli.dispose();
  });

  it('builds with buildx pushing as it exports, the cache flags before the context', async () => {
    const calls = probedDocker('"buildx version") exit 0 ;;\n"buildx inspect") printf "Driver: docker-container\\n" ;;');
    const cli = await DockerCli.open(temp);
    await cli.build({
      context: '/ctx',
      dockerfile: 'Dockerfile',
      target: '',
      args: {},
      secrets: [],
      labels: {},
      tags: ['r/app:v1'],
      cacheFlags: ['--cache-from', 'type=registry,ref=r/app:buildcache'],
    });
    await cli.dispose();
    const build = readFileSync(calls, 'utf8').split('\n').find((line) => line.startsWith('buildx build'));
    expect(build).toBe('buildx build --push --provenance=false --file /ctx/Dockerfile --tag r/app:v1 --cache-from type=registry,ref=r/app:buildcache /ctx');
  });

  it.each([
    ['github.com/docker/buildx v0.9.1 ed00243', 'buildx build --push --file'],
    ['github.com/docker/buildx v0.29.1 a1b2c3d', 'buildx build --push --provenance=false --file'],
  ])('asks %s for one image manifest only where it knows the flag', async (version, start) => {
    const calls = probedDocker(`"buildx version") echo "${version}" ;;\n"buildx inspect") printf "Driver: docker\\n" ;;`);
    const cli = await DockerCli.open(temp);
    await cli.build({ context: '/ctx', dockerfile: 'Dockerfile', target: '', args: {}, secrets: [], labels: {}, tags: ['r/app:v1'], cacheFlags: [] });
    await cli.dispose();
    expect(readFileSync(calls, 'utf8').split('\n').find((line) => line.startsWith('buildx build'))).toMatch(new RegExp(`^${start} `));
  });

  it('removes a leftover private config in the post step, and nothing else', async () => {
    fakeDocker('exit 0');
    let remembered = '';
    await DockerCli.open(temp, (dir) => (remembered = dir));
    const other = join(temp, 'not-ours');
    mkdirSync(other);
    expect(await DockerCli.removeLeftover(other)).toBe(false);
    expect(existsSync(other)).toBe(true);
    expect(await DockerCli.removeLeftover(remembered)).toBe(true);
    expect(existsSync(remembered)).toBe(false);
    expect(await DockerCli.removeLeftover(remembered)).toBe(false);
  });
});

describe('the real docker CLI with credential helpers on PATH', () => {
  const temp = mkdtempSync(join(tmpdir(), 'docker-cli-helpers-'));
  const socket = join(temp, 'engine.sock');
  const record = join(temp, 'helpers-called');
  // The engine's part of `docker login`: version negotiation, then POST /auth.
  const engine = http.createServer((request, response) => {
    if (request.url?.endsWith('/_ping')) return void response.writeHead(200, { 'Api-Version': '1.41' }).end('OK');
    if (request.url?.endsWith('/auth')) return void response.writeHead(200, { 'content-type': 'application/json' }).end('{"Status":"Login Succeeded"}');
    response.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"not here"}');
  });
  const saved = { PATH: process.env.PATH, DOCKER_HOST: process.env.DOCKER_HOST };

  afterEach(() => {
    engine.close();
    process.env.PATH = saved.PATH;
    if (saved.DOCKER_HOST === undefined) delete process.env.DOCKER_HOST;
    else process.env.DOCKER_HOST = saved.DOCKER_HOST;
  });

  it('keeps the credential in the private config: pass and secretservice helpers get nothing', async () => {
    await new Promise<void>((resolve) => engine.listen(socket, resolve));
    const realDocker = execFileSync('sh', ['-c', 'command -v docker'], { encoding: 'utf8' }).trim();
    const bin = join(temp, 'bin');
    mkdirSync(bin);
    // The CLI's Linux default stores (DetectDefaultStore): docker-credential-pass when pass is on PATH.
    for (const name of ['docker-credential-pass', 'docker-credential-secretservice', 'pass']) {
      writeFileSync(join(bin, name), `#!/bin/sh\n{ echo "$0 $*"; cat; } >> '${record}'\necho '{}'\n`);
      chmodSync(join(bin, name), 0o755);
    }
    // The real CLI for login; buildx reported present, as open() asks.
    writeFileSync(join(bin, 'docker'), `#!/bin/sh\n[ "$1" = buildx ] && exit 0\nexec '${realDocker}' "$@"\n`);
    chmodSync(join(bin, 'docker'), 0o755);
    process.env.PATH = `${bin}:${saved.PATH}`;
    process.env.DOCKER_HOST = `unix://${socket}`;
    let configDir = '';
    const cli = await DockerCli.open(temp, (dir) => (configDir = dir));
    try {
      await cli.login('registry.test:5000', 'ci', 'helper-Passw0rd');
      const config = JSON.parse(readFileSync(join(configDir, 'config.json'), 'utf8')) as { auths: Record<string, { auth?: string }> };
      expect(Buffer.from(config.auths['registry.test:5000']?.auth ?? '', 'base64').toString()).toBe('ci:helper-Passw0rd');
      expect(existsSync(record) ? readFileSync(record, 'utf8') : '').toBe('');
    } finally {
      await cli.dispose();
    }
  });
});
