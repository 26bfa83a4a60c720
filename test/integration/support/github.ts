// A local HTTP server that answers like the parts of the GitHub REST API the action uses, keeps
// their state in memory, and records every request it was asked.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
}

export type StatusState = 'error' | 'failure' | 'inactive' | 'in_progress' | 'queued' | 'pending' | 'success';

export interface StoredStatus {
  id: number;
  state: StatusState;
  description: string;
  log_url: string;
  environment_url: string;
  created_at: string;
}

export interface StoredDeployment {
  id: number;
  ref: string;
  task: string;
  environment: string;
  /** As it was sent: an object, or a string when the client sent one. */
  payload: unknown;
  description: string | null;
  production_environment: boolean;
  transient_environment: boolean;
  created_at: string;
  /** Who created it (GitHub's `creator.login`): GITHUB_TOKEN's bot unless a test says otherwise. */
  creator: string;
  /** Oldest first, as they were added. */
  statuses: StoredStatus[];
}

/** One review of a run's deployments, as a reviewer gave it in GitHub's "Review deployments". */
export interface StoredReview {
  state: 'approved' | 'rejected';
  environments: string[];
  user: string;
  comment?: string;
}

export interface GitHubStandIn {
  url: string;
  requests: RecordedRequest[];
  /** Workflow runs by id: what GET .../actions/runs/{id} answers. */
  runs: Map<number, { status: 'queued' | 'in_progress' | 'completed'; conclusion?: string }>;
  /** Environments by name; one missing is answered 404, as GitHub does. */
  environments: Map<string, { reviewers: number; waitTimer?: number }>;
  /**
   * The reviews of each run (GET .../actions/runs/{id}/approvals); a run without an entry has
   * none, the answer GitHub gives for a run whose jobs waited for no reviewer.
   */
  reviews: Map<number, StoredReview[]>;
  /** Every deployment created, oldest first. */
  deployments: StoredDeployment[];
  /**
   * Who the next POST .../deployments is created by (the token's actor): GITHUB_TOKEN's
   * `github-actions[bot]` unless set, e.g. to a user whose personal token made the record.
   */
  creator: { login: string };
  /** A canned answer for `METHOD /path` (e.g. a 403), taking the place of the usual one. */
  overrides: Map<string, { status: number; body: unknown }>;
  close(): Promise<void>;
}

const STATES: StatusState[] = ['error', 'failure', 'inactive', 'in_progress', 'queued', 'pending', 'success'];

function send(response: http.ServerResponse, status: number, body: unknown) {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

/** GitHub's timestamps have whole seconds. */
const timestamp = () => new Date().toISOString().replace(/\.\d{3}Z$/, 'Z');

/** `per_page` (default 30, at most 100) and `page` (from 1), as GitHub pages a list. */
function page<T>(items: T[], query: Record<string, string>): T[] {
  const size = Math.min(Number(query.per_page ?? 30) || 30, 100);
  const start = ((Number(query.page ?? 1) || 1) - 1) * size;
  return items.slice(start, start + size);
}

const newestFirst = <T extends { id: number }>(items: T[]) => [...items].sort((a, b) => b.id - a.id);

export async function startGitHub(): Promise<GitHubStandIn> {
  const requests: RecordedRequest[] = [];
  const runs: GitHubStandIn['runs'] = new Map();
  const environments: GitHubStandIn['environments'] = new Map();
  const deployments: StoredDeployment[] = [];
  const overrides: GitHubStandIn['overrides'] = new Map();
  const reviews: GitHubStandIn['reviews'] = new Map();
  const creator = { login: 'github-actions[bot]' };
  const ids = { deployment: 1, status: 1 };

  /** A simple-user object as GitHub embeds one; bots have `[bot]` logins and type Bot. */
  const user = (login: string) =>
    login === 'github-actions[bot]'
      ? { login, id: 41898282, node_id: 'MDM6Qm90NDE4OTgyODI=', type: 'Bot', site_admin: false }
      : { login, id: 5000 + login.length, node_id: `U_${login}`, type: login.endsWith('[bot]') ? 'Bot' : 'User', site_admin: false };
  const environmentJson = (name: string) => {
    const id = 160000 + [...name].reduce((sum, c) => sum + c.charCodeAt(0), 0);
    return {
      id,
      node_id: `EN_${id}`,
      name,
      url: `https://api.github.com/repos/clay/demo/environments/${encodeURIComponent(name)}`,
      html_url: `https://github.com/clay/demo/deployments/activity_log?environments_filter=${encodeURIComponent(name)}`,
      created_at: '2026-01-01T00:00:00Z',
      updated_at: '2026-01-01T00:00:00Z',
    };
  };
  const deploymentJson = (d: StoredDeployment) => ({
    id: d.id,
    node_id: `DE_${d.id}`,
    sha: '0123456789abcdef0123456789abcdef01234567',
    ref: d.ref,
    task: d.task,
    payload: d.payload,
    original_environment: d.environment,
    environment: d.environment,
    description: d.description,
    creator: user(d.creator),
    created_at: d.created_at,
    updated_at: d.statuses.at(-1)?.created_at ?? d.created_at,
    transient_environment: d.transient_environment,
    production_environment: d.production_environment,
  });
  const statusJson = (d: StoredDeployment, s: StoredStatus) => ({
    id: s.id,
    node_id: `DES_${s.id}`,
    state: s.state,
    description: s.description,
    environment: d.environment,
    target_url: s.log_url,
    log_url: s.log_url,
    environment_url: s.environment_url,
    created_at: s.created_at,
    updated_at: s.created_at,
    creator: { login: 'github-actions[bot]', id: 41898282, type: 'Bot' },
  });
  const addStatus = (d: StoredDeployment, state: StatusState, fields: Partial<StoredStatus> = {}) => {
    const status: StoredStatus = { id: ids.status++, state, description: '', log_url: '', environment_url: '', created_at: timestamp(), ...fields };
    d.statuses.push(status);
    return status;
  };

  /** The answer to one authenticated request: [status, body]. */
  function answer(method: string, path: string, query: Record<string, string>, body: Record<string, unknown>): [number, unknown] {
    const notFound: [number, unknown] = [404, { message: 'Not Found' }];
    const run = /^\/repos\/[^/]+\/[^/]+\/actions\/runs\/(\d+)$/.exec(path);
    if (method === 'GET' && run) {
      const state = runs.get(Number(run[1]));
      return state ? [200, { id: Number(run[1]), status: state.status, conclusion: state.conclusion ?? null }] : notFound;
    }
    const approvals = /^\/repos\/[^/]+\/[^/]+\/actions\/runs\/(\d+)\/approvals$/.exec(path);
    if (method === 'GET' && approvals) {
      const given = reviews.get(Number(approvals[1])) ?? [];
      return [200, given.map((r) => ({ state: r.state, comment: r.comment ?? '', environments: r.environments.map(environmentJson), user: user(r.user) }))];
    }
    const environment = /^\/repos\/[^/]+\/[^/]+\/environments\/([^/]+)$/.exec(path);
    if (method === 'GET' && environment) {
      const name = decodeURIComponent(environment[1]!);
      const env = environments.get(name);
      if (!env) return notFound;
      const reviewers = Array.from({ length: env.reviewers }, (_, i) => ({ type: 'User', reviewer: { login: `reviewer${i + 1}`, id: 1000 + i, type: 'User' } }));
      return [
        200,
        {
          id: 1,
          node_id: 'EN_1',
          name,
          created_at: '2026-01-01T00:00:00Z',
          updated_at: '2026-01-01T00:00:00Z',
          can_admins_bypass: true,
          // GitHub lists a rule only when it is configured.
          protection_rules: [
            ...(env.waitTimer ? [{ id: 2, node_id: 'GA_2', type: 'wait_timer', wait_timer: env.waitTimer }] : []),
            ...(env.reviewers ? [{ id: 3, node_id: 'GA_3', type: 'required_reviewers', prevent_self_review: false, reviewers }] : []),
          ],
          deployment_branch_policy: null,
        },
      ];
    }
    if (/^\/repos\/[^/]+\/[^/]+\/deployments$/.test(path)) {
      if (method === 'GET') {
        const matching = deployments.filter((d) => query.environment === undefined || d.environment === query.environment);
        return [200, page(newestFirst(matching), query).map(deploymentJson)];
      }
      if (method === 'POST') {
        if (typeof body.ref !== 'string' || !body.ref) return [422, { message: 'Invalid request.\n\n"ref" wasn\'t supplied.' }];
        const name = typeof body.environment === 'string' ? body.environment : 'production';
        const d: StoredDeployment = {
          id: ids.deployment++,
          ref: body.ref,
          task: typeof body.task === 'string' ? body.task : 'deploy',
          environment: name,
          payload: body.payload ?? {},
          description: typeof body.description === 'string' ? body.description : null,
          production_environment: typeof body.production_environment === 'boolean' ? body.production_environment : name === 'production',
          transient_environment: body.transient_environment === true,
          created_at: timestamp(),
          creator: creator.login,
          statuses: [],
        };
        deployments.push(d);
        return [201, deploymentJson(d)];
      }
    }
    const statuses = /^\/repos\/[^/]+\/[^/]+\/deployments\/(\d+)\/statuses$/.exec(path);
    if (statuses) {
      const d = deployments.find((x) => x.id === Number(statuses[1]));
      if (!d) return notFound;
      if (method === 'GET') return [200, page(newestFirst(d.statuses), query).map((s) => statusJson(d, s))];
      if (method === 'POST') {
        const state = body.state as StatusState;
        const description = typeof body.description === 'string' ? body.description : '';
        if (!STATES.includes(state)) return [422, { message: `Invalid request.\n\n${String(body.state)} is not a member of ${STATES.join(', ')}.` }];
        if (description.length > 140) return [422, { message: 'Validation Failed: description is too long (maximum is 140 characters)' }];
        const log = typeof body.log_url === 'string' ? body.log_url : typeof body.target_url === 'string' ? body.target_url : '';
        const status = addStatus(d, state, { description, log_url: log, environment_url: typeof body.environment_url === 'string' ? body.environment_url : '' });
        // auto_inactive (default true): a success retires the environment's earlier deployments
        // that had succeeded. GitHub's reference also says "non-production", while its 2018
        // changelog extends this to production; the action reads `inactive` as succeeded
        // either way, so the stand-in does it for every environment.
        if (state === 'success' && body.auto_inactive !== false && !d.transient_environment) {
          for (const earlier of deployments) {
            if (earlier.id < d.id && earlier.environment === d.environment && earlier.statuses.at(-1)?.state === 'success') addStatus(earlier, 'inactive');
          }
        }
        return [201, statusJson(d, status)];
      }
    }
    return [404, { message: `Not Found: ${method} ${path}` }];
  }

  const server = http.createServer((request, response) => {
    let raw = '';
    request.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    request.on('end', () => {
      const url = new URL(request.url ?? '/', 'http://localhost');
      const method = request.method ?? 'GET';
      const query = Object.fromEntries(url.searchParams);
      let body: unknown;
      try {
        body = raw ? (JSON.parse(raw) as unknown) : undefined;
      } catch {
        requests.push({ method, path: url.pathname, query, body: raw });
        return send(response, 400, { message: 'Problems parsing JSON' });
      }
      requests.push({ method, path: url.pathname, query, body });
      if (!/^(token|bearer) test-token$/i.test(request.headers.authorization ?? '')) {
        return send(response, 401, { message: 'Bad credentials' });
      }
      const override = overrides.get(`${method} ${url.pathname}`);
      if (override) return send(response, override.status, override.body);
      const [status, answerBody] = answer(method, url.pathname, query, (body ?? {}) as Record<string, unknown>);
      send(response, status, answerBody);
    });
  });
  await new Promise<void>((ready) => server.listen(0, '127.0.0.1', ready));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    runs,
    environments,
    reviews,
    deployments,
    creator,
    overrides,
    close: () => new Promise((done) => server.close(() => done())),
  };
}
