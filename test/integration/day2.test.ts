// The day-2 commands on the estate's staging, run as the runner runs them: logs (each container's
// last lines, folded, as untrusted text), run (a one-off task in the running release) and unlock
// (clears the lock of a run GitHub reports ended, refuses while it runs or when GitHub cannot tell).
// The dead run is made for real: a task's runner killed with SIGKILL, its post step never run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outsideStopCommands } from './support/action.js';
import { APP_SECRET, clearHosts, containersOn, runDeploy, type DeployRunOptions } from './support/deploy.js';
import { loadEstate, type Estate } from './support/estate.js';
import { startGitHub, type GitHubStandIn } from './support/github.js';
import { killWhen } from './support/faults.js';
import { pushTestApp } from './support/images.js';

let estate: Estate;
let github: GitHubStandIn;
let repository: string;
let hosts: string[];
let lockAt: string;
const names = async (host: string) => (await containersOn(estate, host)).map((c) => `${c.name} ${c.state}`);

function command(options: Partial<DeployRunOptions> & Pick<DeployRunOptions, 'command'>) {
  return runDeploy(estate, { environment: 'staging', version: 'v23.0.0', repository, githubUrl: github.url, ...options });
}

beforeAll(async () => {
  estate = loadEstate();
  github = await startGitHub();
  repository = `${estate.registry.address}/clay/day2-test`;
  hosts = estate.environments.staging.hosts.slice(0, 2);
  lockAt = [...hosts].sort()[0]!;
  // An app whose log prints workflow commands, a fence and HTML as it starts.
  await pushTestApp(estate, { repository, version: 'v23.0.0', hostileLog: true });
  await pushTestApp(estate, { repository, version: 'v23.1.0' });
  await clearHosts(estate, hosts);
  const deployed = await command({ command: 'deploy' });
  if (deployed.code !== 0) throw new Error(deployed.log);
}, 600_000);

afterAll(async () => {
  await github?.close();
  if (estate) await clearHosts(estate, hosts);
}, 120_000);

describe('command: logs', () => {
  it('shows each container\'s last lines per host and role, folded, obeying none of them, escaped in the summary', async () => {
    const before = await Promise.all(hosts.map(names));
    const run = await command({ command: 'logs', inputs: { lines: '7' } });
    expect(run.code, run.log).toBe(0);
    for (const host of hosts) {
      for (const [role, name] of [['master', 'demo'], ['backup', 'demo-backup']]) {
        expect(run.log).toContain(`::group::${host} ${role}: ${name} (v23.0.0)`);
      }
    }
    // The last 7 lines: all the app printed, for each of the 4 containers.
    expect(run.log.match(/^# pwned-heading$/gm)).toHaveLength(4);
    expect(run.log).toContain('::error::pwned');
    expect(outsideStopCommands(run.log).filter((line) => /pwned|hostile/.test(line))).toEqual([]);
    expect(run.summary).toContain('&lt;/code&gt;&lt;/pre&gt;&lt;h1&gt;pwned-html&lt;/h1&gt;');
    expect(run.summary).not.toContain('<h1>pwned-html');
    expect(await Promise.all(hosts.map(names))).toEqual(before);
  }, 120_000);
});

describe('command: run', () => {
  it('runs a task in a new container of the running release, with the app\'s env and secrets, and leaves nothing behind', async () => {
    const before = await Promise.all(hosts.map(names));
    const task = JSON.stringify(['sh', '-c', 'echo "greeting $GREETING"; echo "serves $(cat /www/index.html)"; echo "secret $APP_SECRET" | wc -c']);
    const run = await command({ command: 'run', inputs: { task } });
    expect(run.code, run.log).toBe(0);
    expect(run.log).toContain(`[${lockAt}] greeting hello`);
    expect(run.log).toContain(`[${lockAt}] serves v23.0.0`);
    // The secret reached the task (its length printed), never the log.
    expect(run.log).toContain(`[${lockAt}] ${`secret ${APP_SECRET}\n`.length}`);
    expect(run.log).not.toContain(APP_SECRET);
    expect(run.outputs['exit-code']).toBe('0');
    expect(run.outputs.version).toBe('v23.0.0');
    // No task container, no lock, the app untouched.
    expect(await Promise.all(hosts.map(names))).toEqual(before);
  }, 120_000);

  it('fails the step when the task exits non-zero, quoting its last lines', async () => {
    const run = await command({ command: 'run', inputs: { task: JSON.stringify(['sh', '-c', 'echo first-line; echo last-line; exit 3']) } });
    expect(run.code).toBe(1);
    expect(run.log).toMatch(/::error::the task in staging \["sh","-c",.*\] on 10\.231\.0\.\d+ exited with code 3; its last lines:%0Afirst-line%0Alast-line/);
    expect((await names(lockAt)).filter((n) => /demo-(run|deploy-lock)/.test(n))).toEqual([]);
  }, 120_000);

  it('stops a task at its timeout', async () => {
    const run = await command({ command: 'run', inputs: { task: 'sleep 300', timeout: '2' } });
    expect(run.code).toBe(1);
    expect(run.log).toContain('did not finish within the timeout input (2 s)');
    expect((await names(lockAt)).filter((n) => /demo-(run|deploy-lock)/.test(n))).toEqual([]);
  }, 120_000);
});

describe('command: unlock', () => {
  const deadRun = 9301;

  it('refuses while GitHub reports the holder\'s run live, or cannot tell; clears it once the run has ended', async () => {
    github.runs.set(deadRun, { status: 'in_progress' });
    // A task whose runner dies (no post step): its lock and its container stay behind.
    const dying = await command({
      command: 'run',
      runId: String(deadRun),
      inputs: { task: 'sleep 600' },
      onStart: (pid) => killWhen(pid, async () => (await names(lockAt)).includes('demo-run running'), 100),
    });
    expect(dying.code).toBeNull();
    expect(await names(lockAt)).toEqual(expect.arrayContaining(['demo-deploy-lock created', 'demo-run running']));

    const reason = 'runner lost during the seed task';
    const live = await command({ command: 'unlock', inputs: { reason } });
    expect(live.code).toBe(1);
    expect(live.log).toContain('the deploy lock was not cleared: GitHub reports its run as still running');
    const unknown = await command({ command: 'unlock', inputs: { reason }, githubUrl: undefined });
    expect(unknown.code).toBe(1);
    expect(unknown.log).toContain('GitHub cannot tell whether its run has ended (no github-token to ask GitHub)');
    expect(await names(lockAt)).toContain('demo-deploy-lock created');

    github.runs.set(deadRun, { status: 'completed', conclusion: 'failure' });
    const cleared = await command({ command: 'unlock', inputs: { reason } });
    expect(cleared.code, cleared.log).toBe(0);
    expect(cleared.log).toContain(`Cleared the deploy lock of staging (its run has ended): by octocat in https://github.com/clay/demo/actions/runs/`);
    expect(cleared.log).toContain(`because: ${reason}`);
    const record = JSON.parse(cleared.outputs.unlocked!) as { clearedBy: string; reason: string; lock: { runId: string } };
    expect(record).toMatchObject({ clearedBy: 'octocat', reason, lock: { runId: String(deadRun) } });
    expect(cleared.summary).toContain(reason);
    expect(await names(lockAt)).not.toContain('demo-deploy-lock created');

    // The dead run's task still runs: another task waits for it rather than run beside it.
    const next = await command({ command: 'run', inputs: { task: 'true' } });
    expect(next.code).toBe(1);
    expect(next.log).toContain('demo-run, a one-off container started');
    expect(next.log).toContain('is still running');

    // With no lock held, unlock says so and succeeds.
    const nothing = await command({ command: 'unlock', inputs: { reason } });
    expect(nothing.code, nothing.log).toBe(0);
    expect(nothing.log).toContain('is not held: nothing to clear');
  }, 300_000);

  it('the post step of the killed run stops and removes its task, and only its own', async () => {
    const state = (runId: number) => ({ post: 'true', 'one-off': JSON.stringify({ host: lockAt, name: 'demo-run' }), __run: String(runId) });
    const post = (runId: number) => {
      const { __run, ...saved } = state(runId);
      return command({ command: 'run', runId: __run, inputs: { task: 'true' }, post: { state: saved } });
    };
    const other = await post(9302);
    expect(other.code, other.log).toBe(0);
    expect(other.log).toContain('No demo-run of this run was left');
    expect(await names(lockAt)).toContain('demo-run running');
    const own = await post(deadRun);
    expect(own.code, own.log).toBe(0);
    expect(own.log).toContain(`Stopped and removed demo-run on ${lockAt}, left by this run`);
    expect((await names(lockAt)).filter((n) => n.startsWith('demo-run'))).toEqual([]);
  }, 120_000);

  it('refuses a lock whose run died mid-rollout, naming what it left; a deploy taking it over finishes it', async () => {
    const midRollout = 9401;
    github.runs.set(midRollout, { status: 'in_progress' });
    const first = [...hosts].sort()[0]!;
    const dying = await command({
      command: 'deploy',
      version: 'v23.1.0',
      runId: String(midRollout),
      // Once a master of v23.0.0 has stopped: its server is out of service, its container mid-change.
      onStart: (pid) => killWhen(pid, async () => !(await names(first)).includes('demo running'), 50),
    });
    expect(dying.code).toBeNull();
    github.runs.set(midRollout, { status: 'completed', conclusion: 'cancelled' });
    const refused = await command({ command: 'unlock', inputs: { reason: 'runner lost mid-deploy' } });
    expect(refused.code).toBe(1);
    expect(refused.log).toMatch(/the deploy lock was not cleared: its run ended mid-rollout and left work unfinished \((out of service|mid-change): /);
    expect(refused.log).toContain('lock.takeover: true takes the lock over and finishes that first');
    expect(await names(lockAt)).toContain('demo-deploy-lock created');
    const finished = await command({ command: 'deploy', version: 'v23.1.0', extra: 'lock: { takeover: true }\n' });
    expect(finished.code, finished.log).toBe(0);
    expect(await names(lockAt)).not.toContain('demo-deploy-lock created');
  }, 300_000);
});
