import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderHaproxyConfig, serverName } from '../../src/commands/haproxy-config.js';
import { parseConfig } from '../../src/config/parse.js';

const config = parseConfig('deploy.yml', readFileSync(new URL('./fixtures/full.yml', import.meta.url), 'utf8'));

describe('renderHaproxyConfig', () => {
  const text = renderHaproxyConfig(config.app, config.environments.production!);

  it('lists a master and a backup server per host on the configured ports', () => {
    expect(text).toContain('    server 10.0.1.11-master 10.0.1.11:50000\n');
    expect(text).toContain('    server 10.0.1.11-backup 10.0.1.11:50001 backup\n');
    expect(text).toContain('    server 10.0.1.12-backup 10.0.1.12:50001 backup\n');
  });

  it.each([
    'stats socket /run/haproxy/admin.sock mode 660 group haproxy level admin',
    '    user haproxy\n    group haproxy\n',
    '# Before every reload, save the servers\' states here, or drain and maint are lost:\n    #   echo "show servers state" | socat stdio /run/haproxy/admin.sock > /var/lib/haproxy/server-state\n    server-state-file /var/lib/haproxy/server-state',
    'backend mobile\n',
    'option httpchk GET /healthcheck',
    'http-check expect status 200',
    'option allbackups',
    'option redispatch 1',
    'retry-on conn-failure empty-response response-timeout',
  ])('has %j', (line) => {
    expect(text).toContain(line);
  });

  it.each([
    ['app1.example.com', 'master', 'app1.example.com-master'],
    ['fd00::1', 'backup', 'fd00__1-backup'],
  ] as const)('names %s %s as %s', (host, role, name) => {
    expect(serverName(host, role)).toBe(name);
  });
});

describe('renderHaproxyConfig with several load balancers', () => {
  it('names every load balancer the configuration is for', async () => {
    const { parseConfig } = await import('../../src/config/parse.js');
    const config = parseConfig('deploy.yml', `app: demo
image: reg/demo
container: { port: 3000 }
haproxy: { hosts: [lb1.example.com, lb2.example.com], backend: demo }
environments:
  production: { hosts: [10.0.0.1] }
`);
    expect(renderHaproxyConfig('demo', config.environments.production!)).toContain(
      '# The same on every load balancer (lb1.example.com, lb2.example.com): the deploy drains and restores servers on all of them.',
    );
  });
});

describe('renderHaproxyConfig with rollout.procedure: no-gap', () => {
  it('adds a disabled spare server per role and host, on the spare ports', () => {
    const env = config.environments.production!;
    const text = renderHaproxyConfig(config.app, { ...env, rollout: { procedure: 'no-gap' }, ports: { ...env.ports, 'master-spare': 50012, 'backup-spare': 50013 } });
    const host = env.hosts[0]!;
    expect(text).toContain(`    server ${serverName(host, 'master')}-spare ${host}:50012 disabled\n`);
    expect(text).toContain(`    server ${serverName(host, 'backup')}-spare ${host}:50013 backup disabled\n`);
    expect(renderHaproxyConfig(config.app, env)).not.toContain('-spare');
  });
});
