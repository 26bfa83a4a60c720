// The shape of .github/deploy.yml: one schema per section, shared by the top level and by the
// environment overrides, so an override can never hold a key the top level would reject.
import { isIP } from 'node:net';
import type { ReadyRule } from '../rollout/ports.js';
import {
  ENV_NAME,
  isMapping,
  boolean,
  decimal,
  integer,
  list,
  optional,
  required,
  stringMap,
  text,
  withDefault,
  reader,
  type Complete,
  type Reader,
} from './fields.js';

const HOST_LABEL = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

// JSON Schema has no IP test of its own without format plugins: IPv4 addresses match HOST_LABEL,
// IPv6 ones this looser pattern (the parser then applies node's isIP).
const IPV6 = '^[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*$';

export const host: Reader<string> = reader((value, path, problems) => {
  if (typeof value === 'string' && (isIP(value) !== 0 || HOST_LABEL.test(value))) return value;
  problems.push({ path, message: 'not a host name or address' });
  return undefined;
}, { type: 'string', anyOf: [{ pattern: HOST_LABEL.source }, { pattern: IPV6 }] }, 'a host name or IP address');

/** container.bind: an IP address, or `host` (each host's own address as listed in hosts). */
const bindAddress: Reader<string> = reader((value, path, problems) => {
  if (typeof value === 'string' && (value === 'host' || isIP(value) !== 0)) return value;
  problems.push({ path, message: 'expected an IPv4 or IPv6 address (0.0.0.0: every interface), or host (the address each host is listed under)' });
  return undefined;
}, { type: 'string', anyOf: [{ const: 'host' }, { pattern: '^[0-9]{1,3}(\\.[0-9]{1,3}){3}$' }, { pattern: IPV6 }] }, 'an IP address, or host');

// Docker's own grammar for names, repositories and volume specs, kept strict because these
// values end up in API calls on every host.
export const CONTAINER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
export const REPOSITORY = new RegExp(
  `^(?:(?:[A-Za-z0-9-]+(?:\\.[A-Za-z0-9-]+)*|\\[[0-9a-fA-F:]+\\])(?::[0-9]+)?/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`,
);
const VOLUME = /^(\/[^:\0]*|[A-Za-z0-9][A-Za-z0-9_.-]*):\/[^:\0]*(:(ro|rw|z|Z|ro,z|ro,Z))?$/;
const RESTART = /^(no|always|unless-stopped|on-failure(:[0-9]{1,3})?)$/;
const URL_PATH = /^\/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*$/;
const SOCKET_PATH = /^\/[A-Za-z0-9._/-]+$/;
const PROXY_JUMP = /^(?:[a-z_][a-z0-9_.-]*@)?[A-Za-z0-9.:[\]-]+?(?::[0-9]{1,5})?$/;

const port = integer(1, 65535);

export type BuildCacheType = 'none' | 'registry' | 'gha' | 'inline';
/** REPOSITORY:TAG (Docker's tag grammar). Which tags are refused (latest, versions) is parse.ts's. */
const CACHE_REF = new RegExp(`${REPOSITORY.source.slice(0, -1)}:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`);

/** A whole number from 1 to 100, or a percentage "1%" to "100%" (of the hosts). */
const PERCENT = /^(100|[1-9][0-9]?)%$/;
const countOrPercent: Reader<number | `${number}%`> = reader((value, path, problems) => {
  if (Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 100) return value as number;
  if (typeof value === 'string' && PERCENT.test(value)) return value as `${number}%`;
  problems.push({ path, message: `expected a whole number from 1 to 100 or a percentage like "50%", got ${JSON.stringify(value)}` });
  return undefined;
}, { oneOf: [{ type: 'integer', minimum: 1, maximum: 100 }, { type: 'string', pattern: PERCENT.source }] }, 'a whole number from 1 to 100, or a percentage like "50%"');
const seconds = (max: number) => integer(1, max);
const names = list(text(ENV_NAME, 'an environment variable name'), { unique: true });

/** What names the app and its image: top level only, one image per release for every environment. */
export const identity = {
  app: required(text(CONTAINER_NAME, 'a container name (letters, digits, _ . -)'), 'The master container\'s name on every host; the backup is APP-backup, the deploy lock APP-deploy-lock.'),
  image: required(text(REPOSITORY, 'an image repository without tag, like registry.example.com/team/app'), 'The image repository without tag, e.g. registry.example.com/clay/mobile: built once per release, promoted by digest.'),
};

export const buildSchema = {
  context: withDefault(text(/^[^\0]+$/, 'a directory'), '.', 'The build context, relative to the workspace.'),
  dockerfile: withDefault(text(/^[^\0]+$/, 'a file path'), 'Dockerfile', 'The Dockerfile, relative to build.context.'),
  target: withDefault(text(/^([A-Za-z0-9][A-Za-z0-9_.-]*)?$/, 'a build stage name'), '', 'The build stage to build; empty: the last one.'),
  args: withDefault(stringMap, {}, 'Build args (NAME: value); DEPLOY_VERSION and DEPLOY_REVISION are set by the action.'),
  secrets: withDefault(names, [], 'Names of variables of the build step\'s env passed as BuildKit secrets (--secret id=NAME,env=NAME), never as build args.'),
  latest: withDefault(boolean, true, 'Also move the latest tag, for stable releases only (never for a prerelease).'),
  // Off by default: a cache writes a tag of its own to the registry (or fills the repository's
  // GitHub cache quota), which a user opts into.
  cache: withDefault(
    text(/^(none|registry|gha|inline)$/, 'none, registry, gha or inline') as Reader<BuildCacheType>,
    'none',
    'Layer cache imported before and exported after each build: registry (a cache image beside the image, at cache-ref), gha (GitHub\'s cache service, on GitHub only), inline (the cache inside the pushed image, also tagged cache-ref) or none.',
  ),
  'cache-mode': withDefault(
    text(/^(min|max)$/, 'min or max') as Reader<'min' | 'max'>,
    'max',
    'Which layers the registry and gha caches export: max (every stage\'s) or min (the final image\'s only; inline is always min).',
  ),
  'cache-ref': optional(
    text(CACHE_REF, 'an image reference with a tag, like registry.example.com/team/app:buildcache'),
    'Where the registry and inline caches live. Absent: IMAGE:buildcache.',
  ),
};

export const containerSchema = {
  port: required(port, 'The port the app listens on inside the container. Required, at the top level or in each environment.'),
  env: withDefault(stringMap, {}, 'Environment variables of the container (NAME: value); an environment\'s map adds to the top level\'s.'),
  secrets: withDefault(names, [], 'Names of variables whose values come from the deploy step\'s env (from secrets); never logged.'),
  volumes: withDefault(list(text(VOLUME, 'a volume like /host/path:/container/path[:ro]')), [], 'Volumes like /host/path:/container/path[:ro].'),
  restart: withDefault(text(RESTART, 'a Docker restart policy (no, always, unless-stopped, on-failure[:N])'), 'on-failure', 'Docker restart policy: no, always, unless-stopped, on-failure[:N].'),
  'stop-timeout': withDefault(integer(0, 3600), 30, 'Seconds from SIGTERM to SIGKILL when a container is stopped.'),
  init: withDefault(boolean, true, 'Docker\'s init as PID 1, so that SIGTERM reaches the app.'),
  // Absent: Docker's default, every interface (IPv4 and IPv6), as before this key existed; the
  // docs/configuration.md advises the address HAProxy reaches.
  bind: optional(bindAddress, 'The host address the ports are published on: an IP address, or host (each host\'s own address as listed in hosts). Absent: every interface.'),
};

export const portsSchema = {
  master: withDefault(port, 50000, 'The host port of the master container (HAProxy\'s server for the host).'),
  backup: withDefault(port, 50001, 'The host port of the backup container (HAProxy\'s backup server for the host).'),
  'master-spare': withDefault(port, 50002, 'rollout.procedure no-gap: the master\'s spare port, where a new master starts while the old one serves (its own HAProxy server, disabled until the deploy needs it).'),
  'backup-spare': withDefault(port, 50003, 'rollout.procedure no-gap: the backup\'s spare port, as master-spare is the master\'s.'),
};

/** How each host's containers are replaced (rollout/no-gap.ts for no-gap). */
export const rolloutSchema = {
  procedure: withDefault(
    text(/^(backup-first|no-gap)$/, 'backup-first or no-gap') as Reader<'backup-first' | 'no-gap'>,
    'backup-first',
    'backup-first: each role is taken out of service, replaced, and put back, its other role covering the host meanwhile. no-gap: the new container starts on the role\'s spare port and serves before the old one stops (needs the spare servers command: haproxy-config prints, and HAProxy\'s server-state file).',
  ),
};

export const healthSchema = {
  path: withDefault(text(URL_PATH, 'a URL path starting with /'), '/healthcheck', 'The path that answers 200 when the app can serve (the action\'s own probe takes any 2xx; the HAProxy check that command haproxy-config prints expects 200).'),
  timeout: withDefault(seconds(3600), 60, 'Seconds a new container has to become healthy.'),
  interval: withDefault(seconds(60), 1, 'Seconds between health probes at most (they start at 100 ms and back off).'),
};

export const sshSchema = {
  user: withDefault(text(/^[a-z_][a-z0-9_.-]{0,31}$/, 'a user name'), 'deploy', 'The deploy user on every host and load balancer.'),
  port: withDefault(port, 22, 'The SSH port of every host and load balancer.'),
  'proxy-jump': optional(text(PROXY_JUMP, 'a jump host like user@bastion.example.com:22'), 'A jump host, user@bastion.example.com:22; its host key is checked too.'),
  'connect-timeout': withDefault(seconds(300), 15, 'Seconds to wait for an SSH connection.'),
  'keepalive-interval': withDefault(seconds(300), 10, 'Seconds between SSH keepalives.'),
  // Absent: one connection per host, all held from pre-flight to the end, as before this key.
  'max-connections': optional(integer(1, 100_000), 'At most this many SSH connections to hosts open at once, each opened when needed and the least recently used closed to make room (load balancers not counted). Absent: one per host, all held for the whole deploy.'),
};

export const haproxySchema = {
  /** One load balancer; `hosts` for several (exactly one of the two). */
  host: optional(host, 'The load balancer (HAProxy) in front of the hosts; hosts for several. Give one of the two.'),
  /** Every load balancer in front of the environment's hosts: all are driven as peers. */
  hosts: optional(list(host, { unique: true, nonEmpty: true }), 'Every load balancer in front of the hosts, driven as peers; host for one. Give one of the two.'),
  socket: withDefault(text(SOCKET_PATH, 'an absolute socket path'), '/run/haproxy/admin.sock', 'HAProxy\'s admin socket (stats socket ... level admin) on each load balancer.'),
  backend: required(text(/^[A-Za-z0-9_.:-]+$/, 'an HAProxy backend name'), 'The HAProxy backend holding a master and a backup server per host. Required with a haproxy section.'),
  'drain-timeout': withDefault(seconds(3600), 30, 'Seconds a draining server may keep sessions before on-drain-timeout applies.'),
  /** Sessions still open at the drain timeout: fail the step (server put back), or cut them. */
  'on-drain-timeout': withDefault(text(/^(fail|cut)$/, 'fail or cut') as Reader<'fail' | 'cut'>, 'fail', 'Sessions still open at the drain timeout: fail (put the server back, fail the step) or cut them.'),
};

export const lockSchema = {
  /** How long a deploy waits for another one on the same environment before failing. */
  wait: withDefault(integer(0, 3600), 0, 'Seconds a deploy waits for another one on the same environment before failing.'),
  /** A lock whose holder gave no sign of life for this long, or whose run has ended, is stale (see takeover). */
  'stale-after': withDefault(seconds(86400), 3600, 'A lock whose run gave no sign of life (it refreshes one while it runs) for this many seconds is stale, only when GitHub cannot be asked whether its run has ended.'),
  /** Take over a stale lock (reported in the log) instead of failing. */
  takeover: withDefault(boolean, false, 'Take over a stale lock (reported in the log) instead of failing.'),
};

/**
 * The canary and the error budget (receipt/canary.ts). Absent: nothing holds and nothing is
 * rolled back for errors; the receipt is written all the same.
 */
export const canarySchema = {
  hold: withDefault(integer(0, 3600), 30, 'Seconds the first host\'s new master serves alone, judged by the load balancers\' counters, before any other host moves; 0: no hold.'),
  'max-error-rate': withDefault(decimal(0, 100), 1, 'Percent of the new release\'s requests that may fail (5xx, failed connections, cut responses): the deploy fails and is rolled back once its counts show, at 99 % confidence, a rate over this (and over the old release\'s over the same time).'),
  'min-requests': withDefault(integer(1, 1_000_000), 20, 'Requests the new release must have answered before its error rate is judged: fewer prove nothing either way. To catch a release at 5× the budget 99 % of the time, about 500 ÷ max-error-rate (docs/receipt-and-canary.md).'),
};

/**
 * A command as words, never shell text: a list (`[bin/rails, db:migrate]`), or one string split
 * on spaces (`bin/rails db:migrate`). A command that needs a shell says so (`[sh, -c, "..."]`).
 */
const WORD = /^[^\0]+$/;
const commandWords: Reader<string[]> = reader((value, path, problems) => {
  const words = typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : value;
  if (Array.isArray(words) && words.length > 0 && words.every((w) => typeof w === 'string' && WORD.test(w))) return words as string[];
  problems.push({ path, message: 'expected a command: words in one string (bin/rails db:migrate) or a list of non-empty strings ([bin/rails, db:migrate])' });
  return undefined;
}, { oneOf: [{ type: 'string', pattern: '\\S' }, { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 }] });

/**
 * The release command (migrations, any release task): run once per deploy in a one-off container
 * of the new image, on the host holding the deploy lock, after the pull and before any traffic
 * moves (pipeline/release-command.ts). Absent: nothing runs.
 */
export const releaseCommandSchema = {
  command: required(commandWords, 'The command, as words (bin/rails db:migrate) or a list ([bin/rails, db:migrate]); no shell. It runs with the image\'s entrypoint, the app\'s env, secrets and volumes. Required with a release-command section.'),
  timeout: withDefault(seconds(86400), 600, 'Seconds it may take; then it is stopped and the deploy stops with no container changed.'),
  'on-rollback': withDefault(boolean, false, 'Run it on a rollback too. Off: migrations go forward, so a rollback runs the old release against the new schema (see expand/contract in the docs).'),
};

/** When a new container of a role counts as started (rollout/ports.ts ReadyRule). */
const readyRule: Reader<ReadyRule> = reader((value, path, problems) => {
  if (isMapping(value) && Object.keys(value).length === 1) {
    if (value.healthcheck === true) return { healthcheck: true };
    const running = value.running;
    if (Number.isInteger(running) && (running as number) >= 1 && (running as number) <= 3600) return { running: running as number };
  }
  problems.push({ path, message: 'expected { healthcheck: true } (the image\'s HEALTHCHECK says healthy) or { running: N } (N seconds from 1 to 3600 up without a restart)' });
  return undefined;
}, {
  oneOf: [
    { type: 'object', properties: { healthcheck: { const: true } }, required: ['healthcheck'], additionalProperties: false },
    { type: 'object', properties: { running: { type: 'integer', minimum: 1, maximum: 3600 } }, required: ['running'], additionalProperties: false },
  ],
}, '`{ healthcheck: true }`, or `{ running: N }` (N seconds from 1 to 3600)');

/**
 * A role's name: part of its containers' names (APP-NAME-1 ...). The web role's names are taken.
 * The JSON Schema says the pattern; the reserved names are the parser's.
 */
export const ROLE_NAME = /^[a-z][a-z0-9-]{0,29}$/;
export const RESERVED_ROLE_NAMES = ['web', 'master', 'backup'];

/**
 * A role beside the web role (workers, schedulers): the same image and release, another command,
 * no port, no load balancer. Moved after every web container is proven (rollout/roles.ts).
 */
export const roleSchema = {
  command: required(commandWords, 'The role\'s command, as words (bin/jobs work) or a list ([bin/jobs, work]); no shell. It runs with the image\'s entrypoint. Required for each role.'),
  hosts: optional(list(host, { unique: true, nonEmpty: true }), 'The hosts that run this role, each one of the environment\'s hosts. Absent: every host of the environment.'),
  env: withDefault(stringMap, {}, 'Variables added to container.env for this role\'s containers.'),
  secrets: withDefault(names, [], 'Names added to container.secrets for this role\'s containers (values from the deploy step\'s env).'),
  count: withDefault(integer(1, 100), 1, 'Containers of this role on each of its hosts: APP-NAME-1 to APP-NAME-N, moved one after the other.'),
  'stop-timeout': optional(integer(0, 3600), 'Seconds from SIGTERM to SIGKILL when one of its containers stops: the time to finish the job in hand. Absent: container.stop-timeout.'),
  ready: withDefault(readyRule, { running: 5 } as ReadyRule, 'When a new container counts as started: { healthcheck: true } (the image\'s HEALTHCHECK says healthy, within health.timeout) or { running: N } (N seconds up without an exit or a restart; the image\'s HEALTHCHECK is then turned off).'),
};

/** Sections an environment may override (deep merge), as Kamal destinations do. */
export const overridable = {
  container: containerSchema,
  ports: portsSchema,
  health: healthSchema,
  ssh: sshSchema,
  haproxy: haproxySchema,
  lock: lockSchema,
  canary: canarySchema,
  'release-command': releaseCommandSchema,
  rollout: rolloutSchema,
} as const;

/** What each section is, for deploy.schema.json. */
export const SECTION_DESCRIPTIONS: Record<keyof typeof overridable | 'build', string> = {
  build: 'How the image is built (command: build).',
  container: 'How each container runs.',
  ports: 'The host ports of the master and backup containers.',
  health: 'The health probe a new container must pass before it serves.',
  ssh: 'How the action logs in to hosts and load balancers.',
  haproxy: 'The load balancers in front of the hosts. Absent: containers are replaced in place, with a gap.',
  lock: 'The deploy lock: one deploy per environment at a time.',
  'release-command': 'A command run once per deploy (database migrations, any release task) in a one-off container of the new image, after the pull and before any traffic moves; a non-zero exit stops the deploy with no container changed.',
  canary: 'The canary hold and the error budget, judged by the load balancers\' counters; needs haproxy. Absent: no hold, no rollback for errors.',
  rollout: 'How each host\'s containers are replaced: backup-first (the default) or no-gap.',
};

export const topScalars = {
  'retain-images': withDefault(integer(1, 100), 3, 'Images of the app kept on each host (never one in use, the target, or the release before it).'),
  /** Hosts updated at once: a number, or a percentage of the environment's hosts ("50%"). */
  'max-parallel': withDefault(countOrPercent, '50%' as number | `${number}%`, 'Hosts updated at once: a number, or a percentage of the hosts ("50%", rounded down, at least one).'),
};

export const environmentScalars = {
  hosts: required(list(host, { unique: true, nonEmpty: true }), 'The application hosts of this environment.'),
  url: optional(text(/^https?:\/\/\S+$/, 'an http(s) URL'), 'The environment\'s URL, shown in GitHub\'s deployment records.'),
  'require-approval': withDefault(boolean, false, 'Deploy only in a run that a required reviewer of this GitHub environment approved.'),
  'promote-from': optional(text(/^[A-Za-z0-9_-]+$/, 'an environment name'), 'Take only the digest this other environment ran successfully for the same version.'),
};

export const ENVIRONMENT_NAME = /^[A-Za-z0-9_-]{1,64}$/;

export type BuildConfig = Complete<typeof buildSchema>;
export type ContainerConfig = Complete<typeof containerSchema>;
export type PortsConfig = Complete<typeof portsSchema>;
export type HealthConfig = Complete<typeof healthSchema>;
export type SshConfig = Complete<typeof sshSchema>;
/** The haproxy section, with `host` / `hosts` read into the list of load balancers. */
export type HaproxyConfig = Omit<Complete<typeof haproxySchema>, 'host' | 'hosts'> & { hosts: string[] };
export type LockConfig = Complete<typeof lockSchema>;
export type CanaryConfig = Complete<typeof canarySchema>;
export type RolloutConfig = Complete<typeof rolloutSchema>;
export type ReleaseCommandConfig = Complete<typeof releaseCommandSchema>;

/** One role beside the web role, as an environment runs it (defaults and the app's container settings applied). */
export interface RoleConfig {
  name: string;
  command: string[];
  /** The environment's hosts that run it, in the environment's order. */
  hosts: string[];
  /** container.env with the role's own added. */
  env: Record<string, string>;
  /** container.secrets with the role's own added. */
  secrets: string[];
  count: number;
  stopTimeout: number;
  ready: ReadyRule;
}

/** Everything a deploy to one environment needs, after that environment's overrides. */
export interface EnvironmentConfig {
  name: string;
  hosts: string[];
  url?: string;
  requireApproval: boolean;
  promoteFrom?: string;
  container: ContainerConfig;
  ports: PortsConfig;
  health: HealthConfig;
  ssh: SshConfig;
  /** Absent: no load balancer; the deploy replaces containers in place and warns. */
  haproxy?: HaproxyConfig;
  lock: LockConfig;
  /** Absent: no canary hold and no error budget (the receipt is written all the same). */
  canary?: CanaryConfig;
  /** Absent: no release command. */
  releaseCommand?: ReleaseCommandConfig;
  /** The roles beside the web role (top-level `roles`, with the environment's `roles` merged in); empty: none. */
  roles: RoleConfig[];
  retainImages: number;
  /** Hosts updated at once, max-parallel resolved against the number of hosts. */
  maxParallel: number;
  rollout: RolloutConfig;
}

export interface Config {
  /** Master container name; the backup is `${app}-backup`. */
  app: string;
  /** Image repository without tag, e.g. registry.example.com/clay/mobile. */
  image: string;
  build: BuildConfig;
  environments: Record<string, EnvironmentConfig>;
}
