// A worker role on the estate's staging, run as the runner runs it, under steady load through
// HAProxy while jobs keep arriving. The worker (test/app/worker.sh) takes jobs from a file queue
// in a directory every host mounts (the estate's hosts share one file system, as workers share a
// queue), logs each job taken and done, and finishes the job in hand on SIGTERM (a job held
// open until the test sees the SIGTERM arrive proves it). Then: a web
// release that fails its health leaves the workers where they were; a worker release that never
// becomes ready rolls the web role back too; a cancel and a kill during a worker's move end clean.
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearHosts, containersOn, runDeploy, versionsOn, type DeployRunOptions } from './support/deploy.js';
import { loadEstate, type Estate } from './support/estate.js';
import { pushTestApp } from './support/images.js';
import { underLoad as underLoadOf } from './support/load.js';

const QUEUE = '/var/lib/deploy-action-roles-test';
let estate: Estate;
let repository: string;
let hosts: string[];
let frontend: string;

const roles = 'roles: { worker: { command: [/bin/worker], count: 2, stop-timeout: 30, env: { JOB_SECONDS: "0.5" }, ready: { running: 2 } } }\n';
function deploy(version: string, options: Partial<DeployRunOptions> = {}) {
  return runDeploy(estate, {
    environment: 'staging',
    version,
    repository,
    extra: `${roles}`,
    bothEnvironments: { staging: `container: { volumes: ["${QUEUE}:/queue"] }\n`, production: '' },
    ...options,
  });
}
const underLoad = <T>(work: () => Promise<T>) => underLoadOf(`${frontend}/`, work);

/** The role containers of every staging host: name, state, release (and id, to tell a restored one). */
async function workers(): Promise<string[]> {
  const out: string[] = [];
  for (const host of hosts) {
    for (const c of await containersOn(estate, host)) if (c.name.startsWith('demo-worker')) out.push(`${host} ${c.name} ${c.state} ${c.version} ${c.id.slice(0, 12)}`);
  }
  return out;
}
const versionsOfWorkers = async () => (await workers()).map((w) => w.split(' ').slice(0, 4).join(' '));

/** Puts jobs in the queue, one every 400 ms (four workers take up to 8 a second), until stopped: each written aside, then renamed in. */
function produce(prefix: string): { stop: () => string[] } {
  const made: string[] = [];
  const timer = setInterval(() => {
    const job = `${prefix}-${String(made.length).padStart(4, '0')}`;
    writeFileSync(`${QUEUE}/incoming-${job}`, job);
    renameSync(`${QUEUE}/incoming-${job}`, `${QUEUE}/todo/${job}`);
    made.push(job);
  }, 400);
  return {
    stop: () => {
      clearInterval(timer);
      return made;
    },
  };
}

/** Waits (without a time limit of its own: the test's applies) until the workers have taken and finished every job. */
async function drained(): Promise<void> {
  await until(() => readdirSync(`${QUEUE}/todo`).length === 0 && readdirSync(`${QUEUE}/taken`).length === 0);
}

/** Each job's lines in the queue's log: "took JOB VERSION CONTAINER", "done JOB ...". */
function ledger(): Map<string, string[]> {
  const byJob = new Map<string, string[]>();
  for (const line of readFileSync(`${QUEUE}/log`, 'utf8').split('\n').filter(Boolean)) {
    const [what, job] = line.split(' ') as [string, string];
    byJob.set(job, [...(byJob.get(job) ?? []), what]);
  }
  return byJob;
}

/** Every job made was taken once and done once, and is in done/. */
function expectNoJobLost(made: string[]): void {
  const book = ledger();
  const wrong = made.filter((job) => (book.get(job) ?? []).join(',') !== 'took,done' || !existsSync(`${QUEUE}/done/${job}`));
  expect(wrong.map((job) => `${job}: ${(book.get(job) ?? []).join(',') || 'never taken'}`)).toEqual([]);
}

beforeAll(async () => {
  estate = loadEstate();
  repository = `${estate.registry.address}/clay/roles-test`;
  hosts = estate.environments.staging.hosts.slice(0, 2);
  frontend = estate.environments.staging.lb.frontend;
  for (const version of ['v25.0.0', 'v25.1.0']) await pushTestApp(estate, { repository, version });
  await pushTestApp(estate, { repository, version: 'v25.2.0', broken: true });
  await pushTestApp(estate, { repository, version: 'v25.3.0', workerFails: true });
  await pushTestApp(estate, { repository, version: 'v25.4.0' });
  await clearHosts(estate, hosts);
  rmSync(QUEUE, { recursive: true, force: true });
  for (const dir of ['todo', 'taken', 'done']) mkdirSync(`${QUEUE}/${dir}`, { recursive: true });
  writeFileSync(`${QUEUE}/log`, '');
  const first = await deploy('v25.0.0');
  if (first.code !== 0) throw new Error(first.log);
}, 900_000);

afterAll(async () => {
  if (estate) await clearHosts(estate, hosts);
  rmSync(QUEUE, { recursive: true, force: true });
}, 120_000);

describe('roles: a worker role', () => {
  it('the first deploy started two workers on each host, labelled with the release; status, plan and check show them', async () => {
    expect(await versionsOfWorkers()).toEqual(hosts.flatMap((h) => [`${h} demo-worker-1 running v25.0.0`, `${h} demo-worker-2 running v25.0.0`]));
    const status = await deploy('v25.0.0', { command: 'status' });
    expect(status.code, status.log).toBe(0);
    const rows = status.outputs.status!.split('\n').filter((line) => / demo-worker-\d /.test(line)).map((line) => line.split(/\s+/).slice(0, 4).join(' '));
    expect(rows).toEqual(hosts.flatMap((h) => [`${h} worker demo-worker-1 v25.0.0`, `${h} worker demo-worker-2 v25.0.0`]));
    const plan = await deploy('v25.1.0', { command: 'plan' });
    expect(plan.code, plan.log).toBe(0);
    expect(plan.outputs.plan).toContain('Roles, once every web batch is proven:');
    expect(plan.outputs.plan).toContain('    - demo-worker-2: v25.0.0 → v25.1.0');
    const logs = await deploy('v25.0.0', { command: 'logs', inputs: { lines: '5' } });
    expect(logs.code, logs.log).toBe(0);
    for (const host of hosts) expect(logs.log).toContain(`::group::${host} worker: demo-worker-2 (v25.0.0)`);
    expect(logs.log).toContain('worker v25.0.0 on ');
    const check = await deploy('v25.0.0', { command: 'check' });
    expect(check.log).toContain('role worker');
    expect(check.log).toContain('2 wanted; running: demo-worker-1 v25.0.0, demo-worker-2 v25.0.0');
  }, 300_000);

  it('moves with the release after the web role, under load, loses no job, leaves nothing set aside', async () => {
    const jobs = produce('upgrade');
    const [run, load] = await underLoad(() => deploy('v25.1.0'));
    const made = jobs.stop();
    expect(run.code, run.log).toBe(0);
    expect(load.failures).toEqual([]);
    expect(await versionsOfWorkers()).toEqual(hosts.flatMap((h) => [`${h} demo-worker-1 running v25.1.0`, `${h} demo-worker-2 running v25.1.0`]));
    // The workers moved after the last web container was in service.
    expect(run.log.indexOf('Move the roles on ')).toBeGreaterThan(run.log.lastIndexOf('Deploy v25.1.0 to '));
    await drained();
    expectNoJobLost(made);
    // Jobs were taken by both releases: the deploy moved the workers while jobs arrived.
    const takenBy = new Map<string, number>();
    for (const line of readFileSync(`${QUEUE}/log`, 'utf8').split('\n').filter((l) => l.startsWith('took upgrade-'))) takenBy.set(line.split(' ')[2]!, (takenBy.get(line.split(' ')[2]!) ?? 0) + 1);
    expect([...takenBy.keys()].sort()).toEqual(['v25.0.0', 'v25.1.0']);
    console.log(`roles: ${made.length} jobs enqueued during the deploy, taken by ${[...takenBy].map(([v, n]) => `${v}: ${n}`).join(', ')}, each taken and done exactly once; ${load.sent} requests through HAProxy, ${load.failed} failed`);
    expect(run.log).toMatch(/demo-worker-1: v25\.0\.0 → v25\.1\.0/);
  }, 600_000);

  it('a web release that fails its health is rolled back before any worker moves: the workers keep running as they were', async () => {
    const before = await workers();
    const jobs = produce('webfails');
    const [run, load] = await underLoad(() => deploy('v25.2.0'));
    const made = jobs.stop();
    expect(run.code).toBe(1);
    expect(load.failures).toEqual([]);
    expect(run.log).not.toContain('Move the roles on ');
    expect(await workers()).toEqual(before);
    expect(await versionsOn(estate, hosts)).toEqual(Object.fromEntries(hosts.map((h) => [h, { demo: 'v25.1.0 running', 'demo-backup': 'v25.1.0 running' }])));
    await drained();
    expectNoJobLost(made);
  }, 600_000);

  it('a worker release that never becomes ready puts the workers back (the very containers) and rolls the web role back', async () => {
    const before = await workers();
    const jobs = produce('workerfails');
    const [run, load] = await underLoad(() => deploy('v25.3.0'));
    const made = jobs.stop();
    expect(run.code).toBe(1);
    expect(load.failures).toEqual([]);
    expect(run.log).toMatch(/demo-worker-1 did not become ready: (restarted|exited)/);
    expect(run.log).toContain('cannot start (WORKER_FAILS=1)');
    expect(await workers()).toEqual(before);
    expect(await versionsOn(estate, hosts)).toEqual(Object.fromEntries(hosts.map((h) => [h, { demo: 'v25.1.0 running', 'demo-backup': 'v25.1.0 running' }])));
    await drained();
    expectNoJobLost(made);
  }, 600_000);

  it('a cancel during a worker\'s move ends clean: the unproven worker put back, nothing set aside, no lock', async () => {
    const jobs = produce('cancel');
    const cancelled = await deploy('v25.4.0', { onStart: (pid) => whenWorkerMoves(() => process.kill(pid, 'SIGINT')) });
    expect(cancelled.code).toBe(1);
    const post = await deploy('v25.4.0', { post: { state: cancelled.state } });
    expect(post.code, post.log).toBe(0);
    const made = jobs.stop();
    const now = await versionsOfWorkers();
    expect(now.every((w) => / running v25\.(1|4)\.0$/.test(w)), now.join('\n')).toBe(true);
    expect(now).toHaveLength(4);
    expect(await leftovers()).toEqual([]);
    await drained();
    expectNoJobLost(made);
  }, 600_000);

  it('a kill during a worker\'s move: the post step puts the worker it set aside back, releases the lock; the next deploy goes through', async () => {
    const jobs = produce('kill');
    const runId = '25252';
    const killed = await deploy('v25.0.0', { runId, onStart: (pid) => whenWorkerMoves(() => process.kill(pid, 'SIGKILL')) });
    expect(killed.code).toBeNull();
    const post = await deploy('v25.0.0', { runId, post: { state: killed.state } });
    expect(post.code, post.log).toBe(0);
    expect(post.log).toMatch(/demo-worker-\d: put back v25\.\d\.0 that a run cut short had set aside/);
    const now = await versionsOfWorkers();
    expect(now.every((w) => w.includes(' running ')), now.join('\n')).toBe(true);
    expect(now).toHaveLength(4);
    expect(await leftovers()).toEqual([]);
    const next = await deploy('v25.4.0');
    expect(next.code, next.log).toBe(0);
    const made = jobs.stop();
    expect(await versionsOfWorkers()).toEqual(hosts.flatMap((h) => [`${h} demo-worker-1 running v25.4.0`, `${h} demo-worker-2 running v25.4.0`]));
    await drained();
    expectNoJobLost(made);
  }, 900_000);

  it('a worker that gets SIGTERM with a job in hand finishes it, and only then is replaced', async () => {
    // A job that holds its worker until the gate opens: taken before the deploy starts.
    writeFileSync(`${QUEUE}/incoming-held`, 'gate:gate-open');
    renameSync(`${QUEUE}/incoming-held`, `${QUEUE}/todo/held`);
    await until(() => readdirSync(`${QUEUE}/taken`).some((f) => f.startsWith('held.')));
    const holder = readdirSync(`${QUEUE}/taken`).find((f) => f.startsWith('held.'))!.slice('held.'.length);
    const deploying = deploy('v25.1.0');
    // The worker holding it has taken SIGTERM (its trap logged it): now the job may end.
    const termed = until(() => readFileSync(`${QUEUE}/log`, 'utf8').includes(`term ${holder} `)).then(() => 'term');
    expect(await Promise.race([termed, deploying.then((r) => `the deploy ended first: ${r.log.slice(-3000)}`)])).toBe('term');
    expect(existsSync(`${QUEUE}/done/held`)).toBe(false);
    writeFileSync(`${QUEUE}/gate-open`, '');
    const run = await deploying;
    expect(run.code, run.log).toBe(0);
    const lines = readFileSync(`${QUEUE}/log`, 'utf8').split('\n');
    const took = lines.findIndex((l) => l.startsWith('took held v25.4.0 ') && l.endsWith(holder));
    const term = lines.findIndex((l) => l.startsWith(`term ${holder} v25.4.0`));
    const done = lines.findIndex((l) => l.startsWith('done held v25.4.0 ') && l.endsWith(holder));
    expect([took >= 0, term > took, done > term]).toEqual([true, true, true]);
    expect(existsSync(`${QUEUE}/done/held`)).toBe(true);
    expect(await versionsOfWorkers()).toEqual(hosts.flatMap((h) => [`${h} demo-worker-1 running v25.1.0`, `${h} demo-worker-2 running v25.1.0`]));
  }, 600_000);
});

/** Resolves once `test` holds, polling every 100 ms (the test's own time limit applies). */
async function until(test: () => boolean | Promise<boolean>): Promise<void> {
  while (!(await test())) await new Promise((done) => setTimeout(done, 100));
}

/** Containers set aside and the lock, on every staging host. */
async function leftovers(): Promise<string[]> {
  const out: string[] = [];
  for (const host of hosts) for (const c of await containersOn(estate, host)) if (c.name.endsWith('-previous') || c.name === 'demo-deploy-lock') out.push(`${host} ${c.name}`);
  return out;
}

/** Calls `then` once a worker of the staging hosts is set aside (stopped, renamed: mid-move). */
function whenWorkerMoves(then: () => void): void {
  let done = false;
  const poll = setInterval(async () => {
    if (done) return;
    for (const host of hosts) {
      if ((await containersOn(estate, host)).some((c) => c.name.startsWith('demo-worker') && c.name.endsWith('-previous'))) {
        if (done) return;
        done = true;
        clearInterval(poll);
        then();
        return;
      }
    }
  }, 100);
}
