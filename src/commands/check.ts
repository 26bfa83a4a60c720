// command: check — every prerequisite of a deploy to one environment, read-only: each host, each
// load balancer and GitHub, one row per check, passed or failed, and for a failure the fix (the
// command to run or the config line to add). It opens its own connection to each host and load
// balancer, so one that cannot be reached is a row, not the end of the report. Nothing here
// writes: engine reads, a registry manifest read, TCP connects, HAProxy `show` commands.
import * as core from '@actions/core';
import semver from 'semver';
import type { Config, EnvironmentConfig } from '../config/schema.js';
import { probeAddress } from '../drivers/bind.js';
import { DockerHost } from '../drivers/docker/host.js';
import type { GitHubApi } from '../drivers/github.js';
import { connectLoadBalancer, type BackendServer, type HaproxyRuntime } from '../drivers/haproxy.js';
import { HostKeyError, SshConnection } from '../drivers/ssh.js';
import type { Inputs } from '../inputs.js';
import { splitRepository } from '../release/image.js';
import { htmlText, writeSummary } from '../report/summary.js';
import { textTable } from '../report/table.js';
import { infoUntrusted } from '../report/untrusted.js';
import { describeLock, lockHost } from '../rollout/lock.js';
import type { RegistryCredentials, Role, RoleContainer } from '../rollout/ports.js';
import { lockName } from '../rollout/spec.js';
import { selectEnvironment } from '../config/environment.js';
import { gitHub } from '../pipeline/gates.js';
import { requireSshInputs, sshOptions, steppedAside, steppedAsideFix } from '../pipeline/preflight.js';
import { describeAbsent, locateServers } from '../drivers/load-balancers.js';
import { spareServerLine } from './haproxy-config.js';

/** The oldest engine the action is tested against (Debian 12's docker.io). */
export const MIN_ENGINE = '20.10.0';
/** Free space asked for beside twice the app's largest image on the host: a release's layers plus room. */
export const MIN_FREE_BYTES = 2 ** 30;

const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

export interface CheckRow {
  where: string;
  check: string;
  /** warn: worth knowing, does not block a deploy. */
  verdict: 'pass' | 'fail' | 'warn';
  detail: string;
  /** For a failure or warning: the command to run or the config line to write. */
  fix: string;
}

export class CheckFailed extends Error {
  override name = 'CheckFailed';
}

const pass = (where: string, check: string, detail: string): CheckRow => ({ where, check, verdict: 'pass', detail, fix: '' });
const fail = (where: string, check: string, detail: string, fix: string): CheckRow => ({ where, check, verdict: 'fail', detail, fix });
const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Connects as a deploy would; a failure is the SSH row with its fix. */
async function open<T>(address: string, env: EnvironmentConfig, connecting: Promise<T>): Promise<{ rows: CheckRow[]; connection?: T }> {
  const login = `${env.ssh.user}@${address}:${env.ssh.port}`;
  try {
    const connection = await connecting;
    return { rows: [pass(address, 'SSH', login), pass(address, 'host key in ssh-known-hosts', 'verified')], connection };
  } catch (error) {
    if (error instanceof HostKeyError) {
      return {
        rows: [
          fail(address, 'host key in ssh-known-hosts', message(error),
            `run ssh-keyscan -p ${env.ssh.port} -t ed25519 ${address}, compare its fingerprint (ssh-keygen -lf -) with ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub run on the host itself, then add the line to the ssh-known-hosts input (DEPLOY_KNOWN_HOSTS)`),
        ],
      };
    }
    return {
      rows: [
        fail(address, 'SSH', `${login}: ${message(error)}`,
          `sshd must listen on ${address}:${env.ssh.port} (ssh.port), the user ${env.ssh.user} exist (ssh.user), its ~/.ssh/authorized_keys hold the public key of ssh-private-key, and AllowTcpForwarding / AllowStreamLocalForwarding be yes in sshd_config`),
      ],
    };
  }
}

/** Each host: Docker access, engine version, registry, ports, disk space. */
export async function checkHost(
  host: DockerHost,
  config: Config,
  env: EnvironmentConfig,
  auth: RegistryCredentials | undefined,
  freeBytes: (path: string) => Promise<number>,
): Promise<CheckRow[]> {
  const where = host.host;
  const user = env.ssh.user;
  try {
    await host.ping();
  } catch (error) {
    return [
      fail(where, 'Docker Engine access', message(error),
        `on ${where}: sudo usermod -aG docker ${user} (the socket /var/run/docker.sock must be group docker, mode 660); this gives ${user} root on the host, see Security model`),
    ];
  }
  const rows = [pass(where, 'Docker Engine access', `${user} reaches /var/run/docker.sock`)];
  const { version, apiVersion } = await host.version();
  const known = semver.coerce(version);
  rows.push(
    known && semver.gte(known, MIN_ENGINE)
      ? pass(where, 'engine version', `${version} (API ${apiVersion})`)
      : fail(where, 'engine version', `${version} (API ${apiVersion})`, `upgrade Docker Engine on ${where} to ${MIN_ENGINE} or later`),
  );
  try {
    // A manifest read, nothing pulled: the same request a deploy's pre-flight makes.
    const latest = await host.resolveDigest(config.image, 'latest', auth);
    rows.push(pass(where, 'registry', `${config.image} reachable from ${where}, ${auth ? 'credentials accepted' : 'no credentials given'} (latest: ${latest ? 'present' : 'not pushed yet'})`));
  } catch (error) {
    const registry = splitRepository(config.image).registry;
    rows.push(
      fail(where, 'registry', message(error),
        `check registry-username / registry-password (a pull token for ${registry}), that ${where} reaches ${registry}, and for a registry over plain HTTP its "insecure-registries" entry in /etc/docker/daemon.json`),
    );
  }
  const address = probeAddress(env.container.bind === 'host' ? where : env.container.bind);
  const ours = [config.app, `${config.app}-backup`];
  for (const role of ['master', 'backup'] as Role[]) {
    const port = env.ports[role];
    const use = await host.portUse(port, address);
    const others = use.containers.filter((name) => !ours.includes(name));
    if (others.length > 0) {
      rows.push(fail(where, `${role} port ${port}`, `published by ${others.join(', ')}`, `on ${where}: docker rm -f ${others.join(' ')}, or choose another port: ports: { ${role}: PORT }`));
    } else if (use.listening && use.containers.length === 0) {
      rows.push(fail(where, `${role} port ${port}`, `a process that is not a container listens on ${address}:${port}`, `on ${where}: find it with sudo ss -ltnp 'sport = :${port}' and stop it, or choose another port: ports: { ${role}: PORT }`));
    } else {
      rows.push(pass(where, `${role} port ${port}`, use.containers.length > 0 ? `held by ${use.containers.join(', ')}` : 'free'));
    }
  }
  rows.push(await checkDisk(host, config, freeBytes));
  rows.push(...checkRoles(where, config.app, env, await host.roleContainers(config.app)));
  if (env.rollout.procedure === 'no-gap') {
    for (const left of await steppedAside(host, config.app)) {
      rows.push(fail(where, `${left.role} switch finished`, `${left.name} exists (${left.state}): a no-gap deploy was cut short while it switched the ${left.role}; the next deploy stops on it`, steppedAsideFix(config.app, left)));
    }
  }
  return rows;
}

/**
 * The role containers (workers) a host holds against the config: a container set aside by a
 * run cut short (the next deploy or its post step puts it back), a role no longer configured
 * (left alone by deploys). Each configured role of the host says what runs of it now.
 */
export function checkRoles(where: string, app: string, env: EnvironmentConfig, found: RoleContainer[]): CheckRow[] {
  const rows: CheckRow[] = [];
  for (const role of env.roles.filter((r) => r.hosts.includes(where))) {
    const mine = found.filter((c) => c.role === role.name && !c.name.endsWith('-previous'));
    const running = mine.filter((c) => c.running).map((c) => `${c.name} ${c.release?.version ?? 'unknown'}`);
    rows.push(pass(where, `role ${role.name}`, `${role.count} wanted; running: ${running.join(', ') || 'none yet (the next deploy starts them)'}`));
  }
  const aside = found.filter((c) => c.name.endsWith('-previous')).map((c) => c.name);
  if (aside.length > 0) {
    rows.push({ where, check: 'role containers set aside', verdict: 'warn', detail: `${aside.join(', ')}: left by a run cut short`, fix: 'the next deploy puts each back before it moves the roles (or rename it back by hand: docker rename NAME-previous NAME, then docker start NAME)' });
  }
  const unknown = [...new Set(found.filter((c) => !env.roles.some((r) => r.name === c.role)).map((c) => c.role))];
  if (unknown.length > 0) {
    rows.push({ where, check: 'roles not configured', verdict: 'warn', detail: `containers of ${unknown.join(', ')} run here, a role no longer in roles`, fix: `deploys leave them alone: remove them by hand (docker rm -f ${app}-ROLE-N) once they are not wanted` });
  }
  return rows;
}

/** Room for the next image where the engine keeps images: twice the app's largest image there, and at least MIN_FREE_BYTES. */
async function checkDisk(host: DockerHost, config: Config, freeBytes: (path: string) => Promise<number>): Promise<CheckRow> {
  const where = host.host;
  const { root, largestImage } = await host.storage(config.image);
  const need = Math.max(MIN_FREE_BYTES, 2 * largestImage);
  let free: number;
  try {
    free = await freeBytes(root);
  } catch (error) {
    return { where, check: 'disk space', verdict: 'warn', detail: `not read over SFTP (${message(error)})`, fix: `check df -h ${root} on ${where} by hand, or enable Subsystem sftp in sshd_config` };
  }
  const detail = `${gib(free)} free in ${root}, need ${gib(need)}${largestImage ? ` (largest image of ${config.image}: ${gib(largestImage)})` : ''}`;
  return free >= need
    ? pass(where, 'disk space', detail)
    : fail(where, 'disk space', detail, `on ${where}: docker image prune -a removes images no container uses; or free space in ${root}; retain-images keeps fewer releases`);
}

/** The deploy lock: held by a live run, the next deploy waits (lock.wait) or stops. */
async function checkLock(host: DockerHost, config: Config): Promise<CheckRow> {
  const lock = await host.readLock(lockName(config.app));
  if (!lock) return pass(host.host, 'deploy lock', 'not held');
  return {
    where: host.host,
    check: 'deploy lock',
    verdict: 'warn',
    detail: `held by ${describeLock(lock)}`,
    fix: 'wait for that run; if it has ended, the next deploy takes it over with lock: { takeover: true }',
  };
}

export type BackendReader = Pick<HaproxyRuntime, 'backend' | 'cliLevel' | 'servers' | 'findServer' | 'findServers'>;

/** One load balancer: the admin socket's level, the backend, a master and a backup server for every host. */
export async function checkLoadBalancer(where: string, runtime: BackendReader, env: EnvironmentConfig, socket: string): Promise<CheckRow[]> {
  const group = `stats socket ${socket} mode 660 group haproxy level admin`;
  let level: string;
  try {
    level = await runtime.cliLevel();
  } catch (error) {
    return [fail(where, 'admin socket', message(error), `in haproxy.cfg, global: ${group}; then sudo usermod -aG haproxy ${env.ssh.user}, sudo chgrp haproxy ${socket} (a reload keeps the socket's old group) and reload HAProxy`)];
  }
  const rows = [
    level === 'admin'
      ? pass(where, 'admin socket at level admin', `${socket}: level admin`)
      : fail(where, 'admin socket at level admin', `${socket}: level ${level}; a deploy cannot drain or restore servers`, `in haproxy.cfg, global: ${group}; then reload HAProxy`),
  ];
  const servers = await runtime.servers();
  if (!servers) {
    rows.push(fail(where, `backend ${runtime.backend}`, 'no such backend', `add backend ${runtime.backend} to haproxy.cfg (command: haproxy-config prints one that fits) and reload HAProxy, or set haproxy.backend`));
    return rows;
  }
  rows.push(pass(where, `backend ${runtime.backend}`, `${servers.length} servers`));
  const counters = 'HTTP counters (receipt, canary)';
  if (servers.every((s) => s.countsRequests)) {
    rows.push(pass(where, counters, 'show stat counts every server\'s requests and answers'));
  } else if (env.canary) {
    rows.push(fail(where, counters, `backend ${runtime.backend} counts no HTTP requests (mode tcp): the canary would judge nothing`, `mode http in backend ${runtime.backend} (command: haproxy-config prints one), or remove the canary section`));
  } else {
    rows.push(pass(where, counters, 'none (mode tcp): the receipt will show no requests'));
  }
  for (const host of env.hosts) {
    for (const role of ['master', 'backup'] as Role[]) {
      const port = env.ports[role];
      const check = `${role} server for ${host}:${port}`;
      const name = await runtime.findServer(host, port);
      const server = servers.find((s) => s.name === name);
      const line = `server ${host.replace(/[^A-Za-z0-9_.-]/g, '_')}-${role} ${host}:${port} check${role === 'backup' ? ' backup' : ''}`;
      if (!server) {
        rows.push(fail(where, check, `backend ${runtime.backend} has no server at ${host}:${port}`, `add to backend ${runtime.backend}: ${line}; reload HAProxy`));
        continue;
      }
      const problems: [string, string][] = [];
      if (server.backup !== (role === 'backup')) {
        problems.push(role === 'backup'
          ? ['not flagged backup: it takes traffic while the masters serve', `add backup to its line: ${line}`]
          : ['flagged backup, but it is the master', `remove backup from its line: ${line}`]);
      }
      if (!server.checkStatus && server.status.startsWith('MAINT')) {
        // HAProxy runs no check on a server in maintenance (no-gap's idle slot, an operator's
        // hold): there is nothing to judge until it leaves MAINT.
      } else if (!server.checkStatus || server.status === 'no check') {
        problems.push(['no health check', `add check to its line (${line}) and option httpchk GET ${env.health.path} to the backend`]);
      } else if (server.checkStatus.startsWith('L4OK')) {
        problems.push(['a TCP check only, which Docker\'s proxy passes for a dead app', `in backend ${runtime.backend}: option httpchk GET ${env.health.path} and http-check expect status 200`]);
      }
      const detail = `${server.name}${server.backup ? ' (backup)' : ''}: ${server.status}, check ${server.checkStatus || 'none'}`;
      rows.push(problems.length === 0
        ? pass(where, check, detail)
        : fail(where, check, `${detail}: ${problems.map(([what]) => what).join('; ')}`, problems.map(([, fix]) => fix).join('; ')));
    }
  }
  if (env.rollout.procedure === 'no-gap') rows.push(...(await checkSpares(where, runtime, env, servers)));
  return rows;
}

/** rollout.procedure no-gap: a spare server per role and host, found as pre-flight finds it; a missing one stops a deploy. */
async function checkSpares(where: string, runtime: BackendReader, env: EnvironmentConfig, servers: BackendServer[]): Promise<CheckRow[]> {
  const sparePorts = { master: env.ports['master-spare'], backup: env.ports['backup-spare'] };
  const { names, absent } = await locateServers([{ host: where, runtime }], env.hosts, env.ports, sparePorts);
  return env.hosts.flatMap((host) =>
    (['master', 'backup'] as Role[]).map((role) => {
      const key = `${host}:${sparePorts[role]}`;
      const check = `${role} spare server for ${key}`;
      const missing = absent.find((a) => a.spare && a.address === host && a.role === role);
      if (missing) {
        return fail(where, check, `${describeAbsent(missing)}: rollout.procedure no-gap needs it`, `add to backend ${runtime.backend}: ${spareServerLine(env, host, role)}; reload HAProxy`);
      }
      const server = servers.find((s) => s.name === names.get(key)?.get(where));
      return pass(where, check, server ? `${server.name}: ${server.status}` : key);
    }),
  );
}

/** GitHub: the environment exists, and has required reviewers where require-approval says so. */
export async function checkGitHub(github: GitHubApi | undefined, env: EnvironmentConfig): Promise<CheckRow[]> {
  const where = 'GitHub';
  const create = `Settings → Environments → New environment → ${env.name}`;
  if (!github) {
    const row = { where, check: `environment ${env.name}`, detail: 'not checked: no github-token or no GITHUB_REPOSITORY', fix: 'github-token: ${{ github.token }} (the default) in a workflow run' };
    return [env.requireApproval ? { ...row, verdict: 'fail' } : { ...row, verdict: 'warn' }];
  }
  let found: { exists: boolean; reviewers: number; otherRules?: string[] };
  try {
    found = await github.environmentReviewers(env.name);
  } catch (error) {
    return [fail(where, `environment ${env.name}`, message(error), 'give the job permissions: actions: read')];
  }
  if (!found.exists) return [fail(where, `environment ${env.name}`, 'does not exist', `${create}, and bind the deploy job to it (environment: ${env.name})`)];
  const rows = [pass(where, `environment ${env.name}`, 'exists')];
  if (env.requireApproval) {
    rows.push(found.reviewers > 0
      ? pass(where, 'required reviewers', `${found.reviewers} (require-approval: true)`)
      : fail(
          where,
          'required reviewers',
          `none${found.otherRules ? ` (protected by ${found.otherRules.join(' and ')}, which records no approval)` : ''}, and require-approval is true: every deploy would be refused`,
          `Settings → Environments → ${env.name} → Required reviewers: add at least one${found.otherRules ? `; or set environments.${env.name}.require-approval: false to rely on those rules alone` : ''}`,
        ));
  }
  return rows;
}

export async function runChecks(inputs: Inputs, config: Config, env: EnvironmentConfig, github: GitHubApi | undefined): Promise<CheckRow[]> {
  requireSshInputs(inputs);
  const { username, password } = inputs.registry;
  const auth = username ? { username, password, serveraddress: splitRepository(config.image).registry } : undefined;
  const lockAt = lockHost(env.hosts);
  const hosts = env.hosts.map(async (address) => {
    const { rows, connection: ssh } = await open(address, env, SshConnection.connect(sshOptions(inputs, env, address)));
    if (!ssh) return rows;
    const connection = new DockerHost(ssh);
    try {
      const hostRows = await checkHost(connection, config, env, auth, (path) => ssh.freeBytes(path));
      const reachable = hostRows.every((row) => row.check !== 'Docker Engine access' || row.verdict === 'pass');
      return [...rows, ...hostRows, ...(address === lockAt && reachable ? [await checkLock(connection, config)] : [])];
    } catch (error) {
      return [...rows, fail(address, 'host', message(error), 'see the message; a deploy would stop here too')];
    } finally {
      connection.dispose();
    }
  });
  const haproxy = env.haproxy;
  const lbs = (haproxy?.hosts ?? []).map(async (address) => {
    const { rows, connection } = await open(address, env, connectLoadBalancer(sshOptions(inputs, env, address), haproxy!));
    if (!connection) return rows;
    try {
      return [...rows, ...(await checkLoadBalancer(address, connection, env, haproxy!.socket))];
    } catch (error) {
      return [...rows, fail(address, 'load balancer', message(error), 'see the message; a deploy would stop here too')];
    } finally {
      connection.dispose();
    }
  });
  const noBalancer: CheckRow[] = haproxy
    ? []
    : [{ where: env.name, check: 'load balancer', verdict: 'warn', detail: 'no haproxy section: containers are replaced in place, clients see the gap', fix: 'haproxy: { host: LB, backend: NAME } (command: haproxy-config prints the HAProxy side)' }];
  const results = await Promise.all([...hosts, ...lbs, checkGitHub(github, env)]);
  return [...results.flat(), ...noBalancer];
}

const HEADER = ['', 'where', 'check', 'detail', 'fix'];
const MARK = { pass: 'ok', fail: 'FAIL', warn: 'warn' } as const;

export function checkTable(rows: CheckRow[]): string {
  return textTable(HEADER, rows.map((r) => [MARK[r.verdict], r.where, r.check, r.detail, r.fix]));
}

function checkHtml(rows: CheckRow[]): string {
  const icon = { pass: '✅', fail: '❌', warn: '⚠️' } as const;
  return `<table><tr>${HEADER.map((h) => `<th>${htmlText(h)}</th>`).join('')}</tr>${rows
    .map((r) => `<tr><td>${icon[r.verdict]}</td>${[r.where, r.check, r.detail, r.fix].map((cell) => `<td>${htmlText(cell)}</td>`).join('')}</tr>`)
    .join('')}</table>\n`;
}

export async function check(inputs: Inputs, config: Config): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  const rows = await runChecks(inputs, config, env, gitHub(inputs));
  const table = checkTable(rows);
  // Details quote hosts, HAProxy and the registry.
  infoUntrusted(table);
  const failed = rows.filter((r) => r.verdict === 'fail');
  await writeSummary((s) => s.addHeading(`${failed.length === 0 ? '✅' : '❌'} Check of ${env.name}`, 3).addRaw(checkHtml(rows), true));
  if (failed.length > 0) {
    for (const row of failed) core.error(`${row.where}: ${row.check}: ${row.detail}. Fix: ${row.fix}`, { title: 'check' });
    throw new CheckFailed(`check: ${failed.length} of ${rows.length} checks failed on ${env.name}; a deploy would not pass: ${failed.map((r) => `${r.where} ${r.check}`).join(', ')}`);
  }
  core.info(`Every check of ${env.name} passed (${rows.length}).`);
  return { check: table };
}
