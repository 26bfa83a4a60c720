// What GitHub must confirm before a deploy may touch a host (approval, promotion), and the
// deployment record each deploy and rollback leaves in the environment's history.
import * as core from '@actions/core';
import type { EnvironmentConfig } from '../config/schema.js';
import { GitHubApi } from '../drivers/github.js';
import type { Inputs, RunContext } from '../inputs.js';
import { approvalFor } from '../release/approval.js';
import { checkPromotion, promotingRecord, type DeploymentRecord } from '../release/history.js';
import { RECORD_MARKER, TRUSTED_CREATOR, repositoryOf, runProblem, trustedRecords, workflowPath } from '../release/trust.js';
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
 * require-approval: only a run that GitHub's required reviewers approved for this environment may
 * deploy there. The reviews are GitHub's record of this run, so a job that forgot
 * `environment:`, or is bound to another environment, is refused even when the environment has
 * reviewers. The automatic deployment GitHub makes for a bound job is no proof: any job with
 * `deployments: write` can create one that looks the same. Reviews are per run, not per job: once
 * a reviewer approved production, any job of that same run may deploy there; a re-run attempt is
 * judged on its own (release/approval.ts).
 */
export async function checkApproval(github: GitHubApi | undefined, env: EnvironmentConfig, runId: string, runAttempt = '1'): Promise<void> {
  if (!env.requireApproval) return;
  const key = `environments.${env.name}.require-approval`;
  const api = need(github, key);
  if (!/^\d+$/.test(runId)) {
    throw new GateError(key, `${key}: needs this workflow run's id (GITHUB_RUN_ID) to read its approvals; run the deploy in a workflow job bound to environment ${env.name}`);
  }
  const attempt = /^\d+$/.test(runAttempt) ? Number(runAttempt) : 1;
  const verdict = approvalFor(await api.runReviews(runId), env.name, attempt);
  if (verdict.approved) {
    core.info(`This run was approved for ${env.name} by ${verdict.by.join(', ')}${attempt > 1 ? ` (attempt ${attempt}: every review of ${env.name} in the run approved it)` : ''}.`);
    return;
  }
  if (verdict.fix) throw new GateError(key, `${key} is true, but ${verdict.reason}: ${verdict.fix}; nothing was changed.`);
  // Only to say what to fix: the environment's rules decide nothing once the run is unapproved.
  const { exists, reviewers, otherRules = [] } = await api.environmentReviewers(env.name);
  const addReviewers = `add reviewers under Settings → Environments → ${env.name} → Required reviewers, and bind the job to it (environment: ${env.name})`;
  const fix =
    exists && reviewers === 0 && otherRules.length > 0
      ? `the GitHub environment ${env.name} is protected by ${otherRules.join(' and ')}, not by required reviewers: ` +
        'GitHub records no approval for such rules, and an approval is what require-approval reads. Either ' +
        `${addReviewers}, or, to rely on those rules alone, set ${key}: false (they still hold a job bound to the environment); nothing was changed.`
      : !exists || reviewers === 0
        ? `the GitHub environment ${env.name} ${exists ? 'has no required reviewers' : 'does not exist'}: ${addReviewers}. ` +
          'Private repositories need a GitHub plan with required reviewers (Enterprise).'
        : `${verdict.reason}: bind the job to the environment (environment: ${env.name}), so that GitHub asks its ` +
          `${reviewers} reviewer(s) before the job starts; nothing was changed.`;
  throw new GateError(key, `${key} is true, but ${fix}`);
}

/**
 * The environment's deployment records that this action wrote for `image` (release/trust.ts says
 * how that is told), newest first; records that claim to be release records but fail the checks
 * are reported in one warning and left out.
 */
export async function trustedHistory(github: GitHubApi, environment: string, image: string): Promise<DeploymentRecord[]> {
  const { trusted, untrusted } = trustedRecords(await github.deployments(environment), image);
  if (untrusted.length > 0) {
    const shown = untrusted.slice(0, 5).map((u) => `${u.id} (${u.reason})`);
    core.warning(
      `Ignored ${untrusted.length} GitHub deployment record(s) of ${environment} that deploy-action did not provably write: ` +
        `${shown.join('; ')}${untrusted.length > shown.length ? '; …' : ''}`,
    );
  }
  // An `inactive` someone else posted changes nothing (ours stays), and GitHub adds its own to every
  // record a later success retires, under a creator it does not document: not worth a warning.
  const said = (r: DeploymentRecord) => (r.ignoredStatuses ?? []).filter((s) => s.state !== 'inactive');
  const others = trusted.filter((r) => said(r).length > 0);
  if (others.length > 0) {
    const shown = others.slice(0, 5).map((r) => `${r.id} (${said(r).slice(0, 3).map((s) => `${s.state} by ${JSON.stringify(s.creator ?? 'nobody')}`).join(', ')})`);
    core.warning(
      `Ignored statuses that ${TRUSTED_CREATOR} did not post on ${others.length} deploy-action record(s) of ${environment}; each record's state is that of its newest status ${TRUSTED_CREATOR} posted: ` +
        `${shown.join('; ')}${others.length > shown.length ? '; …' : ''}`,
    );
  }
  return trusted;
}

/**
 * promote-from: the exact image (digest) tested in the other environment, and nothing else. The
 * record that vouches for it counts only when the run that wrote it (its payload's `run_id`) is,
 * by GitHub's word, the release process itself: the same workflow file as this run, started by a
 * push of the release tag (release/trust.ts: runProblem). Another workflow's GITHUB_TOKEN writes
 * records with the same creator and marker; it cannot write that run. A record naming no run, a
 * run GitHub does not answer for, or this run's own workflow unknown: not verified, refused.
 */
export async function checkPromotionGate(github: GitHubApi | undefined, env: EnvironmentConfig, target: Release, run: Pick<RunContext, 'workflowRef' | 'repository'>): Promise<void> {
  if (!env.promoteFrom) return;
  const key = `environments.${env.name}.promote-from`;
  const api = need(github, key);
  const records = await trustedHistory(api, env.promoteFrom, repositoryOf(target.ref));
  const refusal = checkPromotion(records, env.promoteFrom, target.version, target.digest);
  const refuse = (why: string) => new GateError(key, `${env.name} refuses ${target.version}: ${why}`);
  if (refusal) throw refuse(refusal);
  const record = promotingRecord(records, target.version)!;
  const which = `the ${env.promoteFrom} record of ${target.version} (deployment ${record.id})`;
  const again = `deploy ${target.version} to ${env.promoteFrom} again from its tag push, then promote it`;
  const path = workflowPath(run.workflowRef, run.repository);
  if (!path) {
    throw refuse(`cannot verify ${which}: this run's workflow file is unknown (GITHUB_WORKFLOW_REF ${JSON.stringify(run.workflowRef)} is not ${run.repository || 'owner/repo'}/<file>@<ref>)`);
  }
  if (!record.payload.runId) {
    throw refuse(`cannot verify ${which}: it names no workflow run (run_id; records written before deploy-action recorded it have none): ${again}`);
  }
  let problem: string | undefined;
  try {
    problem = runProblem(await api.workflowRun(record.payload.runId), { path, tag: target.version });
  } catch (error) {
    throw refuse(`cannot verify ${which}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (problem) throw refuse(`${which} was not written by the release process: its workflow run ${record.payload.runId} is not a push of ${target.version} to ${path} (${problem})`);
  core.info(`${target.version} (${target.digest}) is what ${env.promoteFrom} runs, deployed by run ${record.payload.runId} of ${path} for the tag: promoting it.`);
}

/** The GitHub deployment of one deploy or rollback: in_progress now, success or failure at the end. */
export class GitHubDeployment {
  private constructor(
    private readonly github: GitHubApi,
    readonly id: number,
    private readonly urls: { environmentUrl?: string; logUrl: string },
  ) {}

  /** A record an earlier step of this job opened (the post step of a cancelled deploy). */
  static existing(github: GitHubApi, inputs: Inputs, env: EnvironmentConfig, id: number): GitHubDeployment {
    return new GitHubDeployment(github, id, { ...(env.url ? { environmentUrl: env.url } : {}), logUrl: runUrl(inputs) });
  }

  /**
   * The record this job's main step opened, for its post step: the id its journal kept, or, when
   * the main step was killed between opening the record and journaling its id, the one GitHub
   * holds with this run's id and attempt in its payload, still open. Found, not journaled ahead: the id
   * exists only once GitHub answers, and a journal write before every record would cost every
   * run a round trip to the lock host that only a killed one needs.
   */
  static async ofRun(github: GitHubApi, inputs: Inputs, env: EnvironmentConfig, journaled: number | undefined): Promise<GitHubDeployment | undefined> {
    const id = journaled ?? (await github.openRecordsOfRun(env.name, inputs.run.runId, inputs.run.runAttempt))[0];
    return id === undefined ? undefined : GitHubDeployment.existing(github, inputs, env, id);
  }

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
      // run_id: what promote-from verifies the record by (checkPromotionGate); with run_attempt,
      // what this attempt's post step finds it by (ofRun): a re-run shares the run id.
      payload: {
        version: target.version,
        image: target.image,
        digest: target.digest,
        [RECORD_MARKER.key]: RECORD_MARKER.value,
        ...(/^\d+$/.test(inputs.run.runId) ? { run_id: inputs.run.runId, ...(/^\d+$/.test(inputs.run.runAttempt) ? { run_attempt: inputs.run.runAttempt } : {}) } : {}),
      },
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

  /**
   * `set`, only while the record is open (no status of ours yet, or in_progress): what closed it
   * (the main step's own failure) stays. A state GitHub cannot read counts as open: a record left
   * in_progress for ever is the worse mistake, and closing it twice says the same word again.
   */
  async closeIfOpen(state: 'failure', description: string): Promise<void> {
    const now = await this.github.deploymentState(this.id).catch(() => 'none' as const);
    if (now === 'none' || now === 'in_progress') await this.set(state, description);
  }
}
