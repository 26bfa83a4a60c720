// CONTRIBUTING.md's main command: the whole release on the estate, exactly as the two example
// workflows would run it, under steady traffic through both load balancers. Run by
// scripts/on-estate.sh, which sets up the machine and the estate first.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAction, type ActionRun } from '../test/integration/support/action.js';
import { APP_SECRET, clearHosts, deployConfig } from '../test/integration/support/deploy.js';
import { REPO_ROOT, loadEstate } from '../test/integration/support/estate.js';
import { startGitHub } from '../test/integration/support/github.js';
import { startLoad, type LoadGenerator } from '../test/integration/support/load.js';
import type { Receipt } from '../src/receipt/document.js';
import { screenshotSummary } from './summary-screenshot.js';

const estate = loadEstate();
// A first release: whatever an earlier run left on the hosts goes.
await clearHosts(estate, [...estate.environments.staging.hosts, ...estate.environments.production.hosts]);
const github = await startGitHub();
github.environments.set('staging', { reviewers: 0 });
// What a real production environment has: a required reviewer (the job waits for approval).
github.environments.set('production', { reviewers: 1 });

const workspace = mkdtempSync(join(tmpdir(), 'demo-workspace-'));
cpSync(join(REPO_ROOT, 'test/app'), join(workspace, 'app'), { recursive: true });
mkdirSync(join(workspace, '.github'));
const config = deployConfig(estate, {
  environment: 'staging',
  bothEnvironments: { staging: '', production: 'require-approval: true\n    promote-from: staging\n    canary: { hold: 5, max-error-rate: 1 }\n' },
}).replace('container:', 'build: { context: app, dockerfile: Dockerfile, latest: true }\ncontainer:');
writeFileSync(join(workspace, '.github/deploy.yml'), config);
const logs = mkdtempSync(join(tmpdir(), 'demo-logs-'));
const bin = mkdtempSync(join(tmpdir(), 'demo-bin-'));
symlinkSync(estate.dockerCli, join(bin, 'docker'));

const secrets = {
  'registry-username': estate.registry.username,
  'registry-password': estate.registry.password,
  'ssh-private-key': readFileSync(estate.sshKey, 'utf8'),
  'ssh-known-hosts': readFileSync(estate.knownHosts, 'utf8'),
  'github-token': 'test-token',
};
let runId = 7000;

/** One workflow job: the action with that job's inputs, as the runner runs it. */
async function job(name: string, ref: string, inputs: Record<string, string>): Promise<ActionRun> {
  runId++;
  // The production job is bound to its environment: GitHub starts it once the reviewer approved.
  if (inputs.environment === 'production') github.reviews.set(runId, [{ state: 'approved', environments: ['production'], user: 'reviewer1' }]);
  const run = await runAction({
    workspace,
    ref,
    inputs: { ...secrets, ...inputs },
    env: {
      GITHUB_RUN_ID: String(runId),
      GITHUB_API_URL: github.url,
      DOCKER_HOST: estate.runnerDockerHost,
      PATH: `${bin}:${process.env.PATH}`,
      APP_SECRET,
    },
  });
  writeFileSync(join(logs, `${String(runId)}-${name}.log`), run.log);
  if (run.code !== 0) {
    console.error(run.log);
    throw new Error(`${name} failed (exit ${run.code}); log in ${logs}`);
  }
  return run;
}

const traffic: Record<'staging' | 'production', LoadGenerator> = {
  staging: startLoad({ url: `${estate.environments.staging.lb.frontend}/`, clients: 4, ratePerClient: 40, maxSeconds: 900, waitUntilServing: true }),
  production: startLoad({ url: `${estate.environments.production.lb.frontend}/`, clients: 4, ratePerClient: 40, maxSeconds: 900, waitUntilServing: true }),
};

/** The version a load balancer serves right now (asked a few times: every host must agree). */
async function serving(environment: 'staging' | 'production'): Promise<string> {
  const seen = new Set<string>();
  for (let i = 0; i < 6; i++) {
    const answer = await fetch(`${estate.environments[environment].lb.frontend}/`).then((r) => (r.ok ? r.text() : `HTTP ${r.status}`), () => 'down');
    seen.add(answer.trim());
  }
  return [...seen].join('+');
}

const rows: string[][] = [];
async function stage(name: string, run: () => Promise<ActionRun>): Promise<ActionRun> {
  const started = Date.now();
  process.stdout.write(`${name} ... `);
  const result = await run();
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  // The receipt (deploys and rollbacks): what the load balancers counted during the rollout.
  const receipt = result.outputs.receipt ? (JSON.parse(result.outputs.receipt) as Receipt) : undefined;
  const counted = receipt ? `${receipt.totals.errors} errors in ${receipt.totals.requests} requests` : '';
  const row = [name, `${seconds} s`, await serving('staging'), await serving('production'), counted];
  rows.push(row);
  console.log(`${seconds} s`);
  return result;
}

const deployJob = (environment: string, built: ActionRun) =>
  job(`deploy-${environment}`, `refs/tags/${built.outputs.version}`, {
    command: 'deploy',
    environment,
    version: built.outputs.version!,
    digest: built.outputs.digest!,
  });

let summary = '';
try {
  for (const version of ['v1.0.0', 'v1.1.0']) {
    // release.yml on the tag push: build → staging → production, version and digest handed on.
    const built = await stage(`build ${version}`, () => job('build', `refs/tags/${version}`, { command: 'build' }));
    await stage(`deploy ${version} to staging`, () => deployJob('staging', built));
    summary = (await stage(`deploy ${version} to production`, () => deployJob('production', built))).summary;
  }
  // rollback.yml, dispatched by hand: production back to the release before.
  await stage('rollback production to previous', () =>
    job('rollback-production', 'refs/heads/main', { command: 'rollback', environment: 'production', version: 'previous' }),
  );
} finally {
  const reports = { staging: await traffic.staging.stop(), production: await traffic.production.stop() };
  await github.close();
  const widths = [32, 9, 16, 16, 30];
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  console.log('\nRelease on the estate (versions served after each step)');
  console.log(line(['step', 'time', 'staging serves', 'production serves', 'receipt (load balancers)']));
  for (const row of rows) console.log(line(row));
  for (const env of ['staging', 'production'] as const) {
    const r = reports[env];
    console.log(`${env}: ${r.sent} requests sent, ${r.failed} failed over ${r.seconds.toFixed(0)} s (${Object.entries(r.versions).map(([v, n]) => `${v}: ${n}`).join(', ')})`);
    for (const failure of r.failures) console.log(`  ${failure}`);
  }
  console.log(`Job logs: ${logs}`);
}

// The last production deploy's job summary as a reader sees it (docs/receipt-and-canary.md shows it).
const png = join(REPO_ROOT, 'docs/images/receipt-summary.png');
mkdirSync(join(REPO_ROOT, 'docs/images'), { recursive: true });
const drawn = await screenshotSummary(summary, join(logs, 'receipt-summary.html'), png);
console.log(`Job summary of the last production deploy: ${png} (${drawn ? 'every chart drawn by Mermaid' : 'NOT every chart drawn'}; page in ${logs})`);
if (!drawn) process.exitCode = 1;
