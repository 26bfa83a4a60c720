// command: status — what one environment runs, read-only: each host's master and backup
// (release, digest, state, health, since when), its role containers (workers), each server's state on every load balancer, the
// deploy lock if held, and the last deployments GitHub recorded. Everything shown comes from
// hosts, HAProxy or GitHub, so it goes to the log as untrusted text and to the summary escaped.
import * as core from '@actions/core';
import type { Config } from '../config/schema.js';
import type { GitHubApi } from '../drivers/github.js';
import type { Inputs } from '../inputs.js';
import { writeSummary, htmlText } from '../report/summary.js';
import { textTable } from '../report/table.js';
import { infoUntrusted } from '../report/untrusted.js';
import { describeLock, lockHost } from '../rollout/lock.js';
import { lockName } from '../rollout/spec.js';
import { selectEnvironment } from '../config/environment.js';
import { gitHub, trustedHistory } from '../pipeline/gates.js';
import { connect, type Connected } from '../pipeline/preflight.js';

/** One titled table of the report. */
export interface Section {
  title: string;
  header: string[];
  rows: string[][];
  /** Said instead of the table when it has no rows, or after it. */
  note?: string;
}

const HOST_HEADER = ['host', 'role', 'container', 'release', 'digest', 'state', 'health', 'since'];
const LB_HEADER = ['load balancer', 'server', 'address', 'serves', 'status', 'sessions', 'check', 'for'];
const DEPLOYMENT_HEADER = ['created', 'task', 'release', 'digest', 'state'];

async function hostRows(connected: Connected, app: string): Promise<string[][]> {
  const rows = await Promise.all(
    [...connected.hosts].map(async ([address, host]) => {
      const found = await host.containers(app, { repository: connected.image, warn: (line) => core.warning(line) });
      return Promise.all(
        (['master', 'backup'] as const).map(async (role) => {
          const container = found[role];
          if (!container) return [address, role, '—', '—', '—', 'none', '—', '—'];
          const state = await host.containerState(container.name);
          const release = container.release;
          return [
            address,
            role,
            container.name,
            release ? `${release.version}${release.adopted ? ' (adopted)' : ''}` : 'unknown',
            release?.digest ?? '—',
            state?.state ?? '—',
            state?.health ?? 'no HEALTHCHECK',
            state?.deployedAt ?? state?.since ?? '—',
          ];
        }),
      );
    }),
  );
  return rows.flat();
}

/** Each host's containers of roles beside the web role (workers), set-aside ones too. */
async function roleRows(connected: Connected, app: string): Promise<string[][]> {
  const rows = await Promise.all(
    [...connected.hosts].map(async ([address, host]) => {
      const found = await host.roleContainers(app, { repository: connected.image, warn: (line) => core.warning(line) });
      return Promise.all(
        found.map(async (container) => {
          const state = await host.containerState(container.name);
          return [
            address,
            container.role,
            container.name,
            container.release?.version ?? 'unknown',
            container.release?.digest ?? '—',
            state?.state ?? '—',
            state?.health ?? 'no HEALTHCHECK',
            state?.deployedAt ?? state?.since ?? '—',
          ];
        }),
      );
    }),
  );
  return rows.flat();
}

/** Every server of the backend on every load balancer; `serves` names the host and role by address and port. */
async function loadBalancerRows(connected: Connected): Promise<string[][]> {
  const { env } = connected;
  const roleOf = new Map(env.hosts.flatMap((host) => [[`${host}:${env.ports.master}`, `${host} master`], [`${host}:${env.ports.backup}`, `${host} backup`]]));
  const rows = await Promise.all(
    connected.lbs.map(async ({ host, runtime }) => {
      const servers = await runtime.servers();
      if (!servers) return [[host, '—', '—', '—', `no backend ${runtime.backend}`, '—', '—', '—']];
      return servers.map((s) => [
        host,
        s.name,
        s.address,
        roleOf.get(s.address) ?? (s.backup ? 'backup of no host here' : 'no host here'),
        s.status,
        String(s.sessions),
        s.checkStatus || 'no check',
        `${s.secondsInState} s`,
      ]);
    }),
  );
  return rows.flat();
}

async function deploymentRows(github: GitHubApi | undefined, environment: string, image: string): Promise<{ rows: string[][]; note?: string }> {
  if (!github) return { rows: [], note: 'not read: no github-token' };
  const records = await trustedHistory(github, environment, image);
  return {
    rows: records.slice(0, 5).map((r) => [r.createdAt.toISOString(), r.task, r.payload.version ?? r.ref, r.payload.digest ?? '—', r.state]),
    ...(records.length === 0 ? { note: 'none recorded by deploy-action' } : {}),
  };
}

export async function readStatus(connected: Connected, config: Config, github: GitHubApi | undefined): Promise<Section[]> {
  const { env } = connected;
  const lockAt = lockHost(env.hosts);
  const [hosts, roles, lbs, lock, deployments] = await Promise.all([
    hostRows(connected, config.app),
    roleRows(connected, config.app),
    loadBalancerRows(connected),
    connected.hosts.get(lockAt)!.readLock(lockName(config.app)),
    deploymentRows(github, env.name, config.image),
  ]);
  return [
    { title: `Hosts of ${env.name}`, header: HOST_HEADER, rows: hosts },
    ...(roles.length > 0 || env.roles.length > 0
      ? [{ title: `Roles beside the web role (${env.roles.map((r) => r.name).join(', ') || 'none configured'})`, header: HOST_HEADER, rows: roles, ...(roles.length ? {} : { note: 'no container of theirs on any host' }) }]
      : []),
    {
      title: env.haproxy ? `Load balancers (backend ${env.haproxy.backend})` : 'Load balancers',
      header: LB_HEADER,
      rows: lbs,
      ...(env.haproxy ? {} : { note: 'none (no haproxy section)' }),
    },
    { title: 'Deploy lock', header: [], rows: [], note: lock ? `held on ${lockAt} by ${describeLock(lock)}` : 'not held' },
    { title: 'Last deployments (GitHub)', header: DEPLOYMENT_HEADER, ...deployments },
  ];
}

export function sectionsText(sections: Section[]): string {
  return sections
    .map((s) => [`${s.title}:`, ...(s.rows.length > 0 ? [textTable(s.header, s.rows)] : []), ...(s.note ? [s.note] : [])].join('\n'))
    .join('\n\n');
}

/** The sections as summary HTML: every cell escaped, since hosts, HAProxy and GitHub wrote them. */
export function sectionsHtml(sections: Section[]): string {
  return sections
    .map((s) => {
      const table =
        s.rows.length > 0
          ? `<table><tr>${s.header.map((h) => `<th>${htmlText(h)}</th>`).join('')}</tr>${s.rows
              .map((row) => `<tr>${row.map((cell) => `<td>${htmlText(cell)}</td>`).join('')}</tr>`)
              .join('')}</table>`
          : '';
      return `<h4>${htmlText(s.title)}</h4>\n${table}${s.note ? `<p>${htmlText(s.note)}</p>` : ''}\n`;
    })
    .join('\n');
}

export async function status(inputs: Inputs, config: Config): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  const connected = await connect(inputs, config, env);
  try {
    const sections = await readStatus(connected, config, gitHub(inputs));
    const text = sectionsText(sections);
    infoUntrusted(text);
    await writeSummary((s) => s.addHeading(`Status of ${env.name}`, 3).addRaw(sectionsHtml(sections), true));
    return { status: text };
  } finally {
    connected.dispose();
  }
}
