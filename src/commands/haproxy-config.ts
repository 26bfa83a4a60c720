// command: haproxy-config — the HAProxy configuration the rollout expects, for one environment,
// so users start from one that drains cleanly and holds backups in reserve.
import * as core from '@actions/core';
import type { Config, EnvironmentConfig } from '../config/schema.js';
import type { Inputs } from '../inputs.js';
import { writeSummary } from '../report/summary.js';
import { selectEnvironment } from '../config/environment.js';

export function serverName(host: string, role: 'master' | 'backup'): string {
  return `${host.replace(/[^A-Za-z0-9_.-]/g, '_')}-${role}`;
}

/** rollout.procedure no-gap: a role's spare server, disabled (MAINT) until a deploy proves a container there healthy. */
export function spareServerLine(env: EnvironmentConfig, host: string, role: 'master' | 'backup'): string {
  return `server ${serverName(host, role)}-spare ${hostAddress(host)}:${env.ports[`${role}-spare`]}${role === 'backup' ? ' backup' : ''} disabled`;
}

export function renderHaproxyConfig(app: string, env: EnvironmentConfig): string {
  const socket = env.haproxy?.socket ?? '/run/haproxy/admin.sock';
  const backend = env.haproxy?.backend ?? app;
  const servers = env.hosts.flatMap((host) => [
    `    server ${serverName(host, 'master')} ${hostAddress(host)}:${env.ports.master}`,
    `    server ${serverName(host, 'backup')} ${hostAddress(host)}:${env.ports.backup} backup`,
  ]);
  // rollout.procedure no-gap: a spare server per role, where the new container starts while the
  // old one serves; disabled (MAINT) until a deploy proves a container there healthy.
  const spares =
    env.rollout.procedure === 'no-gap'
      ? [
          '    # Spare servers (rollout.procedure: no-gap): which of a role\'s two servers serves alternates with each',
          '    # release; the server-state file keeps that across a reload.',
          ...env.hosts.flatMap((host) => [`    ${spareServerLine(env, host, 'master')}`, `    ${spareServerLine(env, host, 'backup')}`]),
        ]
      : [];
  return [
    `# HAProxy configuration for ${app} in ${env.name}, as deploy-action expects it.`,
    ...(env.haproxy && env.haproxy.hosts.length > 1
      ? [`# The same on every load balancer (${env.haproxy.hosts.join(', ')}): the deploy drains and restores servers on all of them.`]
      : env.haproxy
        ? [`# On the load balancer ${env.haproxy.hosts[0]}; for several, list them under haproxy.hosts and use this on each.`]
        : []),
    'global',
    '    # Workers run as the haproxy user and group (created by the haproxy package), as they do in the',
    '    # package\'s own configuration.',
    '    user haproxy',
    '    group haproxy',
    '    # The deploy drives servers through this socket (drain, maint, ready) over SSH: the deploy user',
    '    # reaches it through group haproxy (usermod -aG haproxy deploy).',
    `    stats socket ${socket} mode 660 group haproxy level admin`,
    '    stats timeout 30s',
    '    # Before every reload, save the servers\' states here, or drain and maint are lost:',
    `    #   echo "show servers state" | socat stdio ${socket} > /var/lib/haproxy/server-state`,
    '    server-state-file /var/lib/haproxy/server-state',
    '',
    'defaults',
    '    mode http',
    '    option httplog',
    '    timeout connect 5s',
    '    timeout client 30s',
    '    timeout server 30s',
    '    load-server-state-from-file global',
    '    # The safety net, not the mechanism: a request that meets a dying server is retried elsewhere.',
    '    retries 3',
    '    option redispatch 1',
    '    retry-on conn-failure empty-response response-timeout',
    '',
    `frontend ${backend}_in`,
    '    # Plain HTTP only; for TLS add: bind :443 ssl crt /etc/haproxy/certs/SITE.pem',
    '    bind :80',
    `    default_backend ${backend}`,
    '',
    `backend ${backend}`,
    '    balance roundrobin',
    `    option httpchk GET ${env.health.path}`,
    '    http-check expect status 200',
    '    # Backups serve only while every master is out; then all of them, not just the first.',
    '    option allbackups',
    `    default-server check inter ${env.health.interval}s fall 2 rise 2`,
    ...servers,
    ...spares,
    '',
  ].join('\n');
}

function hostAddress(host: string): string {
  return host.includes(':') ? `[${host}]` : host;
}

export async function haproxyConfig(inputs: Inputs, config: Config): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  const text = renderHaproxyConfig(config.app, env);
  core.info(text);
  await writeSummary((s) => s.addHeading(`HAProxy configuration for ${env.name}`, 3).addCodeBlock(text, 'haproxy'));
  return { 'haproxy-config': text };
}
