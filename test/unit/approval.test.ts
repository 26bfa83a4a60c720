// The approval gate: the pure verdict from a run's reviews, and checkApproval end to end against
// the GitHub stand-in (reviews of the run first; the environment's rules only to explain a refusal).
import { afterAll, beforeEach, describe, expect, it } from 'vitest';
import { checkApproval } from '../../src/pipeline/gates.js';
import type { EnvironmentConfig } from '../../src/config/schema.js';
import { GitHubApi } from '../../src/drivers/github.js';
import { approvalFor, type RunReview } from '../../src/release/approval.js';
import { startGitHub, type GitHubStandIn } from '../integration/support/github.js';

const approved = (user: string, ...environments: string[]) => ({ state: 'approved' as const, environments, user });
const rejected = (user: string, ...environments: string[]) => ({ state: 'rejected' as const, environments, user });

describe('approvalFor', () => {
  it.each<[string, RunReview[], ReturnType<typeof approvalFor>]>([
    ['approved for production', [approved('alice', 'production')], { approved: true, by: ['alice'] }],
    ['approved together with staging', [approved('alice', 'staging', 'production')], { approved: true, by: ['alice'] }],
    ['names differing only in case are one environment, as on GitHub', [approved('alice', 'Production')], { approved: true, by: ['alice'] }],
    ['several approvals name each reviewer once', [approved('alice', 'production'), approved('bob', 'production'), approved('alice', 'production')], { approved: true, by: ['alice', 'bob'] }],
    ['no reviews at all', [], { approved: false, reason: 'no reviewer approved this run for production' }],
    ['approved for staging only', [approved('alice', 'staging')], { approved: false, reason: 'no reviewer approved this run for production (approved for: staging)' }],
    ['an environment whose name only contains it', [approved('alice', 'production-eu')], { approved: false, reason: 'no reviewer approved this run for production (approved for: production-eu)' }],
    ['rejected', [rejected('bob', 'production')], { approved: false, reason: "this run's deployment to production was rejected by bob" }],
    ['a pending review', [{ state: 'pending', environments: ['production'], user: 'carol' }], { approved: false, reason: 'no reviewer approved this run for production' }],
  ])('%s', (_case, reviews, expected) => {
    expect(approvalFor(reviews, 'production')).toEqual(expected);
  });

  describe('a re-run attempt (reviews of every attempt are listed together, with no attempt or time)', () => {
    it.each<[string, RunReview[], ReturnType<typeof approvalFor>]>([
      ['every review of production approved: the newest did', [approved('alice', 'production'), approved('bob', 'production')], { approved: true, by: ['alice', 'bob'] }],
      ['only rejections', [rejected('bob', 'production')], { approved: false, reason: "this run's deployment to production was rejected by bob" }],
      [
        'an approval and a rejection: the newest cannot be told, so it is refused',
        [approved('alice', 'production'), rejected('bob', 'production')],
        {
          approved: false,
          reason: 'this is attempt 3 of the run, and its reviews of production disagree (approved by alice; rejected by bob)',
          fix: 'GitHub does not say which attempt each review belongs to, so the newest cannot be told: start a new workflow run instead of re-running this one',
        },
      ],
      [
        'several of each, every reviewer named',
        [approved('alice', 'production'), approved('carol', 'production'), rejected('bob', 'production'), rejected('dave', 'production')],
        {
          approved: false,
          reason: 'this is attempt 3 of the run, and its reviews of production disagree (approved by alice, carol; rejected by bob, dave)',
          fix: 'GitHub does not say which attempt each review belongs to, so the newest cannot be told: start a new workflow run instead of re-running this one',
        },
      ],
      ['a rejection of staging only does not count', [approved('alice', 'production'), rejected('bob', 'staging')], { approved: true, by: ['alice'] }],
    ])('%s', (_case, reviews, expected) => {
      expect(approvalFor(reviews, 'production', 3)).toEqual(expected);
    });

    it('the first attempt keeps its rule: a rejection does not undo another job\'s approval', () => {
      expect(approvalFor([approved('alice', 'production'), rejected('bob', 'production')], 'production', 1)).toEqual({ approved: true, by: ['alice'] });
    });
  });
});

const github: GitHubStandIn = await startGitHub();
const api = new GitHubApi('test-token', github.url, 'clay/demo');

describe('checkApproval', () => {
  const production = { name: 'production', requireApproval: true } as EnvironmentConfig;
  const asked = () => github.requests.map((r) => `${r.method} ${r.path}`);

  afterAll(() => github.close());
  beforeEach(() => {
    github.requests.length = 0;
    github.reviews.clear();
    github.environments.clear();
    github.environments.set('production', { reviewers: 2 });
  });

  it('passes a run approved for the environment, asking only for its reviews', async () => {
    github.reviews.set(1001, [approved('alice', 'production')]);
    await expect(checkApproval(api, production, '1001')).resolves.toBeUndefined();
    expect(asked()).toEqual(['GET /repos/clay/demo/actions/runs/1001/approvals']);
  });

  it('refuses a run approved for staging only, though production has reviewers: the job was not bound to it', async () => {
    github.reviews.set(1001, [approved('alice', 'staging')]);
    await expect(checkApproval(api, production, '1001')).rejects.toMatchObject({
      name: 'GateError',
      key: 'environments.production.require-approval',
      message:
        'environments.production.require-approval is true, but no reviewer approved this run for production (approved for: staging): ' +
        'bind the job to the environment (environment: production), so that GitHub asks its 2 reviewer(s) before the job starts; nothing was changed.',
    });
  });

  it('refuses another run\'s approval', async () => {
    github.reviews.set(1001, [approved('alice', 'production')]);
    await expect(checkApproval(api, production, '1002')).rejects.toThrow(/no reviewer approved this run for production/);
  });

  it('refuses, saying what to set up, where the environment has no reviewers', async () => {
    github.environments.set('production', { reviewers: 0 });
    await expect(checkApproval(api, production, '1001')).rejects.toThrow(
      /^environments\.production\.require-approval is true, but the GitHub environment production has no required reviewers: add reviewers under Settings/,
    );
    expect(asked()).toEqual(['GET /repos/clay/demo/actions/runs/1001/approvals', 'GET /repos/clay/demo/environments/production']);
  });

  it('refuses without a run id, asking GitHub nothing', async () => {
    await expect(checkApproval(api, production, '')).rejects.toThrow(/needs this workflow run's id \(GITHUB_RUN_ID\)/);
    expect(asked()).toEqual([]);
  });

  it('refuses without the GitHub API', async () => {
    await expect(checkApproval(undefined, production, '1001')).rejects.toThrow(/needs the GitHub API to check it/);
  });

  it('asks nothing of an environment that does not require approval', async () => {
    await checkApproval(api, { name: 'staging', requireApproval: false } as EnvironmentConfig, '1001');
    expect(asked()).toEqual([]);
  });
});
