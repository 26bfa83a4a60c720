// npm run bench, the build: the bench app (test/bench-app: Node, an npm ci of 108 packages, then
// the source) built by the action (command: build) on engines with nothing in them, as fresh
// runners are: a cold build, then after a one-line source change a rebuild without the cache and
// one with build.cache: registry. Each build pushes to the estate's registry. Prints figures.
import { execFile } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runAction } from '../test/integration/support/action.js';
import { REPO_ROOT, type Estate } from '../test/integration/support/estate.js';
import { loopbackRegistry, withScratchEngine } from '../test/integration/support/scratch-engine.js';

const run = promisify(execFile);

export interface BuildRow {
  build: string;
  cache: string;
  seconds: number;
}

/** Builds the bench app's Node base image FROM scratch and pushes it: what a FROM node:24 would pull. */
async function pushBase(estate: Estate, context: string, tag: string): Promise<void> {
  const env = { ...process.env, DOCKER_HOST: estate.runnerDockerHost, DOCKER_CONFIG: mkdtempSync(join(tmpdir(), 'bench-docker-')), DOCKER_BUILDKIT: '1' };
  const login = run(estate.dockerCli, ['login', estate.registry.address, '-u', estate.registry.username, '--password-stdin'], { env });
  login.child.stdin?.end(estate.registry.password);
  await login;
  await run(estate.dockerCli, ['build', '--quiet', '--tag', tag, context], { env, maxBuffer: 16 << 20 });
  await run(estate.dockerCli, ['push', tag], { env, maxBuffer: 16 << 20 });
}

export async function benchBuild(estate: Estate): Promise<BuildRow[]> {
  const out = mkdtempSync(join(tmpdir(), 'bench-build-'));
  await run('bash', [join(REPO_ROOT, 'test/bench-app/prepare.sh'), out], { maxBuffer: 16 << 20 });
  await pushBase(estate, join(out, 'base'), `${estate.registry.address}/clay/bench-node:24`);
  // The engine's BuildKit (dockerd 20.10) reaches a plain-HTTP registry on a loopback address only.
  const registry = await loopbackRegistry(estate.registry.address);
  const base = `${registry.address}/clay/bench-node:24`;
  const repository = `${registry.address}/clay/bench-app-${Date.now().toString(36)}`;
  const workspace = join(out, 'workspace');
  mkdirSync(join(workspace, '.github'), { recursive: true });
  cpSync(join(out, 'app'), join(workspace, 'app'), { recursive: true });
  const bin = join(out, 'bin');
  mkdirSync(bin);
  symlinkSync(estate.dockerCli, join(bin, 'docker'));

  const build = async (version: string, cache: 'none' | 'registry'): Promise<number> => {
    writeFileSync(
      join(workspace, '.github/deploy.yml'),
      `app: bench\nimage: ${repository}\nbuild: { context: app, args: { BASE: "${base}" }, cache: ${cache} }\n` +
        'container: { port: 3000 }\nenvironments:\n  staging: { hosts: [10.231.0.11] }\n',
    );
    return withScratchEngine(async (dockerHost) => {
      const started = performance.now();
      const result = await runAction({
        workspace,
        ref: `refs/tags/${version}`,
        inputs: { command: 'build', 'registry-username': estate.registry.username, 'registry-password': estate.registry.password },
        env: { DOCKER_HOST: dockerHost, PATH: `${bin}:${process.env.PATH}` },
      });
      const seconds = (performance.now() - started) / 1000;
      if (result.code !== 0) throw new Error(`bench build ${version} failed:\n${result.log}`);
      return seconds;
    });
  };

  const rows: BuildRow[] = [];
  try {
    rows.push({ build: 'cold (nothing in the registry)', cache: 'registry', seconds: await build('v1.0.0', 'registry') });
    const source = join(workspace, 'app/src/server.js');
    writeFileSync(source, readFileSync(source, 'utf8').replace("const greeting = 'hello';", "const greeting = 'hello again';"));
    rows.push({ build: 'one-line change', cache: 'none', seconds: await build('v1.0.1', 'none') });
    rows.push({ build: 'one-line change', cache: 'registry', seconds: await build('v1.0.2', 'registry') });
  } finally {
    await registry.close();
  }
  return rows;
}

export function printBuildRows(rows: BuildRow[]): void {
  const cold = rows[0]!.seconds;
  console.log(
    '\nBuild of the bench app (Node, npm ci of 108 packages, then the source) by the action, each on an engine with nothing in it; ' +
      'this machine\'s BuildKit is the engine\'s own (docker 20.10, no buildx): registry falls back to the inline cache',
  );
  console.log(['build'.padEnd(30), 'build.cache'.padEnd(11), 'wall'.padEnd(8), 'of cold'].join('  '));
  for (const row of rows) {
    console.log([row.build.padEnd(30), row.cache.padEnd(11), `${row.seconds.toFixed(1)} s`.padEnd(8), `${Math.round((100 * row.seconds) / cold)} %`].join('  '));
  }
}
