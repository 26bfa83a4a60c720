// Turns the text of .github/deploy.yml into a typed Config, or a ConfigError listing every
// problem with its key path. Pure: no file system, no inputs.
import { isIP } from 'node:net';
import { parseDocument } from 'yaml';
import {
  ConfigError,
  completeSection,
  isMapping,
  optional,
  readSection,
  reader,
  type Problem,
  type Schema,
  type Partial_,
} from './fields.js';
import {
  ENVIRONMENT_NAME,
  RESERVED_ROLE_NAMES,
  ROLE_NAME,
  buildSchema,
  roleSchema,
  identity,
  environmentScalars,
  overridable,
  topScalars,
  type Config,
  type EnvironmentConfig,
  type HaproxyConfig,
  type RoleConfig,
} from './schema.js';

type Sections = { [K in keyof typeof overridable]?: Partial_<(typeof overridable)[K]> };

// Sections are only named here (so unknown keys are caught); their own schema reads them.
const section = optional(reader((value: unknown) => value, {}), 'a section, read by its own schema');
const sectionNames = Object.fromEntries(Object.keys(overridable).map((k) => [k, section]));
const topSchema: Schema = { ...identity, build: section, ...sectionNames, roles: section, ...topScalars, environments: section };
const environmentSchema: Schema = { ...environmentScalars, ...sectionNames, roles: section, ...topScalars };

type RoleSections = Record<string, Partial_<typeof roleSchema>>;

/** `roles` as written at `path` (top level or an environment): each role's keys, read. */
function readRoles(raw: unknown, path: string, problems: Problem[]): RoleSections {
  if (raw === undefined) return {};
  if (!isMapping(raw)) {
    problems.push({ path, message: 'expected a mapping of role names, like worker: { command: bin/jobs }' });
    return {};
  }
  const out: RoleSections = {};
  for (const [name, value] of Object.entries(raw)) {
    const at = `${path}.${name}`;
    if (RESERVED_ROLE_NAMES.includes(name)) problems.push({ path: at, message: `${name} is the web role's (master and backup): name this role otherwise` });
    else if (!ROLE_NAME.test(name)) problems.push({ path: at, message: 'not a role name (a lowercase letter, then lowercase letters, digits and -, 30 at most): it names the role\'s containers' });
    else out[name] = readSection(roleSchema, value, at, problems) ?? {};
  }
  return out;
}

/**
 * The environment's roles: the top level's, with the environment's merged in by role name (an
 * environment may narrow a role's hosts, change its count, or add a role of its own).
 */
function resolveRoles(app: string, top: RoleSections, own: RoleSections, env: EnvironmentConfig, path: string, problems: Problem[]): RoleConfig[] {
  const roles: RoleConfig[] = [];
  for (const name of [...new Set([...Object.keys(top), ...Object.keys(own)])]) {
    const where = ` (under roles.${name}, or an environment's roles.${name})`;
    const merged = completeSection(roleSchema, deepMerge(top[name] ?? {}, own[name]), `roles.${name}`, problems, where);
    const hosts = merged.hosts ?? env.hosts;
    for (const listed of hosts) {
      if (!env.hosts.includes(listed)) problems.push({ path: own[name]?.hosts ? `${path}.roles.${name}.hosts` : `roles.${name}.hosts`, message: `${listed} is not one of ${env.name}'s hosts` });
    }
    if (`${app}-${name}-${merged.count}-previous`.length > 63) problems.push({ path: `roles.${name}`, message: 'app and role name together are too long for Docker\'s container names' });
    roles.push({
      name,
      command: merged.command,
      hosts: env.hosts.filter((h) => hosts.includes(h)),
      env: { ...env.container.env, ...merged.env },
      secrets: [...new Set([...env.container.secrets, ...merged.secrets])],
      count: merged.count,
      stopTimeout: merged['stop-timeout'] ?? env.container['stop-timeout'],
      ready: merged.ready,
    });
  }
  return roles;
}

/** Objects merge key by key (so `container.env` adds variables); lists and scalars replace. */
export function deepMerge<T>(base: T, override: unknown): T {
  if (!isMapping(base) || !isMapping(override)) return (override === undefined ? base : override) as T;
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) out[key] = deepMerge(out[key], value);
  return out as T;
}

function readSections(raw: Record<string, unknown>, path: string, problems: Problem[]): Sections {
  const out: Record<string, unknown> = {};
  for (const [name, schema] of Object.entries(overridable)) {
    if (raw[name] === undefined) continue;
    out[name] = readSection(schema, raw[name], path ? `${path}.${name}` : name, problems);
  }
  return out as Sections;
}

function resolveEnvironment(
  name: string,
  raw: Record<string, unknown>,
  top: { app: string; sections: Sections; scalars: Record<string, unknown>; roles: RoleSections },
  problems: Problem[],
): EnvironmentConfig {
  const path = `environments.${name}`;
  const own = readSection(environmentSchema, raw, path, problems) ?? {};
  const scalars = completeSection(environmentScalars, pick(own, environmentScalars), path, problems);
  const sections = readSections(own as Record<string, unknown>, path, problems);
  const where = ` (at the top level or under ${path})`;
  const merged = (key: keyof typeof overridable) => deepMerge(top.sections[key] ?? {}, sections[key]);
  const complete = <K extends keyof typeof overridable>(key: K) =>
    completeSection(overridable[key], merged(key) as Partial_<(typeof overridable)[K]>, key, problems, where);
  const haproxy = top.sections.haproxy || sections.haproxy ? loadBalancers(top.sections.haproxy, sections.haproxy, path, problems, where) : undefined;
  const numbers = completeSection(topScalars, deepMerge(top.scalars, pick(own, topScalars)), '', problems);
  const env: EnvironmentConfig = {
    name,
    hosts: scalars.hosts,
    requireApproval: scalars['require-approval'],
    container: complete('container'),
    ports: complete('ports'),
    health: complete('health'),
    ssh: complete('ssh'),
    lock: complete('lock'),
    retainImages: numbers['retain-images'],
    maxParallel: hostsAtOnce(numbers['max-parallel'], scalars.hosts?.length ?? 1),
    rollout: complete('rollout'),
    roles: [],
  };
  if (scalars.url !== undefined) env.url = scalars.url;
  if (scalars['promote-from'] !== undefined) env.promoteFrom = scalars['promote-from'];
  if (haproxy) env.haproxy = haproxy;
  if (top.sections.canary || sections.canary) {
    env.canary = complete('canary');
    if (!haproxy) problems.push({ path: sections.canary ? `${path}.canary` : 'canary', message: 'needs a haproxy section: the canary is judged by the load balancers\' counters' });
  }
  if (top.sections['release-command'] || sections['release-command']) env.releaseCommand = complete('release-command');
  if (env.hosts && env.container) env.roles = resolveRoles(top.app, top.roles, readRoles(own.roles, `${path}.roles`, problems), env, path, problems);
  if (env.container.bind === 'host') {
    for (const [i, listed] of env.hosts.entries()) {
      if (isIP(listed) === 0) problems.push({ path: `${path}.hosts[${i}]`, message: 'container.bind: host needs every host listed by IP address' });
    }
  }
  if (env.ports.master === env.ports.backup) {
    problems.push({ path: `${path}.ports`, message: `master and backup must differ (both ${env.ports.master})` });
  } else if (env.rollout.procedure === 'no-gap') {
    const ports = [env.ports.master, env.ports.backup, env.ports['master-spare'], env.ports['backup-spare']];
    if (new Set(ports).size < 4) problems.push({ path: `${path}.ports`, message: `rollout.procedure no-gap needs master, backup, master-spare and backup-spare to differ (${ports.join(', ')})` });
    if (!haproxy) problems.push({ path: `${path}.rollout.procedure`, message: 'no-gap needs a haproxy section: it switches HAProxy servers' });
  }
  return env;
}

/**
 * The haproxy section with its load balancers as one list. `host` (one) and `hosts` (several)
 * are two spellings of one key: an environment that names either replaces the top level's, and
 * one place that gives both is an error.
 */
function loadBalancers(
  top: Sections['haproxy'],
  own: Sections['haproxy'],
  path: string,
  problems: Problem[],
  where: string,
): HaproxyConfig {
  const base = { ...(top ?? {}) };
  if (own?.host !== undefined || own?.hosts !== undefined) {
    delete base.host;
    delete base.hosts;
  }
  const merged = completeSection(overridable.haproxy, deepMerge(base, own), 'haproxy', problems, where);
  const { host, hosts, ...rest } = merged;
  if (host !== undefined && hosts !== undefined) {
    problems.push({ path: own?.hosts !== undefined ? `${path}.haproxy` : 'haproxy', message: 'give host (one load balancer) or hosts (several), not both' });
  } else if (host === undefined && hosts === undefined && !problems.some((p) => /(^|\.)haproxy\.hosts?\b/.test(p.path))) {
    problems.push({ path: 'haproxy.host', message: `is required${where} (or haproxy.hosts for several load balancers)` });
  }
  return { ...rest, hosts: hosts ?? (host !== undefined ? [host] : []) };
}

/** max-parallel as a number of hosts: a percentage of them rounds down, and is at least one. */
export function hostsAtOnce(maxParallel: number | `${number}%`, hosts: number): number {
  if (typeof maxParallel === 'number') return maxParallel;
  return Math.max(1, Math.floor((hosts * Number(maxParallel.slice(0, -1))) / 100));
}

function pick(raw: Record<string, unknown>, schema: Schema): Record<string, unknown> {
  return Object.fromEntries(Object.entries(raw).filter(([k]) => k in schema));
}

function unique(problems: Problem[]): Problem[] {
  const seen = new Set<string>();
  return problems.filter((p) => {
    const key = `${p.path}\0${p.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export function parseConfig(source: string, yamlText: string): Config {
  const doc = parseDocument(yamlText, { uniqueKeys: true, prettyErrors: true });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((e) => ({ path: `line ${e.linePos?.[0]?.line ?? '?'}`, message: e.message.split('\n')[0] ?? e.code })),
    );
  }
  const problems: Problem[] = [];
  const raw: unknown = doc.toJS();
  const top = readSection(topSchema, raw ?? {}, '', problems) ?? {};
  const ids = completeSection(identity, pick(top, identity), '', problems);
  const build = completeSection(buildSchema, top.build === undefined ? {} : readSection(buildSchema, top.build, 'build', problems) ?? {}, 'build', problems);
  for (const reserved of ['DEPLOY_VERSION', 'DEPLOY_REVISION']) {
    if (build.args[reserved] !== undefined) {
      problems.push({ path: `build.args.${reserved}`, message: 'is set by the action from the release; remove it' });
    }
  }
  const cacheTag = build['cache-ref']?.slice(build['cache-ref'].lastIndexOf(':') + 1);
  if (cacheTag !== undefined && (cacheTag === 'latest' || /^v?[0-9]/.test(cacheTag))) {
    // A release's tag would be overwritten by a cache (or the cache by the next release).
    problems.push({ path: 'build.cache-ref', message: `the tag ${cacheTag} is one releases use (latest, versions): pick another, like buildcache` });
  }
  const sections = readSections(top, '', problems);
  const scalars = pick(top, topScalars);
  const roles = readRoles(top.roles, 'roles', problems);
  const environments: Record<string, EnvironmentConfig> = {};
  if (top.environments === undefined) {
    if (!problems.some((p) => p.path === 'environments')) problems.push({ path: 'environments', message: 'is required' });
  } else if (!isMapping(top.environments) || Object.keys(top.environments).length === 0) {
    problems.push({ path: 'environments', message: 'expected a mapping of environment names, like staging: { hosts: [...] }' });
  } else {
    for (const [name, value] of Object.entries(top.environments)) {
      if (!ENVIRONMENT_NAME.test(name)) {
        problems.push({ path: `environments.${name}`, message: 'not a valid environment name (letters, digits, _ -)' });
      } else if (!isMapping(value)) {
        problems.push({ path: `environments.${name}`, message: 'expected a mapping with at least hosts: [...]' });
      } else {
        environments[name] = resolveEnvironment(name, value, { app: ids.app, sections, scalars, roles }, problems);
      }
    }
    for (const env of Object.values(environments)) {
      if (env.promoteFrom !== undefined && (env.promoteFrom === env.name || !environments[env.promoteFrom])) {
        problems.push({
          path: `environments.${env.name}.promote-from`,
          message: `must name another environment of this file (${Object.keys(environments).filter((n) => n !== env.name).join(', ') || 'none'})`,
        });
      }
    }
  }
  if (problems.length > 0) throw new ConfigError(source, unique(problems));
  return { app: ids.app, image: ids.image, build, environments };
}
