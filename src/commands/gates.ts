// What GitHub must confirm before a deploy may touch a host (approval, promotion), and the
// deployment record each deploy and rollback leaves in the environment's history.
import * as core from '@actions/core';
import type { EnvironmentConfig } from '../config/schema.js';
import { GitHubApi } from '../drivers/github.js';
import type { Inputs } from '../inputs.js';
import { checkPromotion } from '../release/history.js';
import type { Release } from '../rollout/ports.js';

/** A refusal caused by a config key; the annotation names that key. */
export class GateError extends Error {
  override name = 'GateError';
  constructor(
    readonly key: string,
    message: string,
  ) {
    super(message);
  }
}

export function runUrl(inputs: Inputs): string {
  const { serverUrl, repository, runId } = inputs.run;
  return repository && runId ? `${serverUrl}/${repository}/actions/runs/${runId}` : '';
}

export function gitHub(inputs: Inputs): GitHubApi | undefined {
  const { apiUrl, repository } = inputs.run;
  return inputs.githubToken && repository ? new GitHubApi(inputs.githubToken, apiUrl, repository) : undefined;
}

function need(github: GitHubApi | undefined, key: string): GitHubApi {
  if (!github) throw new GateError(key, `${key}: needs the GitHub API to check it: give github-token (the default, github.token, works) and run in a repository`);
  return github;
}

/**
 * require-approval: the reviewers' gate itself is GitHub's (the job waits for approval before it
 * starts); the action refuses to run where that gate is missing, so it cannot be bypassed by a
 * job that forgot `environment:` or an environment without reviewers.
 */
export async function checkApproval(github: GitHubApi | undefined, env: EnvironmentConfig): Promise<void> {
  if (!env.requireApproval) return;
  const key = `environments.${env.name}.require-approval`;
  const { exists, reviewers } = await need(github, key).environmentReviewers(env.name);
  if (!exists || reviewers === 0) {
    throw new GateError(
      key,
      `${key} is true, but the GitHub environment ${env.name} ${exists ? 'has no required reviewers' : 'does not exist'}: ` +
        `add reviewers under Settings → Environments → ${env.name} → Required reviewers, and bind the job to it ` +
        `(environment: ${env.name}). Private repositories need a GitHub plan with required reviewers (Enterprise).`,
    );
  }
  core.info(`GitHub environment ${env.name} requires ${reviewers} reviewer(s): approved, as this job runs.`);
}

/** promote-from: the exact image (digest) tested in the other environment, and nothing else. */
export async function checkPromotionGate(github: GitHubApi | undefined, env: EnvironmentConfig, target: Release): Promise<void> {
  if (!env.promoteFrom) return;
  const key = `environments.${env.name}.promote-from`;
  const records = await need(github, key).deployments(env.promoteFrom);
  const refusal = checkPromotion(records, env.promoteFrom, target.version, target.digest);
  if (refusal) throw new GateError(key, `${env.name} refuses ${target.version}: ${refusal}`);
  core.info(`${target.version} (${target.digest}) is what ${env.promoteFrom} runs: promoting it.`);
}

/** The GitHub deployment of one deploy or rollback: in_progress now, success or failure at the end. */
export class GitHubDeployment {
  private constructor(
    private readonly github: GitHubApi,
    readonly id: number,
    private readonly urls: { environmentUrl?: string; logUrl: string },
  ) {}

  static async open(
    github: GitHubApi | undefined,
    inputs: Inputs,
    env: EnvironmentConfig,
    target: Release & { image: string },
    task: 'deploy' | 'rollback',
    /** A rollback to a release the environment never ran (allow-never-deployed): the record says so. */
    neverRan = false,
  ): Promise<GitHubDeployment | undefined> {
    if (!github) {
      core.info('No GitHub token or repository: no deployment record.');
      return undefined;
    }
    const id = await github.createDeployment({
      ref: target.version,
      environment: env.name,
      payload: { version: target.version, image: target.image, digest: target.digest },
      production: env.name === 'production',
      description: `${task === 'rollback' ? 'Rollback to' : 'Deploy'} ${target.version}${neverRan ? ' (never ran here: allow-never-deployed)' : ''}`,
      task,
    });
    const record = new GitHubDeployment(github, id, { ...(env.url ? { environmentUrl: env.url } : {}), logUrl: runUrl(inputs) });
    await record.set('in_progress', `${task === 'rollback' ? 'Rolling back to' : 'Deploying'} ${target.version}`);
    return record;
  }

  async set(state: 'in_progress' | 'success' | 'failure', description: string): Promise<void> {
    await this.github.setDeploymentStatus(this.id, state, { ...this.urls, description });
  }
}
