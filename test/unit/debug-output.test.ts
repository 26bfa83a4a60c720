// dist/index.js under DEBUG=*, as a runner runs it: a build with a stand-in docker CLI on PATH and
// a stand-in engine on DOCKER_HOST, which is asked for the pushed digest with the registry
// credential in X-Registry-Auth. No debug output of a bundled library may show that credential.
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction, type ActionRun } from '../integration/support/action.js';

const PASSWORD = 'debug-Passw0rd-5e2a';
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const dir = mkdtempSync(join(tmpdir(), 'debug-output-test-'));
const socket = join(dir, 'docker.sock');
const authHeaders: string[] = [];
const engine = http.createServer((request, response) => {
  authHeaders.push(String(request.headers['x-registry-auth'] ?? ''));
  response.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ Descriptor: { digest: DIGEST } }));
});

/** Every base64 / base64url run of 16+ characters in `text`, decoded. */
const decodedRuns = (text: string) =>
  [...text.matchAll(/[A-Za-z0-9+/_-]{16,}={0,2}/g)].map((m) => Buffer.from(m[0].replace(/-/g, '+').replace(/_/g, '/'), 'base64').toString('latin1'));

let run: ActionRun;

beforeAll(async () => {
  await new Promise<void>((resolve) => engine.listen(socket, resolve));
  const bin = join(dir, 'bin');
  mkdirSync(bin);
  // The CLI stand-in: buildx "installed", login stores the credential in DOCKER_CONFIG, build and push succeed.
  writeFileSync(
    join(bin, 'docker'),
    `#!/bin/sh\ncase "$1" in\n  login) cat >/dev/null; echo '{"auths":{"registry.test:5000":{"auth":"x"}}}' > "$DOCKER_CONFIG/config.json" ;;\nesac\nexit 0\n`,
  );
  chmodSync(join(bin, 'docker'), 0o755);
  const workspace = join(dir, 'workspace');
  mkdirSync(join(workspace, '.github'), { recursive: true });
  writeFileSync(join(workspace, 'Dockerfile'), 'FROM scratch\n');
  writeFileSync(
    join(workspace, '.github/deploy.yml'),
    'app: demo\nimage: registry.test:5000/clay/demo\ncontainer: { port: 3000 }\nenvironments:\n  staging: { hosts: [10.0.0.1] }\n',
  );
  run = await runAction({
    workspace,
    inputs: { command: 'build', 'registry-username': 'ci', 'registry-password': PASSWORD },
    env: { DEBUG: '*', PATH: `${bin}:${process.env.PATH}`, DOCKER_HOST: `unix://${socket}` },
  });
}, 60_000);

afterAll(() => {
  engine.close();
});

describe('dist/index.js with DEBUG=*', () => {
  it('builds and asks the engine for the digest with the credential', () => {
    expect(run.code, run.log).toBe(0);
    expect(run.outputs.digest).toBe(DIGEST);
    expect(authHeaders.some((header) => decodedRuns(header).some((decoded) => decoded.includes(PASSWORD)))).toBe(true);
  });

  it('prints no auth header and no password in any encoding', () => {
    expect(run.log).not.toMatch(/X-Registry-Auth|authconfig/i);
    for (const header of authHeaders) expect(run.log).not.toContain(header);
    expect(run.log).not.toContain(PASSWORD);
    expect(run.log).not.toContain(Buffer.from(PASSWORD).toString('base64').slice(0, 16));
    expect(decodedRuns(run.log).filter((decoded) => decoded.includes(PASSWORD))).toEqual([]);
  });
});
