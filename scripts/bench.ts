// npm run bench: a deploy of a new release on 1, 2, 4 and 8 staging hosts (one load balancer)
// and on 2 production hosts (two load balancers, traffic through both), under steady traffic,
// done by the action and, on staging, the seed's way (remove the master, run the new one, rely
// on HAProxy's health checks), side by side, both starting with the new image on the hosts. For
// the action, its pre-flight (its own log line) and the rollout after it, the receipt's own cost
// (time spent reading counters, against the deploy's wall time) and its request count against
// the load generator's over the same window. Then the build, cold and cached (bench-build.ts),
// and the simulated rollout at 10 to 1,000 hosts (simulate.ts). Prints figures; asserts nothing.
// --only=build runs the build part alone, --only=deploy the deploys alone (--hosts=2: at 2
// staging hosts only), --only=receipt the receipt's rows alone (the canary's budget at 8 hosts,
// two load balancers); --simulate the simulation alone (no estate needed). First of all, the
// canary verdict's error rates (simulated, no estate: verdict-rates.ts).
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { clearHosts, runDeploy } from '../test/integration/support/deploy.js';
import { execIn, loadEstate, nodeOf } from '../test/integration/support/estate.js';
import { pushTestApp, type TestAppRelease } from '../test/integration/support/images.js';
import { startGitHub } from '../test/integration/support/github.js';
import type { Receipt } from '../src/receipt/document.js';
import { endedWithin, startLoad, type LoadReport } from '../test/integration/support/load.js';
import { benchBuild, printBuildRows } from './bench-build.js';
import { printSimulation, simulationTable } from './simulate.js';
import { printVerdictRates } from './verdict-rates.js';

const run = promisify(execFile);
if (process.argv.includes('--simulate')) {
  printSimulation(await simulationTable());
  process.exit(0);
}
const estate = loadEstate();
const only = process.argv.find((arg) => arg.startsWith('--only='))?.slice('--only='.length);
if (only !== undefined && !['build', 'deploy', 'receipt'].includes(only)) throw new Error(`--only=${only}: expected --only=build, --only=deploy, --only=receipt or --simulate`);
if (only === undefined) printVerdictRates();
const hostCounts = process.argv.find((arg) => arg.startsWith('--hosts='))?.slice('--hosts='.length).split(',').map(Number);
const ESTATE_DIR = process.env.ESTATE_DIR || '/var/lib/deploy-action-estate';
const staging = estate.environments.staging;
// Deploys keep their GitHub records, as on a runner; this is where they go.
const github = await startGitHub();

/** Successful SSH logins of the deploy user each node's sshd has logged so far. */
function sshLogins(node: string): number {
  const log = readFileSync(join(ESTATE_DIR, node.startsWith('lb-') ? node : `hosts/dae-${node}`, 'sshd.log'), 'utf8');
  return log.split('\n').filter((line) => line.includes('Accepted publickey for deploy')).length;
}

/** Load through every frontend (8 clients in all); the p99 of the 3 s before the work is the baseline. */
async function underLoad<T>(frontends: string[], work: () => Promise<T>): Promise<[T, LoadReport, number, number]> {
  const loads = frontends.map((f) => startLoad({ url: `${f}/`, clients: 8 / frontends.length, ratePerClient: 50, maxSeconds: 600 }));
  await new Promise((r) => setTimeout(r, 3000));
  const baseline = Math.max(...loads.map((l) => l.snapshot().latency.p99));
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, 1000));
  const reports = await Promise.all(loads.map((l) => l.stop()));
  const load: LoadReport = {
    ...reports[0]!,
    sent: reports.reduce((n, r) => n + r.sent, 0),
    failed: reports.reduce((n, r) => n + r.failed, 0),
    failures: reports.flatMap((r) => r.failures),
    ended: reports.flatMap((r) => r.ended),
    latency: {
      p50: Math.max(...reports.map((r) => r.latency.p50)),
      p99: Math.max(...reports.map((r) => r.latency.p99)),
      max: Math.max(...reports.map((r) => r.latency.max)),
    },
  };
  return [result, load, seconds, baseline];
}

async function haproxyUp(server: string): Promise<boolean> {
  const csv = await execIn('lb-staging', 'sh', '-c', `echo "show stat ${staging.lb.backend} 4 -1" | socat stdio ${staging.lb.socket}`);
  return csv.split('\n').some((line) => line.split(',')[1] === server && line.split(',')[17]?.startsWith('UP'));
}

/** The seed's procedure: per host and role, remove the container, run the new one, wait for HAProxy to see it UP. */
async function seedDeploy(hosts: string[], release: TestAppRelease): Promise<void> {
  for (const [i, host] of hosts.entries()) {
    const node = nodeOf(estate, host);
    for (const [name, port, server] of [['demo', 50000, `h${i + 1}-master`], ['demo-backup', 50001, `h${i + 1}-backup`]] as const) {
      await execIn(node, 'docker', 'rm', '-f', name);
      await execIn(node, 'docker', 'run', '-d', '--name', name, '--init', '-p', `${port}:3000`,
        '--label', `deploy-action.version=${release.version}`, release.ref);
      const deadline = Date.now() + 60_000;
      while (!(await haproxyUp(server))) {
        if (Date.now() > deadline) throw new Error(`${server} never came UP`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
}

async function pullEverywhere(hosts: string[], release: TestAppRelease): Promise<void> {
  const { address, username, password } = estate.registry;
  await Promise.all(hosts.map(async (host) => {
    const node = nodeOf(estate, host);
    await run('bash', ['-c', `printf %s "$PASSWORD" | bash test/estate/estate.sh exec ${node} docker login ${address} -u ${username} --password-stdin >/dev/null`], { env: { ...process.env, PASSWORD: password } });
    await execIn(node, 'docker', 'pull', release.ref);
  }));
}

interface Row {
  hosts: number;
  lbs: number;
  way: string;
  wall: number;
  /** The action's own account of the time before its first container change (its log line). */
  preflight?: number;
  perHost: string;
  load: LoadReport;
  p99Before: number;
  ssh: string;
  receipt: string;
}

/** The opt-in: no gap per container, every host at once (the backups and the old containers carry the load). */
const NO_GAP = 'rollout: { procedure: no-gap }\nmax-parallel: 100%';

async function measure(environment: 'staging' | 'production', count: number, releases: TestAppRelease[], seed: boolean, canary = false): Promise<Row[]> {
  const env = estate.environments[environment];
  const hosts = env.hosts.slice(0, count);
  const frontends = env.lbs.map((lb) => lb.frontend);
  const [from, to, seedTo, noGapTo] = releases as [TestAppRelease, TestAppRelease, TestAppRelease, TestAppRelease];
  await clearHosts(estate, env.hosts);
  const first = await runDeploy(estate, { environment, version: from.version, hosts, githubUrl: github.url });
  if (first.code !== 0) throw new Error(`first deploy failed:\n${first.log}`);
  // As for the seed's way below: the image is on the hosts before the measured deploy starts.
  await pullEverywhere(hosts, to);

  const lbNodes = environment === 'staging' ? ['lb-staging'] : ['lb-production', 'lb-production2'];
  const nodes = [...hosts.map((h) => nodeOf(estate, h)), ...lbNodes];
  // The canary's budget judged at every container put in service (no hold): what its readings cost.
  const rows = [await measured(environment, count, hosts, to, canary ? 'canary: { hold: 0 }' : '', canary ? 'deploy-action, canary budget' : 'deploy-action', frontends, nodes)];
  if (seed) {
    // The opt-in from the same state: every host on `to` (slot a), the new image on the hosts.
    await pullEverywhere(hosts, noGapTo);
    rows.push(await measured(environment, count, hosts, noGapTo, NO_GAP, 'deploy-action, no-gap, 100% at once', frontends, nodes));
  }
  await clearHosts(estate, env.hosts);
  if (!seed) return rows;
  // The seed's way starts from the same state: every host on `to`, images already pulled.
  await runDeploy(estate, { environment, version: to.version, hosts, githubUrl: github.url });
  await pullEverywhere(hosts, seedTo);
  const [, seedLoad, seedWall, seedBefore] = await underLoad(frontends, () => seedDeploy(hosts, seedTo));
  await clearHosts(estate, env.hosts);
  return [
    ...rows,
    { hosts: count, lbs: 1, way: 'seed (rm, run, HAProxy checks)', wall: seedWall, perHost: `${(seedWall / count).toFixed(1)} s`, load: seedLoad, p99Before: seedBefore, ssh: 'n/a', receipt: 'n/a' },
  ];
}

/** One deploy by the action under load, with `extra` config lines: its row. */
async function measured(
  environment: 'staging' | 'production',
  count: number,
  hosts: string[],
  to: TestAppRelease,
  extra: string,
  way: string,
  frontends: string[],
  nodes: string[],
): Promise<Row> {
  const before = nodes.map(sshLogins);
  const [deploy, load, wall, p99Before] = await underLoad(frontends, () => runDeploy(estate, { environment, version: to.version, hosts, githubUrl: github.url, extra }));
  if (deploy.code !== 0) throw new Error(`deploy failed:\n${deploy.log}`);
  const logins = nodes.map((node, i) => sshLogins(node) - before[i]!);
  const perHost = [...deploy.summary.matchAll(/<td>([\d.]+) s<\/td>/g)].map((m) => Number(m[1]));
  const receipt = JSON.parse(deploy.outputs.receipt ?? '') as Receipt;
  const [start, end] = [Date.parse(receipt.window.start), Date.parse(receipt.window.end)];
  const counted = endedWithin([load], start, end);
  return {
      hosts: count,
      lbs: nodes.length - count,
      way,
      wall,
      preflight: Number(/Pre-flight took ([\d.]+) s/.exec(deploy.log)?.[1] ?? NaN),
      perHost: `${(perHost.reduce((a, b) => a + b, 0) / perHost.length).toFixed(1)} s`,
      load,
      p99Before,
      ssh: `${logins.slice(0, count).join('/')} (+${logins.slice(count).join('/')} LB)`,
      receipt: `${receipt.cost.seconds.toFixed(2)} s, waited ${receipt.cost.waitedSeconds.toFixed(2)} s (${((100 * receipt.cost.waitedSeconds) / wall).toFixed(1)}%), ${receipt.cost.readings} reads, ${receipt.gaps.length} gaps; ${receipt.totals.requests} vs ${counted}`,
  };
}

async function benchDeploys(): Promise<void> {
  const stamp = Date.now().toString(36);
  const releases = [];
  for (const version of [`v9.0.0-bench.${stamp}`, `v9.1.0-bench.${stamp}`, `v9.2.0-bench.${stamp}`, `v9.3.0-bench.${stamp}`]) {
    releases.push(await pushTestApp(estate, { version }));
  }
  const rows: Row[] = [];
  for (const count of hostCounts ?? [1, 2, 4, 8]) {
    if (staging.hosts.length < count) throw new Error(`the estate has ${staging.hosts.length} staging hosts; run estate.sh up --staging 8`);
    if (only !== 'receipt') rows.push(...(await measure('staging', count, releases, true)));
  }
  if (!hostCounts) {
    rows.push(...(await measure('staging', 8, releases, false, true)));
    rows.push(...(await measure('production', 2, releases, false)));
  }

  const header = ['hosts', 'LBs', 'way', 'wall', 'pre-flight', 'rollout', 'per host', 'requests', 'failed', 'p50', 'p99 before', 'p99', 'max', 'SSH logins per host', 'receipt: reading, waited (% of wall), reads, gaps; requests vs clients'];
  const table = rows.map((r) => [
    String(r.hosts), String(r.lbs), r.way, `${r.wall.toFixed(1)} s`,
    r.preflight === undefined ? 'n/a' : `${r.preflight.toFixed(1)} s`, r.preflight === undefined ? 'n/a' : `${(r.wall - r.preflight).toFixed(1)} s`, r.perHost, String(r.load.sent), String(r.load.failed),
    `${r.load.latency.p50} ms`, `${r.p99Before} ms`, `${r.load.latency.p99} ms`, `${r.load.latency.max} ms`, r.ssh, r.receipt,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const print = (cells: string[]) => console.log(cells.map((c, i) => c.padEnd(widths[i]!)).join('  '));
  console.log('\nDeploy of a new release under steady load (8 keep-alive clients in all, up to 400 req/s; with two load balancers, 4 through each)');
  print(header);
  for (const row of table) print(row);
  for (const r of rows) for (const f of r.load.failures.slice(0, 5)) console.log(`  ${r.hosts} hosts, ${r.way}: ${f}`);
  // Each way's wall time over the seed's, at the same number of hosts, in this run.
  for (const seedRow of rows.filter((r) => r.way.startsWith('seed'))) {
    const ratios = rows.filter((r) => r.hosts === seedRow.hosts && r.lbs === seedRow.lbs && !r.way.startsWith('seed')).map((r) => `${r.way} ${(r.wall / seedRow.wall).toFixed(2)}×`);
    console.log(`against the seed's way at ${seedRow.hosts} hosts: ${ratios.join(', ')}`);
  }
}

if (only !== 'build') await benchDeploys();
if (only !== 'deploy' && only !== 'receipt') printBuildRows(await benchBuild(estate));
await github.close();
if (only === undefined) printSimulation(await simulationTable());
