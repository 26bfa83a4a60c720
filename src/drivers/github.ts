// The GitHub REST API, through @actions/github's Octokit, limited to what the action uses.
import { getOctokit } from '@actions/github';
import type { RunReview } from '../release/approval.js';
import type { DeploymentRecord, DeploymentState } from '../release/history.js';
import { RECORD_MARKER, statusState, type WorkflowRunFacts } from '../release/trust.js';
import { redact } from '../report/secrets.js';

export interface NewDeployment {
  /** The tag deployed (GitHub resolves it to a commit). */
  ref: string;
  environment: string;
  /** RECORD_MARKER's key carries its value: what marks the record as the action's. */
  payload: { version: string; image: string; digest: string; [RECORD_MARKER.key]: string; run_id?: string; run_attempt?: string };
  production: boolean;
  description: string;
  task: 'deploy' | 'rollback';
}

export interface DeploymentStatusDetails {
  environmentUrl?: string;
  logUrl: string;
  description: string;
}

/**
 * The REST API version the action is written and tested for (test/fixtures/github-api.json, from
 * GitHub's description of it), named in every request so that a later default cannot change the
 * answers under it.
 */
export const GITHUB_API_VERSION = '2022-11-28';

/**
 * The REST operations the action calls (GitHub's operationIds), each with the permission it needs
 * of the token, in the words of a workflow's `permissions:` (GitHub's REST reference). docs/workflows.md
 * lists them; tests hold the calls below, the fixture and the example workflows to this table.
 */
export const GITHUB_OPERATIONS = {
  'actions/get-workflow-run': 'actions: read',
  'actions/get-reviews-for-run': 'actions: read',
  'repos/get-environment': 'actions: read',
  'repos/list-deployments': 'deployments: read',
  'repos/list-deployment-statuses': 'deployments: read',
  'repos/create-deployment': 'deployments: write',
  'repos/create-deployment-status': 'deployments: write',
} as const;
type OperationId = keyof typeof GITHUB_OPERATIONS;

/** GitHub's limit for a deployment status description. */
const DESCRIPTION_MAX = 140;
/**
 * Statuses read per deployment: one page, the most GitHub gives. The action posts three or four;
 * a record whose own statuses someone pushed off the page by posting a hundred reads as having
 * none, and so as not succeeded: that can refuse a promotion, never allow one.
 */
const STATUSES_READ = 100;
/** Records read to find those a run left open (openRecordsOfRun). */
const OPEN_RECORDS_READ = 10;
/** Status requests in flight at once: GitHub asks integrations not to fire many concurrently. */
const STATUS_READS_AT_ONCE = 4;

/** An API answer other than the expected one, with the HTTP status (0 when none was received). */
export class GitHubApiError extends Error {
  override name = 'GitHubApiError';
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

function httpStatus(error: unknown): number {
  const status = (error as { status?: unknown } | null)?.status;
  return typeof status === 'number' ? status : 0;
}

/**
 * Wraps a failed request of `operation`: what was being done, the HTTP status, GitHub's message,
 * and for a refusal the permission the token lacks (GITHUB_OPERATIONS), as `permissions:` says it.
 */
function failure(error: unknown, doing: string, operation: OperationId): GitHubApiError {
  const permission = GITHUB_OPERATIONS[operation];
  const status = httpStatus(error);
  const message = error instanceof Error ? error.message : String(error);
  const hint =
    status === 403
      ? `; the token needs the ${permission} permission (for GITHUB_TOKEN: \`permissions: { ${permission} }\` on the job)`
      : status === 401
        ? '; the github-token is not valid'
        : '';
  return new GitHubApiError(`Could not ${doing}: ${status ? `HTTP ${status}` : 'no answer'} (${message})${hint}`, status);
}

function truncate(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

/** The fields the action records, from a payload GitHub returns as an object or a JSON string. */
function readPayload(raw: unknown): DeploymentRecord['payload'] {
  let value = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      return {};
    }
  }
  if (typeof value !== 'object' || value === null) return {};
  const fields = value as Record<string, unknown>;
  const out: DeploymentRecord['payload'] = {};
  for (const key of ['version', 'image', 'digest'] as const) {
    if (typeof fields[key] === 'string') out[key] = fields[key];
  }
  const marker = fields[RECORD_MARKER.key];
  if (typeof marker === 'string') out.recordedBy = marker;
  // The run that wrote it (records of earlier builds have none); digits only, as GitHub's ids are.
  const runId = fields.run_id;
  if (isGitHubId(runId)) out.runId = String(runId);
  // Its attempt (a re-run shares the run id); records written before it was recorded have none.
  if (isGitHubId(fields.run_attempt)) out.runAttempt = String(fields.run_attempt);
  return out;
}

const isGitHubId = (value: unknown) => (typeof value === 'string' && /^\d+$/.test(value)) || (typeof value === 'number' && Number.isSafeInteger(value) && value > 0);

/** Runs `fn` over `items` with at most `width` calls pending, keeping the order of the results. */
async function mapBounded<T, R>(items: T[], width: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      results[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
  return results;
}

export class GitHubApi {
  private readonly octokit: ReturnType<typeof getOctokit>;
  private readonly owner: string;
  private readonly repo: string;

  constructor(token: string, apiUrl: string, repository: string) {
    this.octokit = getOctokit(token, { baseUrl: apiUrl });
    this.octokit.hook.before('request', (options) => {
      options.headers['x-github-api-version'] = GITHUB_API_VERSION;
    });
    const [owner = '', repo = ''] = repository.split('/');
    this.owner = owner;
    this.repo = repo;
  }

  /** Whether a workflow run has ended (completed, cancelled, failed). */
  async runEnded(runId: string): Promise<boolean> {
    const { data } = await this.octokit.rest.actions.getWorkflowRun({ owner: this.owner, repo: this.repo, run_id: Number(runId) });
    return data.status === 'completed';
  }

  /** What GitHub says of a workflow run: its workflow file, what started it, for which branch or tag. */
  async workflowRun(runId: string): Promise<WorkflowRunFacts> {
    const { data } = await this.octokit.rest.actions.getWorkflowRun({ owner: this.owner, repo: this.repo, run_id: Number(runId) }).catch((error: unknown) => {
      throw failure(error, `read workflow run ${runId}`, 'actions/get-workflow-run');
    });
    return { path: data.path, event: data.event, headBranch: data.head_branch ?? undefined };
  }

  /**
   * Whether the environment exists on GitHub, how many reviewers its required-reviewers rules
   * name, and its other protection rules that gate a job (a wait timer, a custom rule's app), as
   * words for a message; a branch policy gates no job once it runs, and is left out.
   */
  async environmentReviewers(environment: string): Promise<{ exists: boolean; reviewers: number; otherRules?: string[] }> {
    try {
      const { data } = await this.octokit.rest.repos.getEnvironment({ owner: this.owner, repo: this.repo, environment_name: environment });
      let reviewers = 0;
      const otherRules: string[] = [];
      for (const rule of data.protection_rules ?? []) {
        if (rule.type === 'required_reviewers' && 'reviewers' in rule) reviewers += rule.reviewers?.length ?? 0;
        else if (rule.type === 'wait_timer') otherRules.push(`a wait timer${'wait_timer' in rule && typeof rule.wait_timer === 'number' ? ` (${rule.wait_timer} minutes)` : ''}`);
        else if (rule.type !== 'branch_policy' && rule.type !== 'required_reviewers') otherRules.push(`a custom protection rule (${truncate(String(rule.type), 60)})`);
      }
      return { exists: true, reviewers, ...(otherRules.length > 0 ? { otherRules } : {}) };
    } catch (error) {
      // GitHub answers 404 for an environment that was never created (in Settings or by a job).
      if (httpStatus(error) === 404) return { exists: false, reviewers: 0 };
      throw failure(error, `read the GitHub environment ${environment}`, 'repos/get-environment');
    }
  }

  /**
   * The reviews of a workflow run's deployments: which environments were approved or rejected,
   * by whom. Needs `actions: read`.
   */
  async runReviews(runId: string): Promise<RunReview[]> {
    const { data } = await this.octokit.rest.actions
      .getReviewsForRun({ owner: this.owner, repo: this.repo, run_id: Number(runId) })
      .catch((error: unknown) => {
        throw failure(error, `read the approvals of workflow run ${runId}`, 'actions/get-reviews-for-run');
      });
    return data.map((review) => ({
      state: review.state,
      environments: review.environments.flatMap((env) => (typeof env.name === 'string' ? [env.name] : [])),
      user: review.user?.login ?? 'someone',
    }));
  }

  /** Records a deployment of `d.ref` to `d.environment`; returns its id. */
  async createDeployment(d: NewDeployment): Promise<number> {
    const doing = `create a GitHub deployment of ${d.ref} to ${d.environment}`;
    const response = await this.octokit.rest.repos
      .createDeployment({
        owner: this.owner,
        repo: this.repo,
        ref: d.ref,
        environment: d.environment,
        payload: d.payload,
        production_environment: d.production,
        description: d.description,
        task: d.task,
        // The tag is what gets deployed: never merge the default branch into it, and do not wait
        // for commit statuses (the build job that made the image is the check that matters).
        auto_merge: false,
        required_contexts: [],
        transient_environment: false,
      })
      .catch((error: unknown) => {
        throw failure(error, doing, 'repos/create-deployment');
      });
    // 202 means GitHub merged or will merge instead of deploying, which auto_merge: false rules
    // out; it carries a message and no id.
    const data: { id?: unknown; message?: unknown } = response.data;
    if (typeof data.id !== 'number') {
      throw new GitHubApiError(`Could not ${doing}: HTTP ${response.status} without a deployment (${String(data.message ?? 'no message')})`, response.status);
    }
    return data.id;
  }

  /** Adds a status to a deployment; a `success` makes GitHub mark the environment's earlier ones inactive. */
  async setDeploymentStatus(id: number, state: 'in_progress' | 'success' | 'failure', s: DeploymentStatusDetails): Promise<void> {
    await this.octokit.rest.repos
      .createDeploymentStatus({
        owner: this.owner,
        repo: this.repo,
        deployment_id: id,
        state,
        // GitHub shows it in its UI, where the runner's masking does not reach.
        description: truncate(redact(s.description), DESCRIPTION_MAX),
        // An empty URL is left out rather than sent: GitHub shows a link for whatever it is given.
        ...(s.logUrl ? { log_url: s.logUrl } : {}),
        ...(s.environmentUrl ? { environment_url: s.environmentUrl } : {}),
      })
      .catch((error: unknown) => {
        throw failure(error, `set the GitHub deployment ${id} to ${state}`, 'repos/create-deployment-status');
      });
  }

  /**
   * The environment's latest deployments, newest first, each with the state of its newest status
   * that GITHUB_TOKEN posted (statusState). `limit` (1 to 100) keeps it to one page and that many
   * status requests.
   */
  async deployments(environment: string, limit = 50): Promise<DeploymentRecord[]> {
    if (!Number.isInteger(limit) || limit < 1 || limit > 100) throw new RangeError(`deployments: limit ${limit} is not between 1 and 100`);
    const doing = `read the GitHub deployments of ${environment}`;
    const { data } = await this.octokit.rest.repos
      .listDeployments({ owner: this.owner, repo: this.repo, environment, per_page: limit })
      .catch((error: unknown) => {
        throw failure(error, doing, 'repos/list-deployments');
      });
    const records = await mapBounded(data.slice(0, limit), STATUS_READS_AT_ONCE, async (d): Promise<DeploymentRecord> => {
      const { state, ignored } = await this.statuses(d.id, `${doing} (statuses of ${d.id})`);
      return {
        id: d.id,
        ref: d.ref,
        task: d.task,
        createdAt: new Date(d.created_at),
        ...(d.creator?.login ? { creator: d.creator.login } : {}),
        payload: readPayload(d.payload),
        state,
        ...(ignored.length > 0 ? { ignoredStatuses: ignored } : {}),
      };
    });
    // GitHub lists newest first already; created_at has whole seconds, so ties go to the higher id.
    return records.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime() || b.id - a.id);
  }

  /** The state of deployment `id`'s newest status that GITHUB_TOKEN posted (statusState): `none` without one. */
  async deploymentState(id: number): Promise<DeploymentState> {
    return (await this.statuses(id, `read the statuses of GitHub deployment ${id}`)).state;
  }

  /**
   * The ids of the environment's records that attempt `attempt` of run `runId` opened (both in
   * their payload, with the action's marker) and left open (no status, or in_progress), among its
   * newest OPEN_RECORDS_READ: a record the run opened minutes ago is among them. A re-run shares
   * the run id, so an earlier attempt's open record is not this one's; a record without an
   * attempt (written before the action recorded it) is no attempt's: the post step that asks runs
   * the same build as the main step that opened its record, which wrote one.
   */
  async openRecordsOfRun(environment: string, runId: string, attempt: string): Promise<number[]> {
    const records = await this.deployments(environment, OPEN_RECORDS_READ);
    const ofAttempt = (r: DeploymentRecord) => r.payload.runId === runId && r.payload.runAttempt === attempt && r.payload.recordedBy !== undefined;
    return records.filter((r) => ofAttempt(r) && (r.state === 'none' || r.state === 'in_progress')).map((r) => r.id);
  }

  private async statuses(id: number, doing: string): Promise<ReturnType<typeof statusState>> {
    const { data } = await this.octokit.rest.repos
      .listDeploymentStatuses({ owner: this.owner, repo: this.repo, deployment_id: id, per_page: STATUSES_READ })
      .catch((error: unknown) => {
        throw failure(error, doing, 'repos/list-deployment-statuses');
      });
    return statusState(data.map((s) => ({ state: s.state, creator: s.creator?.login })));
  }
}
