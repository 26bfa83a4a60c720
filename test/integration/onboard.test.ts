// command: check and command: status on the estate, run as the runner runs the action. Both are
// read-only: every test compares the hosts' container IDs and states and every HAProxy server's
// address and state before and after. The broken cases are real and undone afterwards: a host
// whose Docker socket the deploy user can no longer open, a backend whose server for one host's
// backup has moved to another address.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { parseConfig } from '../../src/config/parse.js';
import { clearHosts, containersOn, runDeploy, type DeployRunOptions } from './support/deploy.js';
import { REPO_ROOT, execIn, lbCommand, loadEstate, nodeOf, type Estate } from './support/estate.js';
import { startGitHub, type GitHubStandIn } from './support/github.js';
import { pushTestApp } from './support/images.js';

let estate: Estate;
let github: GitHubStandIn;
let nextRun = 7000;
const staging = () => estate.environments.staging.hosts.slice(0, 2);
const lb = () => estate.environments.staging.lb;

function run(options: Partial<DeployRunOptions> & Pick<DeployRunOptions, 'command'>) {
  return runDeploy(estate, { environment: 'staging', version: 'v7.0.0', githubUrl: github.url, runId: String(nextRun++), ...options });
}

/** Every container of the staging hosts (ID, name, state) and every server of the backend (address, states). */
async function snapshot(): Promise<unknown> {
  const hosts = await Promise.all(staging().map(async (host) => [host, (await containersOn(estate, host)).map((c) => `${c.id} ${c.name} ${c.state}`)]));
  const servers = (await lbCommand(estate, lb(), `show servers state ${lb().backend}`))
    .split('\n')
    .filter((line) => /^\d/.test(line))
    // be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ... srv_port
    .map((line) => line.split(' ').filter((_, i) => [3, 4, 5, 6, 18].includes(i)).join(' '));
  return { hosts, servers };
}

/** The check rows the log shows for one place and check (the table is plain text between stop-commands markers). */
const rowsOf = (log: string, where: string, check: string) => log.split('\n').filter((line) => line.includes(where) && line.includes(check));

/** Waits until HAProxy's health checks agree with what runs: every listed server `status` (UP, DOWN). */
async function waitFor(servers: string[], status: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const csv = await lbCommand(estate, lb(), `show stat ${lb().backend} 4 -1`);
    if (servers.every((server) => csv.split('\n').some((line) => line.startsWith(`${lb().backend},${server},`) && line.includes(`,${status},`)))) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${servers.join(', ')} did not become ${status}`);
}

beforeAll(async () => {
  estate = loadEstate();
  github = await startGitHub();
  github.environments.set('staging', { reviewers: 0 });
  github.environments.set('production', { reviewers: 1 });
  for (const version of ['v7.0.0', 'v7.1.0']) await pushTestApp(estate, { version });
  await clearHosts(estate, estate.environments.staging.hosts);
  // Health checks take a moment to see the containers gone; the snapshots compare a settled backend.
  await waitFor(['h1-master', 'h1-backup', 'h2-master', 'h2-backup'], 'DOWN');
}, 600_000);

afterAll(async () => {
  await github?.close();
  if (estate) await clearHosts(estate, estate.environments.staging.hosts);
}, 120_000);

describe('command: check', () => {
  it('passes on the estate as its setup leaves it, before any deploy, and changes nothing', async () => {
    const before = await snapshot();
    const result = await run({ command: 'check' });
    expect(result.code, result.log).toBe(0);
    expect(await snapshot()).toEqual(before);
    for (const host of staging()) {
      for (const check of ['SSH', 'host key in ssh-known-hosts', 'Docker Engine access', 'engine version', 'registry', 'master port 50000', 'backup port 50001', 'disk space']) {
        expect(rowsOf(result.log, host, check).some((line) => line.startsWith('ok')), `${host} ${check}\n${result.log}`).toBe(true);
      }
      expect(rowsOf(result.log, lb().address, `backup server for ${host}:50001`)[0]).toMatch(/^ok .*\(backup\): \w+, check L\d/);
    }
    expect(rowsOf(result.log, lb().address, 'admin socket at level admin')[0]).toMatch(/^ok/);
    expect(rowsOf(result.log, 'GitHub', 'environment staging')[0]).toMatch(/^ok .* exists/);
    expect(result.outputs.check).toContain('admin socket at level admin');
    expect(result.summary).toContain('Check of staging');
  }, 120_000);

  it('passes on production, with its two load balancers and required reviewers, and changes nothing', async () => {
    const lbs = estate.environments.production.lbs;
    const states = () => Promise.all(lbs.map((l) => lbCommand(estate, l, `show servers state ${l.backend}`).then((t) => t.split('\n').slice(2).map((line) => line.split(' ').slice(3, 7).join(' ')))));
    const before = await states();
    const result = await run({ command: 'check', environment: 'production', bothEnvironments: { staging: '', production: 'require-approval: true\n' } });
    expect(result.code, result.log).toBe(0);
    expect(await states()).toEqual(before);
    expect(lbs).toHaveLength(2);
    for (const l of lbs) expect(rowsOf(result.log, l.address, 'admin socket at level admin')[0]).toMatch(/^ok/);
    expect(rowsOf(result.log, 'GitHub', 'required reviewers')[0]).toMatch(/^ok .*1 \(require-approval: true\)/);
  }, 120_000);

  it('the estate\'s own deploy.yml passes the parser and deploy.schema.json', () => {
    const yaml = readFileSync(join(process.env.ESTATE_DIR || '/var/lib/deploy-action-estate', 'deploy.yml'), 'utf8');
    expect(() => parseConfig('deploy.yml', yaml)).not.toThrow();
    const validate = new Ajv2020({ strict: true, strictRequired: false, allowUnionTypes: true }).compile(JSON.parse(readFileSync(join(REPO_ROOT, 'deploy.schema.json'), 'utf8')));
    expect(validate(parse(yaml)), JSON.stringify(validate.errors)).toBe(true);
  });

  it('fails where the deploy user lost Docker access on one host, naming the host and the fix, and changes nothing', async () => {
    const node = nodeOf(estate, staging()[1]!);
    // Each host has its own /run: only this host's socket is closed to the docker group.
    await execIn(node, 'chmod', '600', '/run/docker.sock');
    try {
      const before = await snapshot();
      const result = await run({ command: 'check' });
      expect(await snapshot()).toEqual(before);
      expect(result.code, result.log).toBe(1);
      const [row] = rowsOf(result.log, staging()[1]!, 'Docker Engine access');
      expect(row).toMatch(/^FAIL/);
      expect(row).toContain(`sudo usermod -aG docker ${estate.sshUser}`);
      // The other host is unaffected.
      expect(rowsOf(result.log, staging()[0]!, 'Docker Engine access')[0]).toMatch(/^ok/);
      expect(result.log).toMatch(/::error.*check: 1 of \d+ checks failed on staging/);
      expect(result.summary).toContain('❌ Check of staging');
    } finally {
      await execIn(node, 'chmod', '660', '/run/docker.sock');
    }
  }, 120_000);

  it('fails on a backend without a server for one host\'s backup, naming the server line to add, and changes nothing', async () => {
    const host = staging()[1]!;
    const backend = lb().backend;
    // The server h2-backup moves to an address no host has: the backend then has no server for host 2's backup.
    expect(await lbCommand(estate, lb(), `set server ${backend}/h2-backup addr 10.231.0.99 port 50001`)).toContain('changed');
    try {
      const before = await snapshot();
      const result = await run({ command: 'check' });
      expect(await snapshot()).toEqual(before);
      expect(result.code, result.log).toBe(1);
      const [row] = rowsOf(result.log, lb().address, `backup server for ${host}:50001`);
      expect(row).toMatch(/^FAIL/);
      expect(row).toContain(`add to backend ${backend}: server ${host}-backup ${host}:50001 check backup`);
      expect(rowsOf(result.log, lb().address, `master server for ${host}:50000`)[0]).toMatch(/^ok/);
    } finally {
      await lbCommand(estate, lb(), `set server ${backend}/h2-backup addr ${host} port 50001`);
      await waitFor(['h2-backup'], 'DOWN').catch(() => undefined);
    }
  }, 120_000);
});

describe('command: status', () => {
  /** The status output's host rows: host, role and release, e.g. "10.231.0.11 master v7.0.0". */
  const hostReleases = (text: string) =>
    staging().flatMap((host) => (['master', 'backup'] as const).map((role) => {
      const line = text.split('\n').find((l) => l.startsWith(host) && l.split(/\s+/)[1] === role) ?? '';
      const cells = line.split(/\s+/);
      return `${host} ${role} ${cells[3]} ${cells[5]}`;
    }));
  /** The status output's load balancer rows: which host and role each server serves, and its state. */
  // The servers of the config's hosts: an estate brought up with more hosts (npm run bench's
  // --staging 8) has servers for those too, which status lists as "no host here".
  const lbStates = (text: string) =>
    text.split('\n').filter((l) => l.startsWith(lb().address)).map((l) => {
      const cells = l.split(/\s+/);
      return `${cells[3]} ${cells[4]} ${cells[5]}`;
    }).filter((row) => staging().includes(row.split(' ')[0]!));
  const expected = (version: string) => staging().flatMap((host) => [`${host} master ${version} running`, `${host} backup ${version} running`]);
  const allUp = () => staging().flatMap((host) => [`${host} master UP`, `${host} backup UP`]);

  it('shows each host\'s release and each server\'s state after a deploy and after a rollback, changing nothing', async () => {
    for (const version of ['v7.0.0', 'v7.1.0']) {
      const deployed = await run({ command: 'deploy', version });
      expect(deployed.code, deployed.log).toBe(0);
    }
    const before = await snapshot();
    const afterDeploy = await run({ command: 'status' });
    expect(await snapshot()).toEqual(before);
    expect(afterDeploy.code, afterDeploy.log).toBe(0);
    expect(hostReleases(afterDeploy.outputs.status!)).toEqual(expected('v7.1.0'));
    expect(lbStates(afterDeploy.outputs.status!)).toEqual(allUp());
    expect(afterDeploy.outputs.status).toMatch(/Deploy lock:\nnot held/);
    expect(afterDeploy.outputs.status).toMatch(/Last deployments \(GitHub\):\n.*\n.*deploy\s+v7\.1\.0\s+sha256:[0-9a-f]{64}\s+success/);

    const rolledBack = await run({ command: 'rollback', rollbackTo: 'previous' });
    expect(rolledBack.code, rolledBack.log).toBe(0);
    const afterRollback = await run({ command: 'status' });
    expect(afterRollback.code, afterRollback.log).toBe(0);
    expect(hostReleases(afterRollback.outputs.status!)).toEqual(expected('v7.0.0'));
    expect(lbStates(afterRollback.outputs.status!)).toEqual(allUp());
    expect(afterRollback.outputs.status).toMatch(/rollback\s+v7\.0\.0\s+sha256:[0-9a-f]{64}\s+success/);
    expect(afterRollback.summary).toContain('Status of staging');
  }, 300_000);
});
