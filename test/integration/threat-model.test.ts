// The threat model on the estate (docs/security.md): someone with write access to the repository
// but without production's secrets and without a reviewer's approval tries to steer production
// through what GitHub lets them write: a status posted with their own token on a failed staging
// record, a staging record forged by another workflow's run, a production record forged with
// another workflow's GITHUB_TOKEN and the action's marker, a re-run attempt whose reviewer rejected production. The GitHub stand-in records each
// deployment's and each status's creator as GitHub does. None of them changes a container.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connectHost } from '../../src/drivers/docker/host.js';
import { GitHubApi } from '../../src/drivers/github.js';
import { clearHosts, containersOn, runDeploy, versionsOn, type DeployRunOptions } from './support/deploy.js';
import { loadEstate, sshOptions, type Estate } from './support/estate.js';
import { startGitHub, type GitHubStandIn } from './support/github.js';
import { pushTestApp, type TestAppRelease } from './support/images.js';

let estate: Estate;
let github: GitHubStandIn;
let repository: string;
const releases: Record<string, TestAppRelease> = {};
const production = () => estate.environments.production.hosts.slice(0, 2);
const GATED = { staging: '', production: 'require-approval: true\n    promote-from: staging\n' };
let nextRun = 7000;

/** A run of its own, reviewed as `reviews` say (by default: approved for the environment deployed to). */
function run(options: Omit<DeployRunOptions, 'repository'> & { reviews?: { state: 'approved' | 'rejected'; environments: string[]; user: string }[] }) {
  const { reviews = [{ state: 'approved', environments: [options.environment], user: 'reviewer1' }], ...rest } = options;
  const runId = nextRun++;
  github.reviews.set(runId, reviews);
  return runDeploy(estate, { githubUrl: github.url, repository, bothEnvironments: GATED, ...rest, runId: String(runId) });
}

/** The containers of production's hosts, ids included: any change shows. */
const productionContainers = () => Promise.all(production().map((h) => containersOn(estate, h)));
const productionPosts = () =>
  github.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/deployments') && (r.body as { environment?: string }).environment === 'production');

/** Requests made with another token than the action's: `login` is who GitHub says made them. */
async function as<T>(login: string, work: (api: GitHubApi) => Promise<T>): Promise<T> {
  github.creator.login = login;
  try {
    return await work(new GitHubApi('test-token', github.url, 'clay/demo'));
  } finally {
    github.creator.login = 'github-actions[bot]';
  }
}

/** A record with the action's payload and marker, run to `state`, made with whichever token `as` says. */
async function record(api: GitHubApi, environment: string, release: TestAppRelease, state: 'success' | 'failure', runId?: number): Promise<number> {
  const id = await api.createDeployment({
    ref: release.version,
    environment,
    payload: { version: release.version, image: repository, digest: release.digest, recorded_by: 'clay/deploy-action', ...(runId ? { run_id: String(runId) } : {}) },
    production: environment === 'production',
    description: `Deploy ${release.version}`,
    task: 'deploy',
  });
  await api.setDeploymentStatus(id, 'in_progress', { logUrl: '', description: `Deploying ${release.version}` });
  await api.setDeploymentStatus(id, state, { logUrl: '', description: `${release.version}: ${state}` });
  return id;
}

beforeAll(async () => {
  estate = loadEstate();
  github = await startGitHub();
  github.environments.set('staging', { reviewers: 0 });
  github.environments.set('production', { reviewers: 1 });
  repository = `${estate.registry.address}/clay/threat-model`;
  for (const version of ['v8.0.0', 'v8.1.0', 'v8.2.0', 'v7.9.0']) releases[version] = await pushTestApp(estate, { repository, version });
  await clearHosts(estate, production());
  // What production ran, deployed as it would be (without the gates, which these setup deploys
  // are not about): v8.0.0, then v8.1.0. The hosts' history label says so, and so do the records.
  for (const version of ['v8.0.0', 'v8.1.0']) {
    const deployed = await run({ environment: 'production', version, digest: releases[version]!.digest, bothEnvironments: { staging: '', production: '' } });
    expect(deployed.code, deployed.log).toBe(0);
  }
}, 900_000);

afterEach(() => {
  expect(github?.violations.splice(0) ?? []).toEqual([]);
});

afterAll(async () => {
  await github?.close();
  if (estate) await clearHosts(estate, production());
}, 120_000);

describe('someone with write access but without production\'s secrets or a reviewer', () => {
  it('cannot make a failed staging deploy promotable with a status posted with their own token', async () => {
    // v8.2.0 failed in staging (recorded by the workflow token, as the action records a failure);
    // then a person adds `success` to that record with their own token, as GitHub allows.
    const failed = await as('github-actions[bot]', (api) => record(api, 'staging', releases['v8.2.0']!, 'failure'));
    await as('mallory', (api) => api.setDeploymentStatus(failed, 'success', { logUrl: '', description: 'looks fine' }));
    expect(github.deployments.find((d) => d.id === failed)!.statuses.map((s) => `${s.state} by ${s.creator}`)).toEqual([
      'in_progress by github-actions[bot]',
      'failure by github-actions[bot]',
      'success by mallory',
    ]);
    const before = await productionContainers();
    const posted = productionPosts().length;
    const deploy = await run({ environment: 'production', version: 'v8.2.0', digest: releases['v8.2.0']!.digest });
    expect(deploy.code, deploy.log).toBe(1);
    expect(deploy.log).toContain(`Ignored statuses that github-actions[bot] did not post on 1 deploy-action record(s) of staging`);
    expect(deploy.log).toContain(`${failed} (success by "mallory")`);
    expect(deploy.log).toContain('::error title=environments.production.promote-from');
    expect(deploy.log).toContain('production refuses v8.2.0: v8.2.0 was never deployed to staging successfully (the latest attempt there: failure)');
    expect(productionPosts()).toHaveLength(posted);
    expect(await productionContainers()).toEqual(before);
  }, 300_000);

  it('cannot make a release promotable with a staging record forged by another workflow\'s run', async () => {
    // Another workflow file, run on a branch, writes a staging record of v8.2.0 with its
    // GITHUB_TOKEN: our creator, our marker, a success, and its own run id, as the action writes.
    github.runs.set(6660, { status: 'completed', conclusion: 'success', path: '.github/workflows/tinker.yml', event: 'push', headBranch: 'mallory/tinker' });
    const forged = await as('github-actions[bot]', (api) => record(api, 'staging', releases['v8.2.0']!, 'success', 6660));
    const before = await productionContainers();
    const posted = productionPosts().length;
    const deploy = await run({ environment: 'production', version: 'v8.2.0', digest: releases['v8.2.0']!.digest });
    expect(deploy.code, deploy.log).toBe(1);
    expect(deploy.log).toContain('::error title=environments.production.promote-from');
    expect(deploy.log).toContain(
      `production refuses v8.2.0: the staging record of v8.2.0 (deployment ${forged}) was not written by the release process: ` +
        'its workflow run 6660 is not a push of v8.2.0 to .github/workflows/release.yml ' +
        '(its workflow is ".github/workflows/tinker.yml", not ".github/workflows/release.yml"; it ran for "mallory/tinker", not the tag v8.2.0)',
    );
    expect(github.requests.some((r) => r.method === 'GET' && r.path === '/repos/clay/demo/actions/runs/6660')).toBe(true);
    expect(productionPosts()).toHaveLength(posted);
    expect(await productionContainers()).toEqual(before);
  }, 300_000);

  it('cannot change what previous means in production, nor roll it to a tag it never ran, with a record forged with another workflow\'s token', async () => {
    // Another workflow (any branch, `permissions: deployments: write`) records v7.9.0 at its real
    // digest as a success in production: the workflow token's creator, the action's marker.
    const forged = await as('github-actions[bot]', (api) => record(api, 'production', releases['v7.9.0']!, 'success'));
    const before = await productionContainers();
    const posted = productionPosts().length;
    // Another run holds production's deploy lock: the rollback resolves and shows its target, then
    // stops at the lock, before any container changes.
    const lockHost = [...production()].sort()[0]!;
    const host = await connectHost(sshOptions(estate, lockHost));
    const holder = { runId: '6969', attempt: '1' };
    github.runs.set(6969, { status: 'in_progress' });
    try {
      expect(await host.acquireLock('demo-deploy-lock', { ...holder, holder: 'octocat (release run 6969, attempt 1)', runUrl: '', version: 'v8.1.0', since: new Date() }, releases['v8.1.0']!.ref)).toEqual({ acquired: true });
      const previous = await run({ command: 'rollback', environment: 'production', version: 'v0.0.0', rollbackTo: 'previous' });
      expect(previous.code, previous.log).toBe(1);
      expect(previous.log).toContain("Target: previous: v8.0.0, the release before v8.1.0 in the hosts' history (the deploy-action.history label)");
      expect(previous.log).toContain(
        `::warning::GitHub's deployment records of production say the release before v8.1.0 is v7.9.0@${releases['v7.9.0']!.digest}, ` +
          `the hosts' history (the deploy-action.history label) says v8.0.0@${releases['v8.0.0']!.digest}: the hosts decide.`,
      );
      expect(previous.log).toContain('another deploy holds the lock: octocat (release run 6969, attempt 1)');
      // The summary shows the target, with its source, before the refusal.
      const shown = previous.summary.indexOf('Rollback target in production');
      expect(shown).toBeGreaterThanOrEqual(0);
      expect(previous.summary.slice(shown)).toContain(`previous resolved to v8.0.0 (${releases['v8.0.0']!.digest})\nfrom: the hosts&#39; history (the deploy-action.history label)`);
    } finally {
      await host.releaseLock('demo-deploy-lock', holder);
      host.dispose();
    }
    const neverRan = await run({ command: 'rollback', environment: 'production', version: 'v0.0.0', rollbackTo: 'v7.9.0' });
    expect(neverRan.code, neverRan.log).toBe(1);
    expect(neverRan.log).toContain(
      "version: v7.9.0 never ran in production (the hosts' history (the deploy-action.history label) does not have it; GitHub's records claim it did, but a record is not proof",
    );
    expect(github.deployments.find((d) => d.id === forged)!.creator).toBe('github-actions[bot]');
    expect(productionPosts()).toHaveLength(posted);
    expect(await productionContainers()).toEqual(before);
    expect(await versionsOn(estate, production())).toEqual(Object.fromEntries(production().map((h) => [h, { demo: 'v8.1.0 running', 'demo-backup': 'v8.1.0 running' }])));
  }, 300_000);

  it('cannot deploy to production from a re-run attempt whose reviewer rejected production', async () => {
    // v8.1.0 is what staging ran (so promotion would pass); attempt 1 of the run was approved for
    // production, weeks later attempt 2 was rejected for it. GitHub lists both reviews.
    await as('github-actions[bot]', (api) => record(api, 'staging', releases['v8.1.0']!, 'success'));
    const before = await productionContainers();
    const posted = productionPosts().length;
    const rerun = await run({
      environment: 'production',
      version: 'v8.1.0',
      digest: releases['v8.1.0']!.digest,
      runAttempt: '2',
      reviews: [
        { state: 'approved', environments: ['production'], user: 'alice' },
        { state: 'rejected', environments: ['production'], user: 'bob' },
      ],
    });
    expect(rerun.code, rerun.log).toBe(1);
    expect(rerun.log).toContain('::error title=environments.production.require-approval');
    expect(rerun.log).toContain(
      'this is attempt 2 of the run, and its reviews of production disagree (approved by alice; rejected by bob): GitHub does not say which attempt each review belongs to',
    );
    expect(productionPosts()).toHaveLength(posted);
    expect(await productionContainers()).toEqual(before);
  }, 300_000);
});
