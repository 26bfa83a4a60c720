import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config/fields.js';
import { parseConfig } from '../../src/config/parse.js';

const full = readFileSync(new URL('./fixtures/full.yml', import.meta.url), 'utf8');

const minimal = `
app: demo
image: registry.example.com/team/demo
container: { port: 3000 }
environments:
  staging:
    hosts: [app1.example.com]
`;

function problems(yaml: string): string[] {
  try {
    parseConfig('deploy.yml', yaml);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems.map((p) => `${p.path}: ${p.message}`);
    throw error;
  }
  throw new Error('expected the config to be rejected');
}

describe('parseConfig: valid files', () => {
  it('reads the documented example with its production overrides merged in', () => {
    const config = parseConfig('deploy.yml', full);
    expect(config.app).toBe('mobile');
    expect(config.image).toBe('registry.example.com/clay/mobile');
    expect(config.build).toEqual({ context: '.', dockerfile: 'Dockerfile', target: '', args: {}, secrets: ['NPM_TOKEN'], latest: true, cache: 'none', 'cache-mode': 'max' });
    const staging = config.environments.staging!;
    const production = config.environments.production!;
    expect(staging.hosts).toEqual(['10.0.0.11', '10.0.0.12']);
    expect(staging.url).toBe('https://staging.example.com');
    expect(staging.requireApproval).toBe(false);
    expect(staging.container.env).toEqual({ NODE_ENV: 'production', PORT: '3000' });
    expect(production.container.env).toEqual({ NODE_ENV: 'production', PORT: '3000', CLAY_API_URL: 'https://api.example.com' });
    expect(production.container.volumes).toEqual(['/var/log/clay:/var/log/clay']);
    expect(production.requireApproval).toBe(true);
    expect(production.promoteFrom).toBe('staging');
    expect(production.haproxy).toEqual({ hosts: ['lb.example.com'], socket: '/run/haproxy/admin.sock', backend: 'mobile', 'drain-timeout': 30, 'on-drain-timeout': 'fail' });
    expect(production.retainImages).toBe(3);
  });

  it('fills every default in a minimal file', () => {
    const env = parseConfig('deploy.yml', minimal).environments.staging!;
    expect(env.ports).toEqual({ master: 50000, backup: 50001, 'master-spare': 50002, 'backup-spare': 50003 });
    expect(env.rollout).toEqual({ procedure: 'backup-first' });
    expect(env.health).toEqual({ path: '/healthcheck', timeout: 60, interval: 1 });
    expect(env.ssh).toMatchObject({ user: 'deploy', port: 22 });
    expect(env.container).toMatchObject({ port: 3000, restart: 'on-failure', 'stop-timeout': 30, init: true, env: {}, secrets: [] });
    expect(env.haproxy).toBeUndefined();
    expect(env.maxParallel).toBe(1);
    expect(env.lock).toEqual({ wait: 0, 'stale-after': 3600, takeover: false });
    expect(env.canary).toBeUndefined();
  });

  it.each([
    ['an environment adds a haproxy section the top level lacks', `${minimal}    haproxy: { host: lb1, backend: app }\n`, (c: any) => expect(c.environments.staging.haproxy.hosts).toEqual(['lb1'])],
    ['several load balancers', `${minimal}    haproxy: { hosts: [lb1, lb2], backend: app }\n`, (c: any) => expect(c.environments.staging.haproxy.hosts).toEqual(['lb1', 'lb2'])],
    [
      'an environment with hosts replaces the top-level host',
      minimal.replace('container:', 'haproxy: { host: lb0, backend: app }\ncontainer:') + '    haproxy: { hosts: [lb1, lb2] }\n',
      (c: any) => expect(c.environments.staging.haproxy).toMatchObject({ hosts: ['lb1', 'lb2'], backend: 'app' }),
    ],
    ['max-parallel as a percentage of the hosts, rounded down, at least one', `${minimal}    max-parallel: "50%"\n`, (c: any) => expect(c.environments.staging.maxParallel).toBe(1)],
    ['max-parallel defaults to half the hosts', minimal.replace('hosts: [app1.example.com]', 'hosts: [a1, a2, a3, a4, a5, a6, a7, a8]'), (c: any) => expect(c.environments.staging.maxParallel).toBe(4)],
    ['lists replace instead of merging', `${minimal.replace('container: { port: 3000 }', 'container: { port: 3000, volumes: ["/a:/a"] }')}    container: { volumes: ["/b:/b"] }\n`, (c: any) => expect(c.environments.staging.container.volumes).toEqual(['/b:/b'])],
    ['scalars override', `${minimal}    ports: { master: 8080 }\n`, (c: any) => expect(c.environments.staging.ports).toEqual({ master: 8080, backup: 50001, 'master-spare': 50002, 'backup-spare': 50003 })],
    ['numbers and booleans in env become text', minimal.replace('{ port: 3000 }', '{ port: 3000, env: { WORKERS: 4, DEBUG: false } }'), (c: any) => expect(c.environments.staging.container.env).toEqual({ WORKERS: '4', DEBUG: 'false' })],
    ['IPv6 hosts and registry ports', minimal.replace('app1.example.com', '"fd00::1"').replace('registry.example.com/', 'localhost:5000/'), (c: any) => expect([c.environments.staging.hosts[0], c.image]).toEqual(['fd00::1', 'localhost:5000/team/demo'])],
    ['an environment overrides max-parallel', `${minimal}    max-parallel: 2\n`, (c: any) => expect(c.environments.staging.maxParallel).toBe(2)],
    [
      'a canary section gets its defaults',
      `${minimal}    haproxy: { host: lb1, backend: app }\n    canary: {}\n`,
      (c: any) => expect(c.environments.staging.canary).toEqual({ hold: 30, 'max-error-rate': 1, 'min-requests': 20 }),
    ],
    [
      'a top-level canary, overridden per environment, with a fractional budget',
      minimal.replace('container:', 'haproxy: { host: lb0, backend: app }\ncanary: { hold: 10, max-error-rate: 0.5 }\ncontainer:') + '    canary: { hold: 0 }\n',
      (c: any) => expect(c.environments.staging.canary).toEqual({ hold: 0, 'max-error-rate': 0.5, 'min-requests': 20 }),
    ],
    [
      'a registry cache at a ref of its own, mode min',
      minimal.replace('container:', 'build: { cache: registry, cache-mode: min, cache-ref: "localhost:5000/team/cache:demo-buildcache" }\ncontainer:'),
      (c: any) => expect(c.build).toMatchObject({ cache: 'registry', 'cache-mode': 'min', 'cache-ref': 'localhost:5000/team/cache:demo-buildcache' }),
    ],
    ['no release command by default', minimal, (c: any) => expect(c.environments.staging.releaseCommand).toBeUndefined()],
    [
      'a release command as one string, with its defaults',
      minimal.replace('container:', 'release-command: { command: bin/rails  db:migrate }\ncontainer:'),
      (c: any) => expect(c.environments.staging.releaseCommand).toEqual({ command: ['bin/rails', 'db:migrate'], timeout: 600, 'on-rollback': false }),
    ],
    [
      'a release command as a list, keeping spaces inside words; an environment overrides its timeout',
      minimal.replace('container:', 'release-command: { command: [sh, -c, "echo a b"], on-rollback: true }\ncontainer:') + '    release-command: { timeout: 30 }\n',
      (c: any) => expect(c.environments.staging.releaseCommand).toEqual({ command: ['sh', '-c', 'echo a b'], timeout: 30, 'on-rollback': true }),
    ],
  ])('%s', (_name, yaml, check) => {
    check(parseConfig('deploy.yml', yaml));
  });
});

describe('parseConfig: invalid files name the key and what is expected', () => {
  it.each([
    ['missing app', minimal.replace('app: demo\n', ''), 'app: is required'],
    ['bad container name', minimal.replace('app: demo', 'app: "my app"'), 'app: "my app" is not a container name'],
    ['image with a tag', minimal.replace('team/demo', 'team/demo:v1'), 'image: "registry.example.com/team/demo:v1" is not an image repository without tag'],
    ['unknown top-level key', `${minimal}colour: blue\n`, 'colour: unknown key'],
    ['unknown key in a section', minimal.replace('{ port: 3000 }', '{ port: 3000, cmd: x }'), 'container.cmd: unknown key'],
    ['wrong type', minimal.replace('{ port: 3000 }', '{ port: "3000" }'), 'container.port: expected a whole number from 1 to 65535, got string "3000"'],
    ['port out of range', minimal.replace('{ port: 3000 }', '{ port: 70000 }'), 'container.port: expected a whole number from 1 to 65535'],
    ['missing required port', minimal.replace('container: { port: 3000 }\n', ''), 'container.port: is required (at the top level or under environments.staging)'],
    ['bad host', minimal.replace('app1.example.com', '"not a host!"'), 'environments.staging.hosts[0]: not a host name or address'],
    ['duplicate host', minimal.replace('[app1.example.com]', '[a1, a1]'), 'environments.staging.hosts[1]: "a1" is listed twice'],
    ['no hosts', minimal.replace('hosts: [app1.example.com]', 'url: "https://x.example.com"'), 'environments.staging.hosts: is required'],
    ['empty hosts', minimal.replace('[app1.example.com]', '[]'), 'environments.staging.hosts: must not be empty'],
    ['no environments', minimal.replace(/environments:[\s\S]*/, ''), 'environments: is required'],
    ['unknown key in an environment', `${minimal}    region: eu\n`, 'environments.staging.region: unknown key'],
    ['build is not overridable', `${minimal}    build: { context: x }\n`, 'environments.staging.build: unknown key'],
    ['unknown key in an override', `${minimal}    health: { url: /x }\n`, 'environments.staging.health.url: unknown key'],
    ['bad override value', `${minimal}    ports: { backup: 0 }\n`, 'environments.staging.ports.backup: expected a whole number from 1 to 65535, got number 0'],
    ['same master and backup ports', `${minimal}    ports: { master: 50001 }\n`, 'environments.staging.ports: master and backup must differ (both 50001)'],
    ['no-gap with a spare port on a role\'s', `${minimal}    rollout: { procedure: no-gap }\n    ports: { master-spare: 50001 }\n`, 'environments.staging.ports: rollout.procedure no-gap needs master, backup, master-spare and backup-spare to differ (50000, 50001, 50001, 50003)'],
    ['an unknown procedure', `${minimal}    rollout: { procedure: blue-green }\n`, 'environments.staging.rollout.procedure: "blue-green" is not backup-first or no-gap'],
    ['promote-from itself', `${minimal}    promote-from: staging\n`, 'environments.staging.promote-from: must name another environment'],
    ['haproxy without host', minimal.replace('container:', 'haproxy: { backend: app }\ncontainer:'), 'haproxy.host: is required (at the top level or under environments.staging) (or haproxy.hosts for several load balancers)'],
    ['haproxy with host and hosts', minimal.replace('container:', 'haproxy: { host: lb0, hosts: [lb1], backend: app }\ncontainer:'), 'haproxy: give host (one load balancer) or hosts (several), not both'],
    ['max-parallel neither a number nor a percentage', `${minimal}max-parallel: half\n`, 'max-parallel: expected a whole number from 1 to 100 or a percentage like "50%", got "half"'],
    ['bad restart policy', minimal.replace('{ port: 3000 }', '{ port: 3000, restart: sometimes }'), 'container.restart: "sometimes" is not a Docker restart policy'],
    ['bad on-drain-timeout', `${minimal}    haproxy: { host: lb.example.com, backend: demo, on-drain-timeout: wait }\n`, 'environments.staging.haproxy.on-drain-timeout: "wait" is not fail or cut'],
    ['a canary without a haproxy section', `${minimal}    canary: { hold: 5 }\n`, "environments.staging.canary: needs a haproxy section: the canary is judged by the load balancers' counters"],
    ['a budget over 100%', minimal.replace('container:', 'haproxy: { host: lb0, backend: app }\ncanary: { max-error-rate: 150 }\ncontainer:'), 'canary.max-error-rate: expected a number from 0 to 100, got number 150'],
    ['an unknown canary key', minimal.replace('container:', 'haproxy: { host: lb0, backend: app }\ncanary: { steps: 3 }\ncontainer:'), 'canary.steps: unknown key'],
    ['a release command without its command', `${minimal}    release-command: { timeout: 5 }\n`, 'release-command.command: is required (at the top level or under environments.staging)'],
    ['an empty release command', minimal.replace('container:', 'release-command: { command: [] }\ncontainer:'), 'release-command.command: expected a command'],
    ['a release command word that is not text', minimal.replace('container:', 'release-command: { command: [migrate, 3] }\ncontainer:'), 'release-command.command: expected a command'],
    ['a release timeout of 0', minimal.replace('container:', 'release-command: { command: migrate, timeout: 0 }\ncontainer:'), 'release-command.timeout: expected a whole number from 1 to 86400'],
    ['bad volume', minimal.replace('{ port: 3000 }', '{ port: 3000, volumes: ["relative/dir:/x"] }'), 'container.volumes[0]: "relative/dir:/x" is not a volume'],
    ['bad secret name', minimal.replace('{ port: 3000 }', '{ port: 3000, secrets: [API-KEY] }'), 'container.secrets[0]: "API-KEY" is not an environment variable name'],
    ['env value is a list', minimal.replace('{ port: 3000 }', '{ port: 3000, env: { A: [1] } }'), 'container.env.A: expected a string, got a list'],
    ['health path without slash', `${minimal}    health: { path: healthz }\n`, 'environments.staging.health.path: "healthz" is not a URL path starting with /'],
    ['reserved build arg', minimal.replace('container:', 'build: { args: { DEPLOY_VERSION: x } }\ncontainer:'), 'build.args.DEPLOY_VERSION: is set by the action'],
    ['unknown cache type', minimal.replace('container:', 'build: { cache: s3 }\ncontainer:'), 'build.cache: "s3" is not none, registry, gha or inline'],
    ['unknown cache mode', minimal.replace('container:', 'build: { cache-mode: all }\ncontainer:'), 'build.cache-mode: "all" is not min or max'],
    ['cache-ref without a tag', minimal.replace('container:', 'build: { cache-ref: registry.example.com/team/demo }\ncontainer:'), 'build.cache-ref: "registry.example.com/team/demo" is not an image reference with a tag'],
    ['cache-ref on latest', minimal.replace('container:', 'build: { cache-ref: "registry.example.com/team/demo:latest" }\ncontainer:'), 'build.cache-ref: the tag latest is one releases use'],
    ['cache-ref on a version tag', minimal.replace('container:', 'build: { cache-ref: "registry.example.com/team/demo:v1.2.0" }\ncontainer:'), 'build.cache-ref: the tag v1.2.0 is one releases use'],
    ['yaml syntax error', 'app: [unclosed\n', 'line 2: Flow sequence'],
    ['duplicate yaml key', `${minimal}app: other\n`, 'line'],
  ])('%s', (_name, yaml, expected) => {
    expect(problems(yaml).join('\n')).toContain(expected);
  });

  it('reports every problem at once, each once', () => {
    const found = problems(`
app: "bad name"
image: "team/app:v1"
container: { port: 0, restart: x }
environments:
  staging: { hosts: ["bad host"] }
  production: { hosts: ["bad host"] }
`);
    expect(found).toEqual([
      'app: "bad name" is not a container name (letters, digits, _ . -)',
      'image: "team/app:v1" is not an image repository without tag, like registry.example.com/team/app',
      'container.port: expected a whole number from 1 to 65535, got number 0',
      'container.restart: "x" is not a Docker restart policy (no, always, unless-stopped, on-failure[:N])',
      'environments.staging.hosts[0]: not a host name or address',
      'environments.production.hosts[0]: not a host name or address',
    ]);
  });

  it('names the file in the error message', () => {
    expect(() => parseConfig('.github/deploy.yml', 'app: 1')).toThrow(/^\.github\/deploy\.yml is invalid:\n {2}app: expected/);
  });
});

describe('parseConfig: roles', () => {
  const base = `
app: demo
image: registry.example.com/team/demo
container: { port: 3000, env: { A: "1" }, secrets: [DB], stop-timeout: 20 }
environments:
  staging:
    hosts: [s1, s2]
  production:
    hosts: [p1, p2, p3]
`;
  it('reads a role with its defaults, the app\'s settings merged in; an environment narrows its hosts and count', () => {
    const config = parseConfig(
      'deploy.yml',
      `${base}    roles: { worker: { hosts: [p3, p1], count: 3 } }
roles:
  worker: { command: bin/jobs work, env: { B: "2" }, secrets: [REDIS] }
  clock: { command: [bin/clock], stop-timeout: 5, ready: { healthcheck: true } }
`,
    );
    expect(config.environments.staging!.roles).toEqual([
      { name: 'worker', command: ['bin/jobs', 'work'], hosts: ['s1', 's2'], env: { A: '1', B: '2' }, secrets: ['DB', 'REDIS'], count: 1, stopTimeout: 20, ready: { running: 5 } },
      { name: 'clock', command: ['bin/clock'], hosts: ['s1', 's2'], env: { A: '1' }, secrets: ['DB'], count: 1, stopTimeout: 5, ready: { healthcheck: true } },
    ]);
    expect(config.environments.production!.roles[0]).toMatchObject({ name: 'worker', hosts: ['p1', 'p3'], count: 3 });
  });

  it('has no roles unless some are configured', () => {
    expect(parseConfig('deploy.yml', base).environments.staging!.roles).toEqual([]);
  });

  it('names every mistake with its key path', () => {
    expect(
      problems(`${base}    roles: { worker: { hosts: [p9] } }
roles:
  backup: { command: x }
  Bad_Name: { command: x }
  worker: { command: "", count: 0, ready: { running: 0 }, port: 3000 }
  clock: { ready: { healthcheck: false } }
`),
    ).toEqual([
      'roles.backup: backup is the web role\'s (master and backup): name this role otherwise',
      'roles.Bad_Name: not a role name (a lowercase letter, then lowercase letters, digits and -, 30 at most): it names the role\'s containers',
      'roles.worker.command: expected a command: words in one string (bin/rails db:migrate) or a list of non-empty strings ([bin/rails, db:migrate])',
      'roles.worker.count: expected a whole number from 1 to 100, got number 0',
      'roles.worker.ready: expected { healthcheck: true } (the image\'s HEALTHCHECK says healthy) or { running: N } (N seconds from 1 to 3600 up without a restart)',
      'roles.worker.port: unknown key (expected one of: command, hosts, env, secrets, count, stop-timeout, ready)',
      'roles.clock.ready: expected { healthcheck: true } (the image\'s HEALTHCHECK says healthy) or { running: N } (N seconds from 1 to 3600 up without a restart)',
      "roles.clock.command: is required (under roles.clock, or an environment's roles.clock)",
      'environments.production.roles.worker.hosts: p9 is not one of production\'s hosts',
    ]);
  });
});
