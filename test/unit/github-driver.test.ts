// The GitHub driver against the local GitHub stand-in (an HTTP server in this process).
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GITHUB_API_VERSION, GitHubApi, type NewDeployment } from '../../src/drivers/github.js';
import { GitHubDeployment } from '../../src/pipeline/gates.js';
import { startGitHub, type GitHubStandIn } from '../integration/support/github.js';

const github: GitHubStandIn = await startGitHub();
const api = new GitHubApi('test-token', github.url, 'clay/demo');
const DIGEST = `sha256:${'c'.repeat(64)}`;

afterAll(() => github.close());
beforeEach(() => github.reset());
// Every request the driver sent, and every answer the stand-in gave, was what GitHub's description allows.
afterEach(() => {
  expect(github.violations.splice(0)).toEqual([]);
});

const deployment = (version: string, environment = 'staging', task: NewDeployment['task'] = 'deploy'): NewDeployment => ({
  ref: version,
  environment,
  payload: { version, image: 'registry.example.com/clay/mobile', digest: DIGEST, recorded_by: 'clay/deploy-action' },
  production: environment === 'production',
  description: `Deploy ${version}`,
  task,
});
const logUrl = 'https://github.com/clay/demo/actions/runs/1001';

/** A deployment that ran to `state`, as the action records one. */
async function deployed(version: string, state: 'success' | 'failure' | 'in_progress', environment = 'staging'): Promise<number> {
  const id = await api.createDeployment(deployment(version, environment));
  await api.setDeploymentStatus(id, 'in_progress', { logUrl, description: `Deploying ${version}` });
  if (state !== 'in_progress') await api.setDeploymentStatus(id, state, { logUrl, description: `${version}: ${state}` });
  return id;
}

/** POSTs straight to the stand-in, for records other clients made. */
async function post(path: string, body: unknown) {
  const response = await fetch(`${github.url}/repos/clay/demo${path}`, { method: 'POST', headers: { authorization: 'token test-token' }, body: JSON.stringify(body) });
  return (await response.json()) as { id: number };
}

describe('environmentReviewers', () => {
  it('counts the reviewers of the required-reviewers rule, not other rules', async () => {
    github.environments.set('production', { reviewers: 2, waitTimer: 30 });
    expect(await api.environmentReviewers('production')).toEqual({ exists: true, reviewers: 2, otherRules: ['a wait timer (30 minutes)'] });
    expect(github.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /repos/clay/demo/environments/production']);
  });

  it('an environment without reviewers exists with 0', async () => {
    github.environments.set('staging', { reviewers: 0, waitTimer: 5 });
    expect(await api.environmentReviewers('staging')).toEqual({ exists: true, reviewers: 0, otherRules: ['a wait timer (5 minutes)'] });
  });

  it('a missing environment (404) does not exist', async () => {
    expect(await api.environmentReviewers('production')).toEqual({ exists: false, reviewers: 0 });
  });

  it('encodes the name as one path segment', async () => {
    github.environments.set('review/pr-7', { reviewers: 1 });
    expect(await api.environmentReviewers('review/pr-7')).toEqual({ exists: true, reviewers: 1 });
    expect(github.requests[0]!.path).toBe('/repos/clay/demo/environments/review%2Fpr-7');
  });

  it('a refusal names the environment, the status and the permission', async () => {
    github.overrides.set('GET /repos/clay/demo/environments/production', { status: 403, body: { message: 'Resource not accessible by integration' } });
    await expect(api.environmentReviewers('production')).rejects.toThrow(
      /^Could not read the GitHub environment production: HTTP 403 \(Resource not accessible by integration.*\); the token needs the actions: read permission \(for GITHUB_TOKEN: `permissions: \{ actions: read \}` on the job\)$/,
    );
  });

  it('a bad token says so', async () => {
    await expect(new GitHubApi('wrong', github.url, 'clay/demo').environmentReviewers('production')).rejects.toThrow(/HTTP 401 \(Bad credentials.*\); the github-token is not valid$/);
  });

  it('a server error is passed on with its status', async () => {
    github.overrides.set('GET /repos/clay/demo/environments/production', { status: 500, body: { message: 'Server Error' } });
    await expect(api.environmentReviewers('production')).rejects.toMatchObject({ name: 'GitHubApiError', status: 500, message: expect.stringContaining('HTTP 500') });
  });
});

describe('createDeployment', () => {
  it('asks for a deployment of the tag as it is: no merge, no required contexts, not transient', async () => {
    const id = await api.createDeployment(deployment('v1.4.0', 'production', 'rollback'));
    expect(id).toBe(github.deployments[0]!.id);
    const [request] = github.requests;
    expect(request).toMatchObject({ method: 'POST', path: '/repos/clay/demo/deployments' });
    expect(request!.body).toEqual({
      ref: 'v1.4.0',
      environment: 'production',
      payload: { version: 'v1.4.0', image: 'registry.example.com/clay/mobile', digest: DIGEST, recorded_by: 'clay/deploy-action' },
      production_environment: true,
      description: 'Deploy v1.4.0',
      task: 'rollback',
      auto_merge: false,
      required_contexts: [],
      transient_environment: false,
    });
  });

  it('gives ids in creation order', async () => {
    const first = await api.createDeployment(deployment('v1.3.0'));
    const second = await api.createDeployment(deployment('v1.4.0'));
    expect(second).toBeGreaterThan(first);
  });

  it('an answer without a deployment (202, merged instead) is an error', async () => {
    github.overrides.set('POST /repos/clay/demo/deployments', { status: 202, body: { message: 'Auto-merged main into topic branch.' } });
    await expect(api.createDeployment(deployment('v1.4.0'))).rejects.toThrow(
      'Could not create a GitHub deployment of v1.4.0 to staging: HTTP 202 without a deployment (Auto-merged main into topic branch.)',
    );
  });

  it('a refusal names the permission deployments need', async () => {
    github.overrides.set('POST /repos/clay/demo/deployments', { status: 403, body: { message: 'Resource not accessible by integration' } });
    await expect(api.createDeployment(deployment('v1.4.0'))).rejects.toThrow(/^Could not create a GitHub deployment of v1\.4\.0 to staging: HTTP 403 .*deployments: write/);
  });
});

describe('setDeploymentStatus', () => {
  it('sends the state, the run and environment URLs, and leaves auto_inactive to GitHub', async () => {
    const id = await api.createDeployment(deployment('v1.4.0'));
    await api.setDeploymentStatus(id, 'in_progress', { logUrl, environmentUrl: 'https://staging.example.com', description: 'Deploying v1.4.0' });
    expect(github.requests.at(-1)).toMatchObject({
      method: 'POST',
      path: `/repos/clay/demo/deployments/${id}/statuses`,
      body: { state: 'in_progress', log_url: logUrl, environment_url: 'https://staging.example.com', description: 'Deploying v1.4.0' },
    });
    expect(github.requests.at(-1)!.body).not.toHaveProperty('auto_inactive');
  });

  it('cuts a long description to GitHub\'s 140 characters, and leaves out empty URLs', async () => {
    const id = await api.createDeployment(deployment('v1.4.0'));
    await api.setDeploymentStatus(id, 'failure', { logUrl: '', description: `v1.4.0 failed on 10.0.0.11: ${'x'.repeat(200)}` });
    const body = github.requests.at(-1)!.body as Record<string, string>;
    expect([...body.description!]).toHaveLength(140);
    expect(body.description).toMatch(/^v1\.4\.0 failed on 10\.0\.0\.11: x+…$/);
    expect(body).not.toHaveProperty('log_url');
    expect(body).not.toHaveProperty('environment_url');
    expect(github.deployments[0]!.statuses.at(-1)!.state).toBe('failure');
  });

  it('an unknown deployment is an error naming it', async () => {
    await expect(api.setDeploymentStatus(999, 'success', { logUrl, description: 'x' })).rejects.toThrow(/^Could not set the GitHub deployment 999 to success: HTTP 404/);
  });
});

describe('deployments', () => {
  it('newest first, each with its newest state; a success makes the earlier successes inactive', async () => {
    const v12 = await deployed('v1.2.0', 'success');
    const v13 = await deployed('v1.3.0', 'success');
    const v14 = await deployed('v1.4.0', 'failure');
    const v15 = await deployed('v1.5.0', 'in_progress');
    const none = await api.createDeployment(deployment('v1.6.0'));
    await deployed('v9.0.0', 'success', 'production');
    const records = await api.deployments('staging');
    expect(records.map((r) => [r.id, r.ref, r.state])).toEqual([
      [none, 'v1.6.0', 'none'],
      [v15, 'v1.5.0', 'in_progress'],
      [v14, 'v1.4.0', 'failure'],
      [v13, 'v1.3.0', 'success'],
      [v12, 'v1.2.0', 'inactive'],
    ]);
    expect(records[3]).toEqual({
      id: v13,
      ref: 'v1.3.0',
      task: 'deploy',
      createdAt: expect.any(Date),
      creator: 'github-actions[bot]',
      payload: { version: 'v1.3.0', image: 'registry.example.com/clay/mobile', digest: DIGEST, recordedBy: 'clay/deploy-action' },
      state: 'success',
    });
    expect(records[3]!.createdAt.getTime()).toBeLessThanOrEqual(Date.now());
  });

  it('a later success in the environment inactivates only earlier successes there', async () => {
    const staged = await deployed('v1.2.0', 'success');
    const failed = await deployed('v1.3.0', 'failure');
    const elsewhere = await deployed('v1.2.0', 'success', 'production');
    await deployed('v1.4.0', 'success');
    const states = Object.fromEntries(github.deployments.map((d) => [d.id, d.statuses.map((s) => s.state)]));
    expect(states[staged]).toEqual(['in_progress', 'success', 'inactive']);
    expect(states[failed]).toEqual(['in_progress', 'failure']);
    expect(states[elsewhere]).toEqual(['in_progress', 'success']);
  });

  it('asks for one page of the environment and one page of statuses per deployment', async () => {
    for (const version of ['v1.1.0', 'v1.2.0', 'v1.3.0']) await deployed(version, 'success');
    github.requests.length = 0;
    const records = await api.deployments('staging', 2);
    expect(records.map((r) => r.ref)).toEqual(['v1.3.0', 'v1.2.0']);
    const [list, ...statuses] = github.requests;
    expect(list).toMatchObject({ method: 'GET', path: '/repos/clay/demo/deployments', query: { environment: 'staging', per_page: '2' } });
    expect(statuses.map((r) => r.query)).toEqual([{ per_page: '100' }, { per_page: '100' }]);
  });

  it('reads payloads sent as JSON strings, and ignores what it cannot read', async () => {
    await post('/deployments', { ref: 'v0.9.0', environment: 'staging', payload: JSON.stringify({ version: 'v0.9.0', digest: DIGEST }) });
    await post('/deployments', { ref: 'main', environment: 'staging', payload: 'not json' });
    await post('/deployments', { ref: 'main', environment: 'staging', payload: { version: 7, image: ['x'], other: 'y' } });
    await post('/deployments', { ref: 'main', environment: 'staging', payload: '[1, 2]' });
    const records = await api.deployments('staging');
    expect(records.map((r) => r.payload)).toEqual([{}, {}, {}, { version: 'v0.9.0', digest: DIGEST }]);
  });

  it('reports who created each record, as GitHub\'s creator.login', async () => {
    await deployed('v1.2.0', 'success');
    github.creator.login = 'octocat';
    await deployed('v1.3.0', 'success');
    expect((await api.deployments('staging')).map((r) => [r.ref, r.creator])).toEqual([
      ['v1.3.0', 'octocat'],
      ['v1.2.0', 'github-actions[bot]'],
    ]);
  });

  it('an environment without deployments has none', async () => {
    expect(await api.deployments('production')).toEqual([]);
  });

  it.each([0, 101, 2.5])('refuses a limit of %s', async (limit) => {
    await expect(api.deployments('staging', limit)).rejects.toThrow(RangeError);
  });

  it('a refusal names the environment and the permission', async () => {
    github.overrides.set('GET /repos/clay/demo/deployments', { status: 403, body: { message: 'Resource not accessible by integration' } });
    await expect(api.deployments('staging')).rejects.toThrow(/^Could not read the GitHub deployments of staging: HTTP 403 .*deployments: read/);
  });
});

describe('the records a run left open', () => {
  const ofRun = (version: string, runId: string, attempt: string | null = '1'): NewDeployment => ({
    ...deployment(version, 'production'),
    payload: { ...deployment(version).payload, run_id: runId, ...(attempt ? { run_attempt: attempt } : {}) },
  });

  it('deploymentState: the newest status of ours, none without one', async () => {
    const id = await api.createDeployment(deployment('v1.2.0'));
    expect(await api.deploymentState(id)).toBe('none');
    await api.setDeploymentStatus(id, 'in_progress', { logUrl, description: 'Deploying v1.2.0' });
    expect(await api.deploymentState(id)).toBe('in_progress');
    await api.setDeploymentStatus(id, 'failure', { logUrl, description: 'failed' });
    expect(await api.deploymentState(id)).toBe('failure');
  });

  it('openRecordsOfRun: the run\'s own records by the run id in their payload, without a status or in_progress, newest first', async () => {
    const closed = await api.createDeployment(ofRun('v1.2.0', '1001'));
    await api.setDeploymentStatus(closed, 'failure', { logUrl, description: 'failed' });
    const older = await api.createDeployment(ofRun('v1.3.0', '1001'));
    await api.setDeploymentStatus(older, 'in_progress', { logUrl, description: 'Deploying v1.3.0' });
    await api.createDeployment(ofRun('v1.4.0', '2002'));
    await api.createDeployment({ ...deployment('v1.4.0', 'production'), payload: { version: 'v1.4.0', image: 'x', digest: DIGEST, run_id: '1001' } as never });
    const newest = await api.createDeployment(ofRun('v1.5.0', '1001'));
    expect(await api.openRecordsOfRun('production', '1001', '1')).toEqual([newest, older]);
    expect(await api.openRecordsOfRun('staging', '1001', '1')).toEqual([]);
  });

  it("openRecordsOfRun: a re-run's attempt finds its own open record, never an earlier attempt's of the same run id", async () => {
    const first = await api.createDeployment(ofRun('v1.3.0', '1001', '1'));
    await api.setDeploymentStatus(first, 'in_progress', { logUrl, description: 'Deploying v1.3.0' });
    // Written before the action recorded the attempt: still read, no attempt's.
    const old = await api.createDeployment(ofRun('v1.2.0', '1001', null));
    const second = await api.createDeployment(ofRun('v1.3.0', '1001', '2'));
    expect(await api.openRecordsOfRun('production', '1001', '2')).toEqual([second]);
    expect(await api.openRecordsOfRun('production', '1001', '1')).toEqual([first]);
    const payloads = new Map((await api.deployments('production')).map((r) => [r.id, r.payload]));
    expect(payloads.get(second)).toMatchObject({ runId: '1001', runAttempt: '2' });
    expect(payloads.get(old)).toEqual({ version: 'v1.2.0', image: 'registry.example.com/clay/mobile', digest: DIGEST, recordedBy: 'clay/deploy-action', runId: '1001' });
  });

  it('GitHubDeployment.open writes the run id and its attempt into the record it opens', async () => {
    const run = { runId: '1001', runAttempt: '3', serverUrl: 'https://github.com', repository: 'clay/demo' };
    const record = await GitHubDeployment.open(api, { run } as never, { name: 'production' } as never, { version: 'v1.4.0', digest: DIGEST, ref: `r/app@${DIGEST}`, image: 'r/app' }, 'deploy');
    expect((await api.deployments('production')).find((r) => r.id === record!.id)!.payload).toMatchObject({ runId: '1001', runAttempt: '3' });
    expect(await api.openRecordsOfRun('production', '1001', '3')).toEqual([record!.id]);
  });
});

describe('runReviews', () => {
  it('reads the reviews of the run: state, environment names, reviewer', async () => {
    github.reviews.set(1001, [
      { state: 'approved', environments: ['staging', 'production'], user: 'alice', comment: 'ship it' },
      { state: 'rejected', environments: ['review/pr-7'], user: 'bob' },
    ]);
    expect(await api.runReviews('1001')).toEqual([
      { state: 'approved', environments: ['staging', 'production'], user: 'alice' },
      { state: 'rejected', environments: ['review/pr-7'], user: 'bob' },
    ]);
    expect(github.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /repos/clay/demo/actions/runs/1001/approvals']);
  });

  it('a run nobody reviewed has none', async () => {
    expect(await api.runReviews('1002')).toEqual([]);
  });

  it('a refusal names the run and the actions: read permission', async () => {
    github.overrides.set('GET /repos/clay/demo/actions/runs/1001/approvals', { status: 403, body: { message: 'Resource not accessible by integration' } });
    await expect(api.runReviews('1001')).rejects.toThrow(/^Could not read the approvals of workflow run 1001: HTTP 403 .*actions: read/);
  });
});

describe('runEnded', () => {
  it('a run in progress (conclusion null) has not ended; a completed one has', async () => {
    github.runs.set(4242, { status: 'in_progress' });
    github.runs.set(4243, { status: 'completed', conclusion: 'cancelled' });
    expect(await api.runEnded('4242')).toBe(false);
    expect(await api.runEnded('4243')).toBe(true);
    expect(github.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /repos/clay/demo/actions/runs/4242', 'GET /repos/clay/demo/actions/runs/4243']);
  });
});

describe('what GitHub\'s description allows to be null or left out', () => {
  /** The stand-in's answer as sent, for a look at the fields the driver reads past. */
  const raw = async (path: string) => (await (await fetch(`${github.url}/repos/clay/demo${path}`, { headers: { authorization: 'token test-token' } })).json()) as Array<Record<string, unknown>>;

  it('a deployment with no creator, no description, a payload of "" and no status', async () => {
    github.creator.login = null;
    await post('/deployments', { ref: 'main', environment: 'staging', payload: '' });
    const [answer] = await raw('/deployments');
    expect(answer).toMatchObject({ creator: null, description: null, payload: '' });
    expect(await api.deployments('staging')).toEqual([{ id: answer!.id, ref: 'main', task: 'deploy', createdAt: expect.any(Date), payload: {}, state: 'none' }]);
  });

  it('a status without log and environment URLs', async () => {
    const id = await api.createDeployment(deployment('v1.4.0'));
    await api.setDeploymentStatus(id, 'success', { logUrl: '', description: 'v1.4.0 is live' });
    const [status] = await raw(`/deployments/${id}/statuses`);
    expect(status).not.toHaveProperty('log_url');
    expect(status).not.toHaveProperty('environment_url');
    expect(status).toMatchObject({ state: 'success', target_url: '' });
    expect((await api.deployments('staging')).map((r) => r.state)).toEqual(['success']);
  });

  it('an environment with no protection rules, and one with rules of other types only', async () => {
    github.environments.set('staging', { reviewers: 0 });
    github.environments.set('production', { reviewers: 0, waitTimer: 10, branchPolicy: true, customRule: 'deployment_protection_rule' });
    expect(await raw('/environments/staging')).not.toHaveProperty('protection_rules');
    expect(await api.environmentReviewers('staging')).toEqual({ exists: true, reviewers: 0 });
    // A branch policy gates no job once it runs: not named.
    expect(await api.environmentReviewers('production')).toEqual({ exists: true, reviewers: 0, otherRules: ['a wait timer (10 minutes)', 'a custom protection rule (deployment_protection_rule)'] });
  });
});

describe('requests', () => {
  it(`all name API version ${GITHUB_API_VERSION}, the one the fixture of GitHub's description is of`, async () => {
    github.environments.set('production', { reviewers: 1 });
    github.runs.set(4242, { status: 'queued' });
    await api.environmentReviewers('production');
    await api.runReviews('1001');
    await api.runEnded('4242');
    await deployed('v1.4.0', 'success');
    await api.deployments('staging');
    expect(new Set(github.requests.map((r) => r.operationId)).size).toBe(7);
    expect(github.requests.filter((r) => r.apiVersion !== GITHUB_API_VERSION)).toEqual([]);
  });

  /**
   * The real driver with one field misspelled on its way out, as a typo in the driver would send
   * it: GitHub would ignore the field; the stand-in refuses the request, naming operation and field.
   */
  function misspelling(from: string, to: string): GitHubApi {
    const driver = new GitHubApi('test-token', github.url, 'clay/demo');
    const { octokit } = driver as unknown as { octokit: { hook: { before: (name: 'request', hook: (options: Record<string, unknown>) => void) => void } } };
    octokit.hook.before('request', (options) => {
      if (from in options) {
        options[to] = options[from];
        delete options[from];
      }
    });
    return driver;
  }

  it('a misspelled body field is caught, naming the operation and the field', async () => {
    await expect(misspelling('required_contexts', 'required_context').createDeployment(deployment('v1.4.0'))).rejects.toThrow(
      /^Could not create a GitHub deployment of v1\.4\.0 to staging: HTTP 422 \(.*repos\/create-deployment: request body \/required_context: is not a field of this operation/,
    );
    expect(github.violations.splice(0)).toEqual(['repos/create-deployment: request body /required_context: is not a field of this operation']);
    expect(github.deployments).toHaveLength(0);
  });

  it('a misspelled query parameter is caught, naming the operation and the parameter', async () => {
    await expect(misspelling('per_page', 'perpage').deployments('staging', 5)).rejects.toThrow(/HTTP 422 .*repos\/list-deployments: query parameter perpage: is not a parameter of this operation/);
    expect(github.violations.splice(0)).toEqual(['repos/list-deployments: query parameter perpage: is not a parameter of this operation']);
  });
});
