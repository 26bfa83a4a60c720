// container.bind: what the config accepts, and where ports are published and probed.
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/fields.js';
import { parseConfig } from '../../src/config/parse.js';
import { portBinding, probeAddress, publishedOn } from '../../src/drivers/bind.js';

const config = (container: string, hosts = '[10.0.0.11, 10.0.0.12]') => `
app: demo
image: registry.example.com/team/demo
container: { port: 3000${container} }
environments:
  staging: { hosts: ${hosts} }
`;

function problems(yaml: string): string[] {
  try {
    parseConfig('deploy.yml', yaml);
    return [];
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => `${p.path}: ${p.message}`);
    throw error;
  }
}

describe('container.bind in the config', () => {
  it('is absent by default: Docker publishes on every interface, as before the key existed', () => {
    expect(parseConfig('deploy.yml', config('')).environments.staging!.container.bind).toBeUndefined();
  });

  it.each(['10.0.0.11', '0.0.0.0', '::', 'fd00::11', 'host'])('accepts %s', (bind) => {
    expect(parseConfig('deploy.yml', config(`, bind: "${bind}"`)).environments.staging!.container.bind).toBe(bind);
  });

  it.each(['10.0.0.256', 'eth0', 'lb.example.com', '0.0.0.0:80'])('refuses %s with its key path', (bind) => {
    expect(problems(config(`, bind: "${bind}"`))).toEqual([
      'container.bind: expected an IPv4 or IPv6 address (0.0.0.0: every interface), or host (the address each host is listed under)',
    ]);
  });

  it('bind: host needs every host listed by address', () => {
    expect(problems(config(', bind: host', '[10.0.0.11, app2.example.com]'))).toEqual([
      'environments.staging.hosts[1]: container.bind: host needs every host listed by IP address',
    ]);
  });
});

describe('publish and probe addresses', () => {
  it.each([
    [undefined, '10.0.0.11', { HostPort: '50000' }],
    ['0.0.0.0', '10.0.0.11', { HostIp: '0.0.0.0', HostPort: '50000' }],
    ['10.0.0.99', '10.0.0.11', { HostIp: '10.0.0.99', HostPort: '50000' }],
    ['host', '10.0.0.11', { HostIp: '10.0.0.11', HostPort: '50000' }],
  ])('bind %s on host %s publishes as %j', (bind, host, expected) => {
    expect(portBinding(bind, host, 50000)).toEqual(expected);
  });

  it.each([
    [undefined, '127.0.0.1'],
    ['', '127.0.0.1'],
    ['0.0.0.0', '127.0.0.1'],
    ['::', '::1'],
    ['10.0.0.11', '10.0.0.11'],
  ])('a port published on %j is probed at %s', (hostIp, expected) => {
    expect(probeAddress(hostIp)).toBe(expected);
  });

  it('reads the HostIp of the published port from the engine', () => {
    const bindings = { '3000/tcp': [{ HostIp: '10.0.0.11', HostPort: '50000' }], '9000/tcp': null };
    expect(publishedOn(bindings, 50000)).toBe('10.0.0.11');
    expect(publishedOn(bindings, 50001)).toBeUndefined();
    expect(publishedOn(undefined, 50000)).toBeUndefined();
  });
});
