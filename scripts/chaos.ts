// npm run chaos: faults caused for real during a production deploy (2 hosts behind two HAProxy
// peers), under load through both load balancers, one row per fault. After each: servers out of
// rotation, hosts whose roles run different releases, the lock, the time from the fault to the
// action's exit, and whether the next deploy succeeds. Prints figures; asserts nothing.
import type { ActionRun } from '../test/integration/support/action.js';
import { clearHosts, containersOn, runDeploy, type DeployRunOptions } from '../test/integration/support/deploy.js';
import { loadEstate, watchKills } from '../test/integration/support/estate.js';
import { aftermath, reloadLoadBalancers, setLink, strikeAtMasterStop } from '../test/integration/support/faults.js';
import { startGitHub } from '../test/integration/support/github.js';
import { pushTestApp } from '../test/integration/support/images.js';
import { underLoadThrough } from '../test/integration/support/load.js';

const estate = loadEstate();
const production = estate.environments.production;
const hosts = production.hosts.slice(0, 2);
const github = await startGitHub();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const deploy = (version: string, options: Partial<DeployRunOptions> = {}) =>
  runDeploy(estate, { environment: 'production', version, githubUrl: github.url, ...options });

interface Fault {
  name: string;
  /** Starts the deploy with the fault wired in; returns the run and when the fault struck. */
  inject(version: string): Promise<{ runs: ActionRun[]; at: number; exited: number }>;
  /** The host this fault takes away (its servers are HAProxy's to judge). */
  lost?: string;
  /** Undoes the fault itself (a link back up). */
  heal?(): Promise<unknown>;
  /** The post step, run after heal when the fault kept it from running at once. */
  afterHeal?(runs: ActionRun[]): Promise<ActionRun>;
}

/** The deploy, with `strike` called when host 1's master begins to stop. */
async function strikeAtFirstStop(version: string, strike: (pid: number) => unknown) {
  const { run, struckAt, exitedAt } = await strikeAtMasterStop(estate, hosts[0]!, (onStart) => deploy(version, { onStart }), strike);
  return { main: run, at: struckAt, exited: exitedAt };
}

const withPost = async (main: ActionRun, version: string) => [main, await deploy(version, { post: { state: main.state } })];

const faults: Fault[] = [
  {
    name: 'cancel before the first change',
    async inject(version) {
      let at = 0;
      const lockHost = [...hosts].sort()[0]!;
      const main = await deploy(version, {
        onStart: (pid) => {
          const poll = setInterval(async () => {
            if (at || !(await containersOn(estate, lockHost)).some((c) => c.name === 'demo-deploy-lock')) return;
            at = Date.now();
            clearInterval(poll);
            process.kill(pid, 'SIGINT');
          }, 50);
          setTimeout(() => clearInterval(poll), 60_000);
        },
      });
      return { runs: await withPost(main, version), at, exited: Date.now() };
    },
  },
  {
    name: 'cancel mid-start (SIGINT, SIGTERM +7.5 s)',
    async inject(version) {
      const timers: NodeJS.Timeout[] = [];
      const { main, at, exited } = await strikeAtFirstStop(version, (pid) => {
        process.kill(pid, 'SIGINT');
        timers.push(setTimeout(() => process.kill(pid, 'SIGTERM'), 7_500));
      });
      timers.forEach(clearTimeout);
      return { runs: await withPost(main, version), at, exited };
    },
  },
  {
    name: 'SIGKILL mid-start, then the post step',
    async inject(version) {
      const { main, at, exited } = await strikeAtFirstStop(version, (pid) => void setTimeout(() => process.kill(pid, 'SIGKILL'), 300));
      return { runs: await withPost(main, version), at, exited };
    },
  },
  {
    // The runner itself dies: no post step. The next run finds the lock stale (GitHub reports
    // the run ended), takes it over and finishes what it left, from the journal kept in the lock.
    name: 'runner dies mid-rollout (SIGKILL, no post step), next run takes over',
    async inject(version) {
      const runId = 9000 + Math.floor(Math.random() * 1000);
      github.runs.set(runId, { status: 'in_progress' });
      const { main, at, exited } = await strikeAtMasterStop(
        estate,
        hosts[0]!,
        (onStart) => deploy(version, { runId: String(runId), onStart }),
        (pid) => void setTimeout(() => process.kill(pid, 'SIGKILL'), 300),
      ).then(({ run, struckAt, exitedAt }) => ({ main: run, at: struckAt, exited: exitedAt }));
      github.runs.set(runId, { status: 'completed', conclusion: 'failure' });
      return { runs: [main, await deploy(version, { extra: 'lock: { takeover: true }' })], at, exited };
    },
  },
  {
    // A release whose health check fails: host 1's new master is removed and the rollback
    // starts it again on the old release; the job is cancelled half a second into that.
    name: 'cancel during the automatic rollback',
    async inject() {
      const timers: NodeJS.Timeout[] = [];
      let at = 0;
      let stops = 0;
      const watch: { stop(): void }[] = [];
      const main = await deploy(brokenVersion, {
        onStart: (pid) => {
          watch.push(
            watchKills(estate, hosts[0]!, (name) => {
              // The first stop replaces the old master; the second removes the broken one: the rollback begins.
              if (name !== 'demo' || ++stops !== 2) return;
              timers.push(
                setTimeout(() => {
                  at = Date.now();
                  process.kill(pid, 'SIGINT');
                }, 500),
                setTimeout(() => process.kill(pid, 'SIGTERM'), 8_000),
              );
            }),
          );
        },
      }).finally(() => {
        timers.forEach(clearTimeout);
        watch.forEach((w) => w.stop());
      });
      return { runs: await withPost(main, brokenVersion), at, exited: Date.now() };
    },
  },
  {
    name: 'HAProxy reloaded (both) mid-rollout',
    async inject(version) {
      const { main, at, exited } = await strikeAtFirstStop(version, () => reloadLoadBalancers('production'));
      return { runs: await withPost(main, version), at, exited };
    },
  },
  {
    name: 'host 2 cut off mid-rollout',
    lost: hosts[1],
    async inject(version) {
      const { main, at, exited } = await strikeAtFirstStop(version, () => setLink(hosts[1]!, 'down'));
      return { runs: [main], at, exited };
    },
    // The post step runs once the link is back (on a runner it would find the host still gone).
    async afterHeal(runs) {
      return deploy(runs[0]!.outputs.version ?? '', { post: { state: runs[0]!.state } });
    },
    heal: () => setLink(hosts[1]!, 'up').then(() => sleep(3000)),
  },
  {
    name: 'load balancer 2 cut off mid-rollout',
    async inject(version) {
      const { main, at, exited } = await strikeAtFirstStop(version, () => setLink(production.lbs[1]!.address, 'down'));
      return { runs: [main], at, exited };
    },
    async afterHeal(runs) {
      return deploy(runs[0]!.outputs.version ?? '', { post: { state: runs[0]!.state } });
    },
    heal: () => setLink(production.lbs[1]!.address, 'up').then(() => sleep(3000)),
  },
  {
    name: 'a 5 s request during the drains',
    async inject(version) {
      const at = Date.now();
      const slow = fetch(`${production.lb.frontend}/cgi-bin/slow?5`).then((r) => r.status, (e: Error) => e.message);
      await sleep(200);
      const main = await deploy(version);
      const status = await slow;
      slowAnswer = String(status);
      return { runs: await withPost(main, version), at, exited: Date.now() };
    },
  },
  {
    name: 'two deploys at once (lock.wait 120)',
    async inject(version) {
      const at = Date.now();
      const extra = 'lock: { wait: 120 }';
      const runs = await Promise.all([deploy(version, { extra }), sleep(300).then(() => deploy(version, { extra }))]);
      return { runs: [...runs, ...(await Promise.all(runs.map((r) => deploy(version, { post: { state: r.state } }))))], at, exited: Date.now() };
    },
  },
];

interface Row {
  fault: string;
  failed: string;
  outOfRotation: number;
  mixed: number;
  lock: boolean;
  toExit: string;
  codes: string;
  next: string;
}

const stamp = Date.now().toString(36);
const versions = [`v7.0.0-chaos.${stamp}`, `v7.1.0-chaos.${stamp}`];
for (const version of versions) await pushTestApp(estate, { version });
const brokenVersion = `v7.9.0-chaos.${stamp}`;
await pushTestApp(estate, { version: brokenVersion, broken: true });
await clearHosts(estate, production.hosts);
let current = versions[0]!;
const first = await deploy(current);
if (first.code !== 0) throw new Error(`first deploy failed:\n${first.log}`);

const rows: Row[] = [];
let slowAnswer = '';
for (const fault of faults) {
  const next = current === versions[0] ? versions[1]! : versions[0]!;
  const [{ runs, at, exited }, loads] = await underLoadThrough(production.lbs.map((lb) => lb.frontend), () => fault.inject(next));
  await fault.heal?.();
  if (fault.afterHeal) runs.push(await fault.afterHeal(runs));
  const left = await aftermath(estate, 'production', hosts, fault.lost);
  const after = await deploy(next, { extra: 'lock: { takeover: true }' });
  current = after.code === 0 ? next : current;
  rows.push({
    fault: fault.name,
    failed: loads.map((l) => String(l.failed)).join(' / ') + (fault.lost || fault.name.includes('load balancer 2') ? ' (fault)' : ''),
    outOfRotation: left.outOfRotation.length,
    mixed: left.mixed.length,
    lock: left.lockLeft,
    toExit: at ? `${((exited - at) / 1000).toFixed(1)} s` : 'n/a',
    codes: runs.map((r) => String(r.code)).join(', '),
    next: after.code === 0 ? 'yes' : `no: ${after.log.split('\n').filter((l) => l.startsWith('::error::')).join(' ').slice(0, 120)}`,
  });
  console.error(`[chaos] ${fault.name}: done`);
}
await clearHosts(estate, production.hosts);
await github.close();

console.log(`The 5 s request answered: ${slowAnswer}`);
const header = ['fault', 'failed LB1 / LB2', 'out of rotation', 'mixed hosts', 'lock left', 'fault → exit', 'exit codes (main, post)', 'next deploy'];
const table = rows.map((r) => [r.fault, r.failed, String(r.outOfRotation), String(r.mixed), r.lock ? 'yes' : 'no', r.toExit, r.codes, r.next]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
const print = (cells: string[]) => console.log(cells.map((c, i) => c.padEnd(widths[i]!)).join('  '));
console.log('\nFaults during a production deploy (2 hosts, two HAProxy peers, 4 keep-alive clients through each)');
print(header);
for (const row of table) print(row);
