// The threat model (README, Security model): someone with write access to the repository but
// without an environment's secrets and without a reviewer's approval must not deploy there, make a
// release promotable into it, change which release `previous` means there, or make a run attempt
// that was not approved for it deploy there. One test per way in that was found open (issue 21),
// each against the GitHub stand-in that records who created every deployment and every status.
import { readFileSync, readdirSync } from 'node:fs';
import { afterAll, afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { checkGitHub } from '../../src/commands/check.js';
import { GitHubDeployment, checkApproval, checkPromotionGate } from '../../src/pipeline/gates.js';
import { wantedRelease, type EnvironmentState } from '../../src/pipeline/target.js';
import type { EnvironmentConfig } from '../../src/config/schema.js';
import { GitHubApi } from '../../src/drivers/github.js';
import { COMMANDS, readInputs, type Inputs } from '../../src/inputs.js';
import { approvalFor } from '../../src/release/approval.js';
import type { DeploymentRecord } from '../../src/release/history.js';
import { maskSecret, redact } from '../../src/report/secrets.js';
import type { HostTarget } from '../../src/rollout/plan.js';
import type { Release } from '../../src/rollout/ports.js';
import { startGitHub, type GitHubStandIn } from '../integration/support/github.js';

const github: GitHubStandIn = await startGitHub();
const api = new GitHubApi('test-token', github.url, 'clay/demo');
const IMAGE = 'registry.example.com/clay/mobile';
const digest = (c: string) => `sha256:${c.repeat(64)}`;
const logUrl = 'https://github.com/clay/demo/actions/runs/1001';

afterAll(() => github.close());
beforeEach(() => github.reset());
afterEach(() => {
  expect(github.violations.splice(0)).toEqual([]);
});

/** Runs `work` with the stand-in creating everything as `login` (a person's token, another workflow's). */
async function as<T>(login: string, work: () => Promise<T>): Promise<T> {
  github.creator.login = login;
  try {
    return await work();
  } finally {
    github.creator.login = 'github-actions[bot]';
  }
}

/** A deployment record as the action writes one, run to `state`. */
async function recorded(environment: string, version: string, c: string, state: 'success' | 'failure', task: 'deploy' | 'rollback' = 'deploy', runId?: number): Promise<number> {
  const id = await api.createDeployment({
    ref: version,
    environment,
    payload: { version, image: IMAGE, digest: digest(c), recorded_by: 'clay/deploy-action', ...(runId ? { run_id: String(runId) } : {}) },
    production: environment === 'production',
    description: `Deploy ${version}`,
    task,
  });
  await api.setDeploymentStatus(id, 'in_progress', { logUrl, description: `Deploying ${version}` });
  await api.setDeploymentStatus(id, state, { logUrl, description: `${version}: ${state}` });
  return id;
}

/** This run: the release workflow, run for the tag being promoted. */
const releaseRun = { repository: 'clay/demo', workflowRef: 'clay/demo/.github/workflows/release.yml@refs/tags/v1.5.0' };

describe('1. a status posted with a person\'s token', () => {
  const production = { name: 'production', promoteFrom: 'staging' } as EnvironmentConfig;
  const v150 = { version: 'v1.5.0', digest: digest('5'), ref: `${IMAGE}@${digest('5')}` };

  it('does not make a failed staging deploy promotable', async () => {
    const id = await recorded('staging', 'v1.5.0', '5', 'failure');
    // GitHub: "Users with push access can create deployment statuses for a given deployment."
    await as('mallory', () => api.setDeploymentStatus(id, 'success', { logUrl: '', description: 'looks fine to me' }));
    await expect(checkPromotionGate(api, production, v150, releaseRun)).rejects.toThrow(/production refuses v1\.5\.0: v1\.5\.0 was never deployed to staging successfully \(the latest attempt there: failure\)/);
  });

  it('is not the state the driver reads for a record: only the workflow token\'s statuses are', async () => {
    const id = await recorded('staging', 'v1.5.0', '5', 'failure');
    await as('mallory', () => api.setDeploymentStatus(id, 'success', { logUrl: '', description: 'looks fine to me' }));
    const [record] = await api.deployments('staging');
    expect(record).toMatchObject({ id, state: 'failure' });
  });
});

describe('2. a production record forged with another workflow\'s token and our marker', () => {
  // Production ran v1.2.0, v1.3.0, v1.4.0 (the hosts' history label, written over SSH with
  // production's key); a workflow on any branch with `deployments: write` then records v0.9.0,
  // at its real digest, as a success in production.
  const history = [`v1.2.0@${digest('2')}`, `v1.3.0@${digest('3')}`, `v1.4.0@${digest('4')}`];
  const v140: Release = { version: 'v1.4.0', digest: digest('4'), ref: `${IMAGE}@${digest('4')}`, history };
  const hosts: Record<string, HostTarget> = { h1: { master: v140, backup: v140 }, h2: { master: v140, backup: v140 } };

  async function forged(): Promise<EnvironmentState> {
    for (const [version, c] of [['v1.2.0', '2'], ['v1.3.0', '3'], ['v1.4.0', '4']] as const) await recorded('production', version, c, 'success');
    await recorded('production', 'v0.9.0', '9', 'success');
    const records: DeploymentRecord[] = await api.deployments('production');
    return { environment: 'production', current: new Map(Object.entries(hosts)), records };
  }

  it('does not change what previous resolves to', async () => {
    const wanted = wantedRelease({ task: 'rollback', version: 'previous', allowNeverDeployed: false }, await forged());
    expect(wanted).toMatchObject({ tag: 'v1.3.0', digest: digest('3') });
  });

  it('does not let a tag production never ran through without allow-never-deployed', async () => {
    const state = await forged();
    expect(() => wantedRelease({ task: 'rollback', version: 'v0.9.0', allowNeverDeployed: false }, state)).toThrow(/version: v0\.9\.0 never ran in production/);
  });
});

describe('5. a staging record forged by another workflow\'s run (its GITHUB_TOKEN, our marker, a success)', () => {
  const production = { name: 'production', promoteFrom: 'staging' } as EnvironmentConfig;
  const v150: Release = { version: 'v1.5.0', digest: digest('5'), ref: `${IMAGE}@${digest('5')}` };
  const promote = () => checkPromotionGate(api, production, v150, releaseRun);

  it('is promotable when the run that wrote it is a push of the tag to this run\'s workflow file', async () => {
    github.runs.set(4100, { status: 'completed', conclusion: 'success', path: '.github/workflows/release.yml', event: 'push', headBranch: 'v1.5.0' });
    await recorded('staging', 'v1.5.0', '5', 'success', 'deploy', 4100);
    await expect(promote()).resolves.toBeUndefined();
  });

  it('does not make it promotable when another workflow file wrote it', async () => {
    github.runs.set(4200, { status: 'completed', path: '.github/workflows/tinker.yml', event: 'push', headBranch: 'v1.5.0' });
    await recorded('staging', 'v1.5.0', '5', 'success', 'deploy', 4200);
    await expect(promote()).rejects.toThrow(/production refuses v1\.5\.0: the staging record of v1\.5\.0 \(deployment \d+\) was not written by the release process: its workflow run 4200 is not a push of v1\.5\.0 to \.github\/workflows\/release\.yml \(its workflow is "\.github\/workflows\/tinker\.yml", not "\.github\/workflows\/release\.yml"\)/);
  });

  it('does not make it promotable when the release workflow ran on a branch or by hand', async () => {
    github.runs.set(4300, { status: 'completed', path: '.github/workflows/release.yml', event: 'push', headBranch: 'mallory/try' });
    await recorded('staging', 'v1.5.0', '5', 'success', 'deploy', 4300);
    await expect(promote()).rejects.toThrow(/its workflow run 4300 is not a push of v1\.5\.0 .*\(it ran for "mallory\/try", not the tag v1\.5\.0\)/);
    github.runs.set(4301, { status: 'completed', path: '.github/workflows/release.yml', event: 'workflow_dispatch', headBranch: 'v1.5.0' });
    await recorded('staging', 'v1.5.0', '5', 'success', 'deploy', 4301);
    await expect(promote()).rejects.toThrow(/its workflow run 4301 .*\(it was started by "workflow_dispatch", not a push of v1\.5\.0\)/);
  });

  it('is not verified when GitHub does not answer for its run, nor when it names none', async () => {
    await recorded('staging', 'v1.5.0', '5', 'success', 'deploy', 4400);
    await expect(promote()).rejects.toThrow(/cannot verify the staging record of v1\.5\.0 \(deployment \d+\): Could not read workflow run 4400: HTTP 404/);
    github.runs.set(4400, { status: 'completed', headBranch: 'v1.5.0' });
    github.overrides.set('GET /repos/clay/demo/actions/runs/4400', { status: 403, body: { message: 'Resource not accessible by integration', documentation_url: 'https://docs.github.com/rest' } });
    await expect(promote()).rejects.toThrow(/cannot verify .*HTTP 403.*the token needs the actions: read permission/);
    await recorded('staging', 'v1.5.0', '5', 'success');
    await expect(promote()).rejects.toThrow(/cannot verify the staging record of v1\.5\.0 \(deployment \d+\): it names no workflow run \(run_id; records written before deploy-action recorded it have none\): deploy v1\.5\.0 to staging again from its tag push/);
  });

  it('is not verified when this run\'s own workflow file is unknown', async () => {
    github.runs.set(4500, { status: 'completed', headBranch: 'v1.5.0' });
    await recorded('staging', 'v1.5.0', '5', 'success', 'deploy', 4500);
    await expect(checkPromotionGate(api, production, v150, { repository: 'clay/demo', workflowRef: '' })).rejects.toThrow(/this run's workflow file is unknown \(GITHUB_WORKFLOW_REF "" is not clay\/demo\/<file>@<ref>\)/);
  });

  it('the action writes its run id into every record it opens', async () => {
    const inputs = { run: { runId: '4600', serverUrl: 'https://github.com', repository: 'clay/demo' } } as Inputs;
    await GitHubDeployment.open(api, inputs, { name: 'staging' } as EnvironmentConfig, { ...v150, image: IMAGE }, 'deploy');
    const [record] = await api.deployments('staging');
    expect(record!.payload).toMatchObject({ version: 'v1.5.0', runId: '4600' });
  });
});

describe('3. a re-run attempt', () => {
  const approved = (user: string) => ({ state: 'approved' as const, environments: ['production'], user });
  const rejected = (user: string) => ({ state: 'rejected' as const, environments: ['production'], user });

  it('whose reviewer rejected production is not approved by attempt 1\'s approval', () => {
    // Reviews are per run: attempt 1's approval and attempt 2's rejection are both listed.
    const verdict = approvalFor([approved('alice'), rejected('bob')], 'production', 2);
    expect(verdict).toMatchObject({ approved: false });
    expect(verdict.approved === false && verdict.reason).toMatch(/attempt 2/);
  });

  it('is refused by checkApproval when production was rejected in the run', async () => {
    github.environments.set('production', { reviewers: 1 });
    github.reviews.set(1001, [approved('alice'), rejected('bob')]);
    await expect(checkApproval(api, { name: 'production', requireApproval: true } as EnvironmentConfig, '1001', '2')).rejects.toThrow(/attempt 2/);
  });
});

describe('4. what reaches GitHub and the log', () => {
  it('the docs name every command that calls GitHub, and only those', () => {
    const page = readFileSync('docs/workflows.md', 'utf8').replace(/\n(?!\n)/g, ' ');
    const claim = /^(?:Only )?([^\n]+?); ([^;\n]+?) call nothing there/m.exec(page);
    expect(claim, 'docs/workflows.md: "... call GitHub ...; ... call nothing there"').not.toBeNull();
    const named = (text: string) => [...text.matchAll(/`([a-z-]+)`/g)].map((m) => m[1]!).filter((name) => (COMMANDS as readonly string[]).includes(name)).sort();
    // A command calls GitHub when its module (or the deploy pipeline it runs) builds the GitHub client.
    const callers = ['commands', 'pipeline'].flatMap((dir) =>
      readdirSync(`src/${dir}`)
        .filter((file) => /\bgitHub\(inputs\)/.test(readFileSync(`src/${dir}/${file}`, 'utf8')))
        .map((file) => `${dir}/${file.replace(/\.ts$/, '')}`),
    );
    const pipeline = ['deploy', 'rollback'];
    const modules: Record<string, string[]> = { 'pipeline/index': pipeline, 'pipeline/lock': pipeline, 'pipeline/interrupted': pipeline, 'commands/check': ['check'], 'commands/status': ['status'], 'commands/unlock': ['unlock'], 'commands/run': ['run'] };
    const expected = [...new Set(callers.flatMap((module) => modules[module] ?? [`${module} (a module this test does not know: say which command it serves)`]))].sort();
    expect(named(claim![1]!)).toEqual(expected);
    expect(named(claim![2]!)).toEqual(COMMANDS.filter((c) => !expected.includes(c)).sort());
  });

  it('a failure description is redacted before it goes into GitHub\'s deployment status', async () => {
    maskSecret('hunter2-registry-token');
    const id = await recorded('staging', 'v1.5.0', '5', 'success');
    await api.setDeploymentStatus(id, 'failure', { logUrl, description: 'pull failed: unauthorized: hunter2-registry-token rejected' });
    const sent = github.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/statuses')).at(-1)!.body as { description: string };
    expect(sent.description).toBe('pull failed: unauthorized: *** rejected');
  });

  it('the base64 user:password a Docker config stores is masked', () => {
    vi.stubEnv('INPUT_COMMAND', 'build');
    vi.stubEnv('INPUT_REGISTRY-USERNAME', 'deployer');
    vi.stubEnv('INPUT_REGISTRY-PASSWORD', 'pa55-w0rd-of-the-registry');
    try {
      readInputs();
    } finally {
      vi.unstubAllEnvs();
    }
    const auth = Buffer.from('deployer:pa55-w0rd-of-the-registry').toString('base64');
    expect(redact(`"auths": { "registry": { "auth": "${auth}" } }`)).toBe('"auths": { "registry": { "auth": "***" } }');
  });
});

describe('an environment protected by a wait timer or a custom rule instead of reviewers', () => {
  const production = { name: 'production', requireApproval: true } as EnvironmentConfig;

  it('gets an error that says so and what to do', async () => {
    github.environments.set('production', { reviewers: 0, waitTimer: 30 });
    await expect(checkApproval(api, production, '1001', '1')).rejects.toThrow(/protected by a wait timer \(30 minutes\)/);
    github.environments.set('production', { reviewers: 0, customRule: 'deployment_protection_rule' });
    await expect(checkApproval(api, production, '1001', '1')).rejects.toThrow(/a custom protection rule \(deployment_protection_rule\)/);
  });

  it('and command: check says the same in its row', async () => {
    github.environments.set('production', { reviewers: 0, waitTimer: 30 });
    const rows = await checkGitHub(api, production);
    expect(rows.find((r) => r.check === 'required reviewers')).toMatchObject({
      verdict: 'fail',
      detail: 'none (protected by a wait timer (30 minutes), which records no approval), and require-approval is true: every deploy would be refused',
      fix: 'Settings → Environments → production → Required reviewers: add at least one; or set environments.production.require-approval: false to rely on those rules alone',
    });
  });
});
