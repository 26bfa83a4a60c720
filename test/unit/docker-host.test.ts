// DockerHost against a scripted engine on a local unix socket: what goes over the wire, and how
// failures come back. The real engine is exercised by test/integration/drivers.test.ts.
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DockerHost } from '../../src/drivers/docker/host.js';
import type { Tunnel } from '../../src/drivers/docker/engine.js';
import type { ContainerSpec } from '../../src/rollout/ports.js';

interface Seen {
  method: string;
  url: string;
  body: string;
}

type Route = (request: Seen, response: http.ServerResponse) => void;

const dir = mkdtempSync(join(tmpdir(), 'docker-host-test-'));
const socket = join(dir, 'docker.sock');
let routes: Record<string, Route> = {};
const seen: Seen[] = [];
const server = http.createServer((request, response) => {
  let body = '';
  request.on('data', (chunk: Buffer) => (body += chunk.toString()));
  request.on('end', () => {
    const entry = { method: request.method ?? '', url: request.url ?? '', body };
    seen.push(entry);
    const route = routes[`${entry.method} ${entry.url.split('?')[0]}`];
    if (route) route(entry, response);
    else json(response, 404, { message: `no route for ${entry.method} ${entry.url}` });
  });
});

function json(response: http.ServerResponse, status: number, value: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));
}

const tunnel: Tunnel = {
  host: 'fake-host',
  failure: undefined,
  forwardStreamLocal: async () => connect(socket) as Duplex,
  forwardTcp: () => Promise.reject(new Error('no TCP in this test')),
  dispose: () => undefined,
};

beforeAll(() => new Promise<void>((resolve) => server.listen(socket, resolve)));
afterAll(() => {
  server.closeAllConnections();
  server.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => {
  routes = {};
  seen.length = 0;
});

const spec: ContainerSpec = {
  name: 'demo',
  role: 'master',
  release: { version: 'v1.0.0', ref: 'reg:5000/demo@sha256:abc', digest: 'sha256:abc' },
  hostPort: 50000,
  containerPort: 3000,
  env: { PLAIN: 'x', API_TOKEN: 'hunter2' },
  volumes: ['/srv/data:/data:ro'],
  restart: 'on-failure:3',
  stopTimeout: 10,
  init: true,
  labels: { 'deploy-action.app': 'demo' },
};

describe('DockerHost on a scripted engine', () => {
  it('creates with the name alone in the URL: the environment (secrets) only in the body', async () => {
    routes['POST /containers/create'] = (_request, response) => json(response, 201, { Id: 'c1' });
    routes['POST /containers/c1/start'] = (_request, response) => response.writeHead(204).end();
    expect(await new DockerHost(tunnel).run(spec)).toBe('c1');
    const create = seen.find((request) => request.url.startsWith('/containers/create'))!;
    expect(create.url).toBe('/containers/create?name=demo');
    expect(JSON.parse(create.body)).toEqual({
      Image: 'reg:5000/demo@sha256:abc',
      Env: ['PLAIN=x', 'API_TOKEN=hunter2'],
      Labels: {
        'deploy-action.app': 'demo',
        'deploy-action.role': 'master',
        'deploy-action.version': 'v1.0.0',
        'deploy-action.digest': 'sha256:abc',
      },
      ExposedPorts: { '3000/tcp': {} },
      StopTimeout: 10,
      HostConfig: {
        PortBindings: { '3000/tcp': [{ HostPort: '50000' }] },
        Binds: ['/srv/data:/data:ro'],
        RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
        Init: true,
      },
    });
  });

  it.each([
    ['10.0.0.5', '10.0.0.5'],
    ['host', 'fake-host'],
  ])('publishes the ports on container.bind %s as HostIp %s', async (bind, hostIp) => {
    routes['POST /containers/create'] = (_request, response) => json(response, 201, { Id: 'c1' });
    routes['POST /containers/c1/start'] = (_request, response) => response.writeHead(204).end();
    await new DockerHost(tunnel).run({ ...spec, bind });
    const create = seen.find((request) => request.url.startsWith('/containers/create'))!;
    expect((JSON.parse(create.body) as { HostConfig: unknown }).HostConfig).toMatchObject({
      PortBindings: { '3000/tcp': [{ HostIp: hostIp, HostPort: '50000' }] },
    });
  });

  it.each([
    ['10.0.0.5', '10.0.0.5'],
    ['0.0.0.0', '127.0.0.1'],
    ['', '127.0.0.1'],
  ])('probes a port published on %j at %s, from the host itself', async (hostIp, probed) => {
    routes['GET /containers/demo/json'] = (_request, response) =>
      json(response, 200, {
        Id: 'c1',
        Name: '/demo',
        State: { Status: 'running', Running: true, ExitCode: 0, Error: '' },
        HostConfig: { PortBindings: { '3000/tcp': [{ HostIp: hostIp, HostPort: '50000' }] } },
      });
    const forwarded: string[] = [];
    const recording: Tunnel = {
      ...tunnel,
      forwardTcp: (address: string, port: number) => {
        forwarded.push(`${address}:${port}`);
        return Promise.reject(new Error('refused'));
      },
    };
    const verdict = await new DockerHost(recording).waitHealthy('demo', 50000, { path: '/healthcheck', timeoutSeconds: 1, intervalSeconds: 1 });
    expect(verdict.healthy).toBe(false);
    expect(forwarded.length).toBeGreaterThan(0);
    expect(new Set(forwarded)).toEqual(new Set([`${probed}:50000`]));
  });

  it('removes a container it could not start, and says why with the host name', async () => {
    routes['POST /containers/create'] = (_request, response) => json(response, 201, { Id: 'c1' });
    routes['POST /containers/c1/start'] = (_request, response) =>
      json(response, 500, { message: 'driver failed programming external connectivity: port is already allocated' });
    routes['DELETE /containers/c1'] = (_request, response) => response.writeHead(204).end();
    await expect(new DockerHost(tunnel).run(spec)).rejects.toThrow(
      'fake-host: start demo failed: driver failed programming external connectivity: port is already allocated',
    );
    expect(seen.at(-1)).toMatchObject({ method: 'DELETE', url: '/containers/c1?force=true&v=true' });
  });

  it('fails an engine call that hangs, naming host and operation', async () => {
    routes['GET /_ping'] = () => undefined;
    await expect(new DockerHost(tunnel, { apiSeconds: 0.2 }).ping()).rejects.toThrow(
      'fake-host: ping the Docker engine timed out after 0.2s',
    );
  });

  it('fails a pull whose 200 stream carries an error', async () => {
    routes['POST /images/create'] = (_request, response) => {
      response.writeHead(200, { 'content-type': 'application/json' });
      response.write(`${JSON.stringify({ status: 'Pulling from demo', id: 'v9' })}\n`);
      response.end(`${JSON.stringify({ errorDetail: { message: 'unauthorized: authentication required' }, error: 'unauthorized' })}\n`);
    };
    const lines: string[] = [];
    await expect(new DockerHost(tunnel).pull('reg:5000/demo:v9', undefined, (line) => lines.push(line))).rejects.toThrow(
      'fake-host: pull reg:5000/demo:v9 failed: unauthorized: authentication required',
    );
    expect(lines).toEqual(['v9: Pulling from demo']);
    expect(seen[0]?.url).toBe('/images/create?fromImage=reg%3A5000%2Fdemo&tag=v9');
  });

  it('reads the holder of a lock it could not take', async () => {
    routes['POST /containers/create'] = (_request, response) => json(response, 409, { message: 'Conflict. The container name "/lock" is already in use' });
    routes['GET /containers/lock/json'] = (_request, response) =>
      json(response, 200, {
        Id: 'l1',
        Name: '/lock',
        Config: {
          Labels: {
            'deploy-action.lock.holder': 'octocat',
            'deploy-action.lock.run-url': 'https://github.example/runs/1',
            'deploy-action.lock.run-id': '1',
            'deploy-action.lock.version': 'v1.0.0',
            'deploy-action.lock.since': '2026-01-02T03:04:05.000Z',
          },
        },
      });
    const mine = { holder: 'hubot', runUrl: 'https://github.example/runs/2', runId: '2', attempt: '1', version: 'v1.1.0', since: new Date() };
    expect(await new DockerHost(tunnel).acquireLock('lock', mine, 'reg:5000/demo@sha256:abc')).toEqual({
      acquired: false,
      // A lock from before attempts were recorded.
      current: { holder: 'octocat', runUrl: 'https://github.example/runs/1', runId: '1', attempt: '', version: 'v1.0.0', since: new Date('2026-01-02T03:04:05Z') },
    });
  });

  it('does not take a container found by ID prefix for one of that name', async () => {
    routes['GET /containers/cafe/json'] = (_request, response) => json(response, 200, { Id: 'cafe0123', Name: '/someone-else' });
    expect(await new DockerHost(tunnel).containers('cafe')).toEqual({});
  });

  it('reports an exited container at once, with its demultiplexed logs', async () => {
    routes['GET /containers/demo/json'] = (_request, response) =>
      json(response, 200, { Id: 'c1', Name: '/demo', State: { Status: 'exited', Running: false, ExitCode: 3, Error: '' } });
    routes['GET /containers/c1/logs'] = (_request, response) => {
      const text = 'cannot bind :3000\n';
      const header = Buffer.alloc(8);
      header[0] = 2;
      header.writeUInt32BE(text.length, 4);
      response.writeHead(200).end(Buffer.concat([header, Buffer.from(text)]));
    };
    const verdict = await new DockerHost(tunnel).waitHealthy('demo', 50000, { path: '/healthcheck', timeoutSeconds: 30, intervalSeconds: 1 });
    expect(verdict).toEqual({
      healthy: false,
      detail: 'exited with code 3',
      logs: '--- last 30 log lines of demo ---\ncannot bind :3000',
    });
  });

  describe('release labels read back from the host', () => {
    const A = `sha256:${'a'.repeat(64)}`;
    const REPO = 'reg:5000/team/demo';
    const container = (labels: Record<string, string>, image: string) => (_request: Seen, response: http.ServerResponse) =>
      json(response, 200, { Id: 'c1', Name: '/demo', Config: { Labels: labels, Image: image }, State: { Status: 'running', Running: true } });

    it('keeps a release of the configured image, warning about nothing', async () => {
      routes['GET /containers/demo/json'] = container({ 'deploy-action.role': 'master', 'deploy-action.version': 'v1.0.0', 'deploy-action.digest': A }, `${REPO}@${A}`);
      const warnings: string[] = [];
      const found = await new DockerHost(tunnel).containers('demo', { repository: REPO, warn: (line) => warnings.push(line) });
      expect(found.master?.release).toEqual({ version: 'v1.0.0', digest: A, ref: `${REPO}@${A}` });
      expect(warnings).toEqual([]);
    });

    it('adopts a container whose version label is not a release tag, as one deploy-action did not create, and says so', async () => {
      routes['GET /containers/demo/json'] = container({ 'deploy-action.role': 'master', 'deploy-action.version': 'v1.0.0\n$(id)', 'deploy-action.digest': A }, `${REPO}@${A}`);
      const warnings: string[] = [];
      const found = await new DockerHost(tunnel).containers('demo', { repository: REPO, warn: (line) => warnings.push(line) });
      // Never the label's text: the version is unknown, the image is what the container was created from.
      expect(found.master?.release).toEqual({ version: 'unknown', ref: `${REPO}@${A}`, digest: A, adopted: true });
      expect(warnings).toEqual([
        'fake-host: the labels of demo are not trusted (version "v1.0.0\\n$(id)" is not a release tag): it is adopted as a container deploy-action did not create',
      ]);
    });
  });
});
