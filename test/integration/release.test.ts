// The release across environments: GitHub's gates (required reviewers, promotion by digest),
// the deployment records the action writes, and rollback, against the local GitHub stand-in.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clearHosts, containersOn, runDeploy, versionsOn, type DeployRunOptions } from './support/deploy.js';
import { loadEstate, type Estate } from './support/estate.js';
import { startGitHub, type GitHubStandIn } from './support/github.js';
import { pushTestApp, type TestAppRelease } from './support/images.js';
import { startLoad } from './support/load.js';

let estate: Estate;
let github: GitHubStandIn;
const releases: Record<string, TestAppRelease> = {};
const production = () => estate.environments.production.hosts.slice(0, 2);
const GATES = {
  staging: '',
  production: 'require-approval: true\n    promote-from: staging\n',
};

let nextRun = 3000;

/**
 * A deploy with both environments in the config, as a real repository has them, in a run of its
 * own. `approvedFor` is what the run's reviewers approved, as GitHub records it; by default the
 * environment deployed to, as for a job bound to it whose reviewer approved it.
 */
function release(options: Omit<DeployRunOptions, 'extra'> & { environment: 'staging' | 'production'; approvedFor?: string[] }) {
  const { approvedFor = [options.environment], ...rest } = options;
  const runId = nextRun++;
  // GitHub's word on the run, which promote-from checks of the record it writes: a push of the tag.
  github.runs.set(runId, { status: 'completed', headBranch: rest.version });
  if (approvedFor.length > 0) github.reviews.set(runId, [{ state: 'approved', environments: approvedFor, user: 'reviewer1' }]);
  return runDeploy(estate, { githubUrl: github.url, ...rest, runId: String(runId), bothEnvironments: GATES });
}

const posts = (environment: string) =>
  github.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/deployments') && (r.body as { environment?: string }).environment === environment);

beforeAll(async () => {
  estate = loadEstate();
  github = await startGitHub();
  github.environments.set('staging', { reviewers: 0 });
  github.environments.set('production', { reviewers: 1 });
  for (const version of ['v2.0.0', 'v2.1.0']) releases[version] = await pushTestApp(estate, { version });
  await clearHosts(estate, [...estate.environments.staging.hosts, ...estate.environments.production.hosts]);
}, 600_000);

// Every request the action sent and every answer the stand-in gave was what GitHub's description allows.
afterEach(() => {
  expect(github?.violations.splice(0) ?? []).toEqual([]);
});

afterAll(async () => {
  await github?.close();
  // The drivers tests look for free server ports on these hosts, whichever file runs first.
  if (estate) await clearHosts(estate, [...estate.environments.staging.hosts, ...estate.environments.production.hosts]);
}, 120_000);

describe('a release through staging to production', () => {
  it('records each deploy as a GitHub deployment: in_progress, then success, with its payload', async () => {
    const run = await release({ environment: 'staging', version: 'v2.0.0', digest: releases['v2.0.0']!.digest });
    expect(run.code, run.log).toBe(0);
    const [post] = posts('staging');
    expect(post?.body).toMatchObject({
      ref: 'v2.0.0',
      environment: 'staging',
      auto_merge: false,
      required_contexts: [],
      production_environment: false,
      payload: { version: 'v2.0.0', image: releases['v2.0.0']!.repository, digest: releases['v2.0.0']!.digest, run_id: String(nextRun - 1) },
    });
    const id = run.outputs['deployment-id'];
    expect(id).toMatch(/^\d+$/);
    const states = github.requests.filter((r) => r.method === 'POST' && r.path.endsWith(`/deployments/${id}/statuses`)).map((r) => r.body as { state: string; log_url: string });
    expect(states.map((s) => s.state)).toEqual(['in_progress', 'success']);
    expect(states[1]!.log_url).toMatch(/^https:\/\/github\.com\/clay\/demo\/actions\/runs\/\d+$/);
  }, 300_000);

  it('production refuses a version staging never got, writing nothing and touching no host', async () => {
    const before = await Promise.all(production().map((h) => containersOn(estate, h)));
    const run = await release({ environment: 'production', version: 'v2.1.0', digest: releases['v2.1.0']!.digest });
    expect(run.code).toBe(1);
    expect(run.log).toContain('v2.1.0 was never deployed to staging');
    expect(run.log).toContain('::error title=environments.production.promote-from');
    expect(posts('production')).toEqual([]);
    expect(await Promise.all(production().map((h) => containersOn(estate, h)))).toEqual(before);
  }, 120_000);

  it('production refuses a run whose approvals lack production (a staging job deploying production), changing nothing', async () => {
    const before = await Promise.all(production().map((h) => containersOn(estate, h)));
    const count = github.requests.length;
    const run = await release({ environment: 'production', version: 'v2.0.0', digest: releases['v2.0.0']!.digest, approvedFor: ['staging'] });
    expect(run.code).toBe(1);
    expect(run.log).toContain('::error title=environments.production.require-approval');
    expect(run.log).toContain('no reviewer approved this run for production (approved for: staging): bind the job to the environment (environment: production)');
    const asked = github.requests.slice(count);
    expect(asked.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /repos/clay/demo/actions/runs/${nextRun - 1}/approvals`,
      'GET /repos/clay/demo/environments/production',
    ]);
    expect(posts('production')).toEqual([]);
    expect(await Promise.all(production().map((h) => containersOn(estate, h)))).toEqual(before);
  }, 120_000);

  it('production ignores a staging record the action did not write: promotion needs its own record', async () => {
    // Someone with their own token records v2.1.0 as deployed to staging, payload and all.
    github.creator.login = 'mallory';
    try {
      const forged = await fetch(`${github.url}/repos/clay/demo/deployments`, {
        method: 'POST',
        headers: { authorization: 'token test-token' },
        body: JSON.stringify({
          ref: 'v2.1.0',
          environment: 'staging',
          payload: { version: 'v2.1.0', image: releases['v2.1.0']!.repository, digest: releases['v2.1.0']!.digest, recorded_by: 'clay/deploy-action' },
        }),
      }).then((r) => r.json() as Promise<{ id: number }>);
      await fetch(`${github.url}/repos/clay/demo/deployments/${forged.id}/statuses`, { method: 'POST', headers: { authorization: 'token test-token' }, body: JSON.stringify({ state: 'success' }) });
    } finally {
      github.creator.login = 'github-actions[bot]';
    }
    const run = await release({ environment: 'production', version: 'v2.1.0', digest: releases['v2.1.0']!.digest });
    expect(run.code).toBe(1);
    expect(run.log).toMatch(/::warning::Ignored 1 GitHub deployment record\(s\) of staging that deploy-action did not provably write: \d+ \(created by "mallory", not github-actions\[bot\]\)/);
    expect(run.log).toContain('v2.1.0 was never deployed to staging');
    expect(posts('production')).toEqual([]);
  }, 120_000);

  it('production refuses when its environment has no required reviewers, before any request that writes', async () => {
    github.environments.set('production', { reviewers: 0 });
    try {
      const count = github.requests.length;
      // No reviewer, so GitHub recorded no approval for the run.
      const run = await release({ environment: 'production', version: 'v2.0.0', digest: releases['v2.0.0']!.digest, approvedFor: [] });
      expect(run.code).toBe(1);
      expect(run.log).toMatch(/environments\.production\.require-approval is true, but the GitHub environment production has no required reviewers: add reviewers under Settings/);
      const asked = github.requests.slice(count);
      expect(asked.map((r) => `${r.method} ${r.path}`)).toEqual([`GET /repos/clay/demo/actions/runs/${nextRun - 1}/approvals`, 'GET /repos/clay/demo/environments/production']);
    } finally {
      github.environments.set('production', { reviewers: 1 });
    }
  }, 120_000);

  it('production takes exactly the image staging runs, as a production deployment', async () => {
    const run = await release({ environment: 'production', version: 'v2.0.0', digest: releases['v2.0.0']!.digest });
    expect(run.code, run.log).toBe(0);
    expect(run.log).toContain(`v2.0.0 (${releases['v2.0.0']!.digest}) is what staging runs`);
    expect(posts('production')[0]?.body).toMatchObject({ production_environment: true, payload: { digest: releases['v2.0.0']!.digest } });
    expect(await versionsOn(estate, production())).toEqual(Object.fromEntries(production().map((h) => [h, { demo: 'v2.0.0 running', 'demo-backup': 'v2.0.0 running' }])));
  }, 300_000);

  it('production refuses a digest that differs from what staging runs', async () => {
    const staged = await release({ environment: 'staging', version: 'v2.1.0', digest: releases['v2.1.0']!.digest });
    expect(staged.code, staged.log).toBe(0);
    // The tag is pushed again with other content: same version, another image.
    const moved = await pushTestApp(estate, { version: 'v2.1.0', startDelaySeconds: 1 });
    expect(moved.digest).not.toBe(releases['v2.1.0']!.digest);
    const run = await release({ environment: 'production', version: 'v2.1.0', digest: moved.digest });
    expect(run.code).toBe(1);
    expect(run.log).toContain(`differs from what staging runs (${releases['v2.1.0']!.digest})`);
    expect(posts('production')).toHaveLength(1);
    // Put the tag back where staging has it, for the rollbacks below.
    releases['v2.1.0'] = await pushTestApp(estate, { version: 'v2.1.0' });
    expect(releases['v2.1.0'].digest).toBe(staged.outputs.digest);
    const promoted = await release({ environment: 'production', version: 'v2.1.0', digest: releases['v2.1.0'].digest });
    expect(promoted.code, promoted.log).toBe(0);
  }, 600_000);
});

describe('command: rollback', () => {
  const rollback = (version: string) => release({ command: 'rollback', environment: 'production', version: 'v0.0.0', rollbackTo: version });

  it('to previous: every host back on the release before, zero failed requests, recorded as a rollback', async () => {
    const load = startLoad({ url: `${estate.environments.production.lb.frontend}/`, clients: 8, ratePerClient: 40, maxSeconds: 300 });
    const run = await rollback('previous');
    const report = await load.stop();
    expect(run.code, run.log).toBe(0);
    expect(run.log).toContain("Target: previous: v2.0.0, the release before v2.1.0 in the hosts' history (the deploy-action.history label)");
    expect(report.failures).toEqual([]);
    expect(report.versions['v2.0.0']).toBeGreaterThan(0);
    expect(await versionsOn(estate, production())).toEqual(Object.fromEntries(production().map((h) => [h, { demo: 'v2.0.0 running', 'demo-backup': 'v2.0.0 running' }])));
    expect(posts('production').at(-1)?.body).toMatchObject({ ref: 'v2.0.0', task: 'rollback', payload: { version: 'v2.0.0' } });
    expect(run.outputs['previous-version']).toBe('v2.1.0');
  }, 300_000);

  it('to an explicit tag, with zero failed requests', async () => {
    const load = startLoad({ url: `${estate.environments.production.lb.frontend}/`, clients: 8, ratePerClient: 40, maxSeconds: 300 });
    const run = await rollback('v2.1.0');
    const report = await load.stop();
    expect(run.code, run.log).toBe(0);
    expect(report.failures).toEqual([]);
    expect(await versionsOn(estate, production())).toEqual(Object.fromEntries(production().map((h) => [h, { demo: 'v2.1.0 running', 'demo-backup': 'v2.1.0 running' }])));
  }, 300_000);

  it('to a tag production never ran, or one missing from the registry, fails before any host changes', async () => {
    const before = await Promise.all(production().map((h) => containersOn(estate, h)));
    const neverRan = await rollback('v1.9.9');
    expect(neverRan.code).toBe(1);
    expect(neverRan.log).toContain('version: v1.9.9 never ran in production');
    const missing = await release({ command: 'rollback', environment: 'production', version: 'v0.0.0', rollbackTo: 'v1.9.9', allowNeverDeployed: true });
    expect(missing.code).toBe(1);
    expect(missing.log).toMatch(/clay\/demo:v1\.9\.9 is not in the registry/);
    expect(await Promise.all(production().map((h) => containersOn(estate, h)))).toEqual(before);
  }, 120_000);

  it('without a version says what it expects', async () => {
    const run = await release({ command: 'rollback', environment: 'production', version: 'v0.0.0', rollbackTo: '' });
    expect(run.code).toBe(1);
    expect(run.log).toContain('version: required for rollback: a release tag like v1.3.0, or previous');
  }, 60_000);
});
