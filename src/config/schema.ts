// The shape of .github/deploy.yml: one schema per section, shared by the top level and by the
// environment overrides, so an override can never hold a key the top level would reject.
import { isIP } from 'node:net';
import {
  ENV_NAME,
  boolean,
  integer,
  list,
  optional,
  required,
  stringMap,
  text,
  withDefault,
  type Complete,
  type Reader,
} from './fields.js';

const HOST_LABEL = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const host: Reader<string> = (value, path, problems) => {
  if (typeof value === 'string' && (isIP(value) !== 0 || HOST_LABEL.test(value))) return value;
  problems.push({ path, message: 'not a host name or address' });
  return undefined;
};

/** container.bind: an IP address, or `host` (each host's own address as listed in hosts). */
const bindAddress: Reader<string> = (value, path, problems) => {
  if (typeof value === 'string' && (value === 'host' || isIP(value) !== 0)) return value;
  problems.push({ path, message: 'expected an IPv4 or IPv6 address (0.0.0.0: every interface), or host (the address each host is listed under)' });
  return undefined;
};

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

/** A whole number from 1 to 100, or a percentage "1%" to "100%" (of the hosts). */
const countOrPercent: Reader<number | `${number}%`> = (value, path, problems) => {
  if (Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 100) return value as number;
  if (typeof value === 'string' && /^(100|[1-9][0-9]?)%$/.test(value)) return value as `${number}%`;
  problems.push({ path, message: `expected a whole number from 1 to 100 or a percentage like "50%", got ${JSON.stringify(value)}` });
  return undefined;
};
const seconds = (max: number) => integer(1, max);
const names = list(text(ENV_NAME, 'an environment variable name'), { unique: true });

export const buildSchema = {
  context: withDefault(text(/^[^\0]+$/, 'a directory'), '.'),
  dockerfile: withDefault(text(/^[^\0]+$/, 'a file path'), 'Dockerfile'),
  target: withDefault(text(/^([A-Za-z0-9][A-Za-z0-9_.-]*)?$/, 'a build stage name'), ''),
  args: withDefault(stringMap, {}),
  secrets: withDefault(names, []),
  latest: withDefault(boolean, true),
};

export const containerSchema = {
  port: required(port),
  env: withDefault(stringMap, {}),
  secrets: withDefault(names, []),
  volumes: withDefault(list(text(VOLUME, 'a volume like /host/path:/container/path[:ro]')), []),
  restart: withDefault(text(RESTART, 'a Docker restart policy (no, always, unless-stopped, on-failure[:N])'), 'on-failure'),
  'stop-timeout': withDefault(integer(0, 3600), 30),
  init: withDefault(boolean, true),
  // Absent: Docker's default, every interface (IPv4 and IPv6), as before this key existed; the
  // README advises the address HAProxy reaches.
  bind: optional(bindAddress),
};

export const portsSchema = {
  master: withDefault(port, 50000),
  backup: withDefault(port, 50001),
};

export const healthSchema = {
  path: withDefault(text(URL_PATH, 'a URL path starting with /'), '/healthcheck'),
  timeout: withDefault(seconds(3600), 60),
  interval: withDefault(seconds(60), 1),
};

export const sshSchema = {
  user: withDefault(text(/^[a-z_][a-z0-9_.-]{0,31}$/, 'a user name'), 'deploy'),
  port: withDefault(port, 22),
  'proxy-jump': optional(text(PROXY_JUMP, 'a jump host like user@bastion.example.com:22')),
  'connect-timeout': withDefault(seconds(300), 15),
  'keepalive-interval': withDefault(seconds(300), 10),
};

export const haproxySchema = {
  /** One load balancer; `hosts` for several (exactly one of the two). */
  host: optional(host),
  /** Every load balancer in front of the environment's hosts: all are driven as peers. */
  hosts: optional(list(host, { unique: true, nonEmpty: true })),
  socket: withDefault(text(SOCKET_PATH, 'an absolute socket path'), '/run/haproxy/admin.sock'),
  backend: required(text(/^[A-Za-z0-9_.:-]+$/, 'an HAProxy backend name')),
  'drain-timeout': withDefault(seconds(3600), 30),
  /** Sessions still open at the drain timeout: fail the step (server put back), or cut them. */
  'on-drain-timeout': withDefault(text(/^(fail|cut)$/, 'fail or cut') as Reader<'fail' | 'cut'>, 'fail'),
};

export const lockSchema = {
  /** How long a deploy waits for another one on the same environment before failing. */
  wait: withDefault(integer(0, 3600), 0),
  /** A lock older than this, or whose run has ended, is stale (see takeover). */
  'stale-after': withDefault(seconds(86400), 3600),
  /** Take over a stale lock (reported in the log) instead of failing. */
  takeover: withDefault(boolean, false),
};

/** Sections an environment may override (deep merge), as Kamal destinations do. */
export const overridable = {
  container: containerSchema,
  ports: portsSchema,
  health: healthSchema,
  ssh: sshSchema,
  haproxy: haproxySchema,
  lock: lockSchema,
} as const;

export const topScalars = {
  'retain-images': withDefault(integer(1, 100), 3),
  /** Hosts updated at once: a number, or a percentage of the environment's hosts ("50%"). */
  'max-parallel': withDefault(countOrPercent, '50%' as number | `${number}%`),
};

export const environmentScalars = {
  hosts: required(list(host, { unique: true, nonEmpty: true })),
  url: optional(text(/^https?:\/\/\S+$/, 'an http(s) URL')),
  'require-approval': withDefault(boolean, false),
  'promote-from': optional(text(/^[A-Za-z0-9_-]+$/, 'an environment name')),
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
  retainImages: number;
  /** Hosts updated at once, max-parallel resolved against the number of hosts. */
  maxParallel: number;
}

export interface Config {
  /** Master container name; the backup is `${app}-backup`. */
  app: string;
  /** Image repository without tag, e.g. registry.example.com/clay/mobile. */
  image: string;
  build: BuildConfig;
  environments: Record<string, EnvironmentConfig>;
}
