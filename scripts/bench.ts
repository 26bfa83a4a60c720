// npm run bench: a deploy of a new release on 2 and 4 staging hosts, under steady traffic,
// done by the action and done the seed's way (remove the master, run the new one, rely on
// HAProxy's health checks), side by side. Prints figures; asserts nothing.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { clearHosts, runDeploy } from '../test/integration/support/deploy.js';
import { execIn, loadEstate, nodeOf } from '../test/integration/support/estate.js';
import { pushTestApp, type TestAppRelease } from '../test/integration/support/images.js';
import { startGitHub } from '../test/integration/support/github.js';
import { startLoad, type LoadReport } from '../test/integration/support/load.js';

const run = promisify(execFile);
const estate = loadEstate();
const ESTATE_DIR = process.env.ESTATE_DIR || '/var/lib/deploy-action-estate';
const staging = estate.environments.staging;
// Deploys keep their GitHub records, as on a runner; this is where they go.
const github = await startGitHub();

/** Successful SSH logins of the deploy user each node's sshd has logged so far. */
function sshLogins(node: string): number {
  const log = readFileSync(join(ESTATE_DIR, node.startsWith('lb-') ? node : `hosts/dae-${node}`, 'sshd.log'), 'utf8');
  return log.split('\n').filter((line) => line.includes('Accepted publickey for deploy')).length;
}

async function underLoad<T>(work: () => Promise<T>): Promise<[T, LoadReport, number]> {
  const load = startLoad({ url: `${staging.lb.frontend}/`, clients: 8, ratePerClient: 50, maxSeconds: 600 });
  await new Promise((r) => setTimeout(r, 1000));
  const started = performance.now();
  const result = await work();
  const seconds = (performance.now() - started) / 1000;
  await new Promise((r) => setTimeout(r, 1000));
  return [result, await load.stop(), seconds];
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
  way: string;
  wall: number;
  perHost: string;
  load: LoadReport;
  ssh: string;
}

async function measure(count: number, releases: TestAppRelease[]): Promise<Row[]> {
  const hosts = staging.hosts.slice(0, count);
  const [from, to, seedTo] = releases as [TestAppRelease, TestAppRelease, TestAppRelease];
  await clearHosts(estate, staging.hosts);
  const first = await runDeploy(estate, { environment: 'staging', version: from.version, hosts, githubUrl: github.url });
  if (first.code !== 0) throw new Error(`first deploy failed:\n${first.log}`);

  const nodes = [...hosts.map((h) => nodeOf(estate, h)), 'lb-staging'];
  const before = nodes.map(sshLogins);
  const [deploy, load, wall] = await underLoad(() => runDeploy(estate, { environment: 'staging', version: to.version, hosts, githubUrl: github.url }));
  if (deploy.code !== 0) throw new Error(`deploy failed:\n${deploy.log}`);
  const logins = nodes.map((node, i) => sshLogins(node) - before[i]!);
  const perHost = [...deploy.summary.matchAll(/<td>([\d.]+) s<\/td>/g)].map((m) => Number(m[1]));

  // The seed's way starts from the same state: every host on `to`, images already pulled.
  await pullEverywhere(hosts, seedTo);
  const [, seedLoad, seedWall] = await underLoad(() => seedDeploy(hosts, seedTo));
  return [
    {
      hosts: count,
      way: 'deploy-action',
      wall,
      perHost: `${(perHost.reduce((a, b) => a + b, 0) / perHost.length).toFixed(1)} s`,
      load,
      ssh: `${logins.slice(0, -1).join('/')} (+${logins.at(-1)} LB)`,
    },
    { hosts: count, way: 'seed (rm, run, HAProxy checks)', wall: seedWall, perHost: `${(seedWall / count).toFixed(1)} s`, load: seedLoad, ssh: 'n/a' },
  ];
}

const stamp = Date.now().toString(36);
const releases = [];
for (const version of [`v9.0.0-bench.${stamp}`, `v9.1.0-bench.${stamp}`, `v9.2.0-bench.${stamp}`]) {
  releases.push(await pushTestApp(estate, { version }));
}
const rows: Row[] = [];
for (const count of [2, 4]) {
  if (staging.hosts.length < count) throw new Error(`the estate has ${staging.hosts.length} staging hosts; run estate.sh up --staging 4`);
  rows.push(...(await measure(count, releases)));
}
await clearHosts(estate, staging.hosts);
await github.close();

const header = ['hosts', 'way', 'wall', 'per host', 'requests', 'failed', 'p50', 'p99', 'max', 'SSH logins per host'];
const table = rows.map((r) => [
  String(r.hosts), r.way, `${r.wall.toFixed(1)} s`, r.perHost, String(r.load.sent), String(r.load.failed),
  `${r.load.latency.p50} ms`, `${r.load.latency.p99} ms`, `${r.load.latency.max} ms`, r.ssh,
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
const print = (cells: string[]) => console.log(cells.map((c, i) => c.padEnd(widths[i]!)).join('  '));
console.log('\nDeploy of a new release under steady load (8 keep-alive clients, up to 400 req/s)');
print(header);
for (const row of table) print(row);
for (const r of rows) for (const f of r.load.failures.slice(0, 5)) console.log(`  ${r.hosts} hosts, ${r.way}: ${f}`);
