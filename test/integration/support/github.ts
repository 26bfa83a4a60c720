// A local HTTP server that answers like the parts of the GitHub REST API the action uses, keeps
// their state in memory, and records every request it was asked.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  body: unknown;
}

export interface GitHubStandIn {
  url: string;
  requests: RecordedRequest[];
  /** Workflow runs by id: what GET .../actions/runs/{id} answers. */
  runs: Map<number, { status: 'queued' | 'in_progress' | 'completed'; conclusion?: string }>;
  close(): Promise<void>;
}

function send(response: http.ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

export async function startGitHub(): Promise<GitHubStandIn> {
  const requests: RecordedRequest[] = [];
  const runs: GitHubStandIn['runs'] = new Map();
  const server = http.createServer((request, response) => {
    let raw = '';
    request.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      const body = raw ? (JSON.parse(raw) as unknown) : undefined;
      requests.push({ method: request.method ?? 'GET', path: url.pathname, body });
      if (!/^(token|bearer) test-token$/i.test(request.headers.authorization ?? '')) {
        return send(response, 401, { message: 'Bad credentials' });
      }
      const run = /^\/repos\/([^/]+)\/([^/]+)\/actions\/runs\/(\d+)$/.exec(url.pathname);
      if (request.method === 'GET' && run) {
        const state = runs.get(Number(run[3]));
        if (!state) return send(response, 404, { message: 'Not Found' });
        return send(response, 200, { id: Number(run[3]), status: state.status, conclusion: state.conclusion ?? null });
      }
      send(response, 404, { message: `Not Found: ${request.method} ${url.pathname}` });
    });
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    runs,
    close: () => new Promise((done) => server.close(() => done())),
  };
}
