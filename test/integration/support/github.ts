// A local HTTP server that answers like the parts of the GitHub REST API the action uses, keeps
// their state in memory, and records every request it was asked. It is held to GitHub's own
// description of those operations (./github-spec.ts): it answers only operations the description
// defines, checks every request's parameters and body and every answer it gives against it, and
// records what does not match in `violations` (a bad request is also answered 422 with the
// problem, so the action fails loudly; a bad answer is sent as a 500). Tests assert that
// `violations` stays empty, and close() rejects while any is left unchecked.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { GITHUB_API_VERSION, findOperation, requestViolations, responseViolations, type MatchedOperation } from './github-spec.js';

export interface RecordedRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  body: unknown;
  /** The X-GitHub-Api-Version header, when sent. */
  apiVersion: string | undefined;
  /** GitHub's name of the operation asked for, when the description defines one there. */
  operationId: string | undefined;
}

export type StatusState = 'error' | 'failure' | 'inactive' | 'in_progress' | 'queued' | 'pending' | 'success';

export interface StoredStatus {
  id: number;
  state: StatusState;
  description: string;
  /** Left out of the answer when empty: the description makes these fields optional. */
  log_url: string;
  environment_url: string;
  created_at: string;
  /**
   * Who posted it (GitHub's `creator.login`): the token's actor, as for a deployment. GitHub lets
   * anyone with push access post a status on any deployment, so each status has its own.
   */
  creator: string | null;
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
  /**
   * Who created it (GitHub's `creator.login`): GITHUB_TOKEN's bot unless a test says otherwise;
   * null when GitHub answers `creator: null`, as its description allows.
   */
  creator: string | null;
  /** Oldest first, as they were added. */
  statuses: StoredStatus[];
}

/** A workflow run: its state, and what started it (GitHub's `path`, `event`, `head_branch`). */
export interface StoredRun {
  status: 'queued' | 'in_progress' | 'completed';
  conclusion?: string;
  path?: string;
  event?: string;
  headBranch?: string;
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
  /**
   * Workflow runs by id: what GET .../actions/runs/{id} answers. Unless a run says otherwise, it
   * is a push of tag v1.0.0 to .github/workflows/release.yml.
   */
  runs: Map<number, StoredRun>;
  /**
   * Environments by name; one missing is answered 404, as GitHub does. An environment with no
   * rule is answered without `protection_rules` (optional in GitHub's description);
   * `branchPolicy` adds a rule of that other type, `customRule` one of a type the description
   * does not name (a custom deployment protection rule's app).
   */
  environments: Map<string, { reviewers: number; waitTimer?: number; branchPolicy?: boolean; customRule?: string }>;
  /**
   * The reviews of each run (GET .../actions/runs/{id}/approvals); a run without an entry has
   * none, the answer GitHub gives for a run whose jobs waited for no reviewer.
   */
  reviews: Map<number, StoredReview[]>;
  /** Every deployment created, oldest first. */
  deployments: StoredDeployment[];
  /**
   * Who the next POST .../deployments or .../statuses is created by (the token's actor):
   * GITHUB_TOKEN's `github-actions[bot]` unless set, e.g. to a user whose personal token made it.
   */
  creator: { login: string | null };
  /** A canned answer for `METHOD /path` (e.g. a 403), taking the place of the usual one; held to the description too. */
  overrides: Map<string, { status: number; body: unknown }>;
  /**
   * Every mismatch with GitHub's description so far, each naming the operation and the field:
   * requests the description does not define or that break it, and answers that break it.
   */
  violations: string[];
  /** Back to a stand-in that has seen nothing and holds nothing (violations excepted: tests check those). */
  reset(): void;
  close(): Promise<void>;
}

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

const API = 'https://api.github.com';
const REPOSITORY = 'clay/demo';
const SHA = '0123456789abcdef0123456789abcdef01234567';

/** A simple-user object as GitHub embeds one; bots have `[bot]` logins and type Bot. */
function user(login: string) {
  const bot = login.endsWith('[bot]');
  const id = login === 'github-actions[bot]' ? 41898282 : 5000 + [...login].reduce((sum, c) => sum + c.charCodeAt(0), 0);
  const api = `${API}/users/${encodeURIComponent(login)}`;
  return {
    login,
    id,
    node_id: login === 'github-actions[bot]' ? 'MDM6Qm90NDE4OTgyODI=' : `U_${id}`,
    avatar_url: `https://avatars.githubusercontent.com/${bot ? 'in/15368' : `u/${id}`}?v=4`,
    gravatar_id: '',
    url: api,
    html_url: bot ? `https://github.com/apps/${encodeURIComponent(login.slice(0, -'[bot]'.length))}` : `https://github.com/${login}`,
    followers_url: `${api}/followers`,
    following_url: `${api}/following{/other_user}`,
    gists_url: `${api}/gists{/gist_id}`,
    starred_url: `${api}/starred{/owner}{/repo}`,
    subscriptions_url: `${api}/subscriptions`,
    organizations_url: `${api}/orgs`,
    repos_url: `${api}/repos`,
    events_url: `${api}/events{/privacy}`,
    received_events_url: `${api}/received_events`,
    type: bot ? 'Bot' : 'User',
    user_view_type: 'public',
    site_admin: false,
  };
}

/** The repository as GitHub's minimal-repository embeds it: its API links follow one pattern. */
function repository() {
  const url = `${API}/repos/${REPOSITORY}`;
  const links = ['archive', 'assignees', 'blobs', 'branches', 'collaborators', 'comments', 'commits', 'compare', 'contents', 'contributors', 'deployments', 'downloads', 'events', 'forks', 'git_commits', 'git_refs', 'git_tags', 'hooks', 'issue_comment', 'issue_events', 'issues', 'keys', 'labels', 'languages', 'merges', 'milestones', 'notifications', 'pulls', 'releases', 'stargazers', 'statuses', 'subscribers', 'subscription', 'tags', 'teams', 'trees'];
  return {
    id: 700001,
    node_id: 'R_700001',
    name: 'demo',
    full_name: REPOSITORY,
    owner: user('clay'),
    private: false,
    html_url: `https://github.com/${REPOSITORY}`,
    description: null,
    fork: false,
    url,
    ...Object.fromEntries(links.map((link) => [`${link}_url`, `${url}/${link.replaceAll('_', '/')}`])),
  };
}

function environmentJson(name: string) {
  const id = 160000 + [...name].reduce((sum, c) => sum + c.charCodeAt(0), 0);
  return {
    id,
    node_id: `EN_${id}`,
    name,
    url: `${API}/repos/${REPOSITORY}/environments/${encodeURIComponent(name)}`,
    html_url: `https://github.com/${REPOSITORY}/deployments/activity_log?environments_filter=${encodeURIComponent(name)}`,
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
  };
}

function deploymentJson(d: StoredDeployment) {
  const url = `${API}/repos/${REPOSITORY}/deployments/${d.id}`;
  return {
    url,
    id: d.id,
    node_id: `DE_${d.id}`,
    sha: SHA,
    ref: d.ref,
    task: d.task,
    payload: d.payload,
    original_environment: d.environment,
    environment: d.environment,
    description: d.description,
    creator: d.creator === null ? null : user(d.creator),
    created_at: d.created_at,
    updated_at: d.statuses.at(-1)?.created_at ?? d.created_at,
    statuses_url: `${url}/statuses`,
    repository_url: `${API}/repos/${REPOSITORY}`,
    transient_environment: d.transient_environment,
    production_environment: d.production_environment,
  };
}

function statusJson(d: StoredDeployment, s: StoredStatus) {
  const deploymentUrl = `${API}/repos/${REPOSITORY}/deployments/${d.id}`;
  return {
    url: `${deploymentUrl}/statuses/${s.id}`,
    id: s.id,
    node_id: `DES_${s.id}`,
    state: s.state,
    creator: s.creator === null ? null : user(s.creator),
    description: s.description,
    environment: d.environment,
    target_url: s.log_url,
    created_at: s.created_at,
    updated_at: s.created_at,
    deployment_url: deploymentUrl,
    repository_url: `${API}/repos/${REPOSITORY}`,
    ...(s.log_url ? { log_url: s.log_url } : {}),
    ...(s.environment_url ? { environment_url: s.environment_url } : {}),
  };
}

/** A workflow run as GitHub answers GET .../actions/runs/{run_id}; `conclusion` is null until it ends. */
function runJson(id: number, state: StoredRun) {
  const url = `${API}/repos/${REPOSITORY}/actions/runs/${id}`;
  return {
    id,
    name: 'release',
    node_id: `WFR_${id}`,
    head_branch: state.headBranch ?? 'v1.0.0',
    head_sha: SHA,
    path: state.path ?? '.github/workflows/release.yml',
    display_title: 'release',
    run_number: id,
    event: state.event ?? 'push',
    status: state.status,
    conclusion: state.conclusion ?? null,
    workflow_id: 90001,
    url,
    html_url: `https://github.com/${REPOSITORY}/actions/runs/${id}`,
    pull_requests: [],
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    run_attempt: 1,
    jobs_url: `${url}/jobs`,
    logs_url: `${url}/logs`,
    check_suite_url: `${API}/repos/${REPOSITORY}/check-suites/${id}`,
    artifacts_url: `${url}/artifacts`,
    cancel_url: `${url}/cancel`,
    rerun_url: `${url}/rerun`,
    workflow_url: `${API}/repos/${REPOSITORY}/actions/workflows/90001`,
    head_commit: { id: SHA, tree_id: SHA, message: 'Release', timestamp: '2026-01-01T00:00:00Z', author: null, committer: null },
    repository: repository(),
    head_repository: repository(),
  };
}

export async function startGitHub(): Promise<GitHubStandIn> {
  const requests: RecordedRequest[] = [];
  const runs: GitHubStandIn['runs'] = new Map();
  const environments: GitHubStandIn['environments'] = new Map();
  const deployments: StoredDeployment[] = [];
  const overrides: GitHubStandIn['overrides'] = new Map();
  const reviews: GitHubStandIn['reviews'] = new Map();
  const violations: string[] = [];
  const creator: GitHubStandIn['creator'] = { login: 'github-actions[bot]' };
  const ids = { deployment: 1, status: 1 };

  const addStatus = (d: StoredDeployment, state: StatusState, fields: Partial<StoredStatus> = {}) => {
    const status: StoredStatus = { id: ids.status++, state, description: '', log_url: '', environment_url: '', created_at: timestamp(), creator: creator.login, ...fields };
    d.statuses.push(status);
    return status;
  };

  /** The answer to one authenticated request that GitHub's description allows: [status, body]. */
  function answer(operation: MatchedOperation, query: Record<string, string>, body: Record<string, unknown>): [number, unknown] {
    const notFound: [number, unknown] = [404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' }];
    const params = operation.pathParams;
    switch (operation.operationId) {
      case 'actions/get-workflow-run': {
        const state = runs.get(Number(params.run_id));
        return state ? [200, runJson(Number(params.run_id), state)] : notFound;
      }
      case 'actions/get-reviews-for-run': {
        const given = reviews.get(Number(params.run_id)) ?? [];
        return [200, given.map((r) => ({ state: r.state, comment: r.comment ?? '', environments: r.environments.map(environmentJson), user: user(r.user) }))];
      }
      case 'repos/get-environment': {
        const name = params.environment_name!;
        const env = environments.get(name);
        if (!env) return notFound;
        const reviewers = Array.from({ length: env.reviewers }, (_, i) => ({ type: 'User', reviewer: user(`reviewer${i + 1}`) }));
        // GitHub lists a rule only when it is configured.
        const rules = [
          ...(env.waitTimer ? [{ id: 2, node_id: 'GA_2', type: 'wait_timer', wait_timer: env.waitTimer }] : []),
          ...(env.reviewers ? [{ id: 3, node_id: 'GA_3', type: 'required_reviewers', prevent_self_review: false, reviewers }] : []),
          ...(env.branchPolicy ? [{ id: 4, node_id: 'GA_4', type: 'branch_policy' }] : []),
          ...(env.customRule ? [{ id: 5, node_id: 'GA_5', type: env.customRule }] : []),
        ];
        return [
          200,
          {
            ...environmentJson(name),
            can_admins_bypass: true,
            ...(rules.length > 0 ? { protection_rules: rules } : {}),
            deployment_branch_policy: env.branchPolicy ? { protected_branches: false, custom_branch_policies: true } : null,
          },
        ];
      }
      case 'repos/list-deployments': {
        const matching = deployments.filter((d) => query.environment === undefined || d.environment === query.environment);
        return [200, page(newestFirst(matching), query).map(deploymentJson)];
      }
      case 'repos/create-deployment': {
        const name = typeof body.environment === 'string' ? body.environment : 'production';
        const d: StoredDeployment = {
          id: ids.deployment++,
          ref: String(body.ref),
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
      case 'repos/list-deployment-statuses':
      case 'repos/create-deployment-status': {
        const d = deployments.find((x) => x.id === Number(params.deployment_id));
        if (!d) return notFound;
        if (operation.method === 'GET') return [200, page(newestFirst(d.statuses), query).map((s) => statusJson(d, s))];
        const state = body.state as StatusState;
        const description = typeof body.description === 'string' ? body.description : '';
        // GitHub's limit, which its description states for the answer but not the request.
        if ([...description].length > 140) return [422, { message: 'Validation Failed', errors: [{ resource: 'DeploymentStatus', code: 'custom', field: 'description', message: 'description is too long (maximum is 140 characters)' }], documentation_url: 'https://docs.github.com/rest' }];
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
      default:
        throw new Error(`the stand-in does not implement ${operation.operationId}`);
    }
  }

  /** [status, body] for one request, after holding it to GitHub's description. */
  function handle(method: string, url: URL, raw: string, headers: http.IncomingHttpHeaders): [number, unknown] {
    const query = Object.fromEntries(url.searchParams);
    const operation = findOperation(method, url.pathname);
    const apiVersion = typeof headers['x-github-api-version'] === 'string' ? headers['x-github-api-version'] : undefined;
    const record: RecordedRequest = { method, path: url.pathname, query, body: raw, apiVersion, operationId: operation?.operationId };
    requests.push(record);
    if (!operation) {
      violations.push(`${method} ${url.pathname}: GitHub's description defines no such operation`);
      return [404, { message: `Not Found: ${method} ${url.pathname}` }];
    }
    // GitHub answers a request without the header as this version, its default.
    if (apiVersion !== undefined && apiVersion !== GITHUB_API_VERSION) {
      violations.push(`${operation.operationId}: X-GitHub-Api-Version ${apiVersion}, while the description is of ${GITHUB_API_VERSION}`);
    }
    try {
      record.body = raw ? (JSON.parse(raw) as unknown) : undefined;
    } catch {
      violations.push(`${operation.operationId}: request body (whole): not JSON`);
      return [400, { message: 'Problems parsing JSON' }];
    }
    if (!/^(token|bearer) test-token$/i.test(headers.authorization ?? '')) return [401, { message: 'Bad credentials' }];
    const problems = requestViolations(operation, query, record.body);
    if (problems.length > 0) {
      violations.push(...problems);
      return [422, { message: `Not what GitHub's description allows: ${problems.join('; ')}` }];
    }
    const override = overrides.get(`${method} ${url.pathname}`);
    const [status, body] = override ? [override.status, override.body] : answer(operation, query, (record.body ?? {}) as Record<string, unknown>);
    const wrong = responseViolations(operation, status, body);
    if (wrong.length > 0) {
      violations.push(...wrong);
      return [500, { message: `The stand-in's answer is not what GitHub's description allows: ${wrong.join('; ')}` }];
    }
    return [status, body];
  }

  const server = http.createServer((request, response) => {
    let raw = '';
    request.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    request.on('end', () => {
      const [status, body] = handle(request.method ?? 'GET', new URL(request.url ?? '/', 'http://localhost'), raw, request.headers);
      send(response, status, body);
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
    violations,
    reset: () => {
      requests.length = 0;
      deployments.length = 0;
      environments.clear();
      reviews.clear();
      overrides.clear();
      runs.clear();
      creator.login = 'github-actions[bot]';
    },
    close: async () => {
      await new Promise<void>((done) => server.close(() => done()));
      if (violations.length > 0) throw new Error(`GitHub stand-in: requests or answers that GitHub's description does not allow:\n${violations.join('\n')}`);
    },
  };
}
