// What deploy, rollback and plan share: connect to an environment (one SSH connection per host
// and one to the load balancer), read what runs there, pin the release to a registry digest,
// and find each host's servers in HAProxy. Nothing here changes a host.
import * as core from '@actions/core';
import type { Config, EnvironmentConfig } from '../config/schema.js';
import { ConnectionPool, pooled } from '../drivers/connection-pool.js';
import { connectHost, type DockerHost } from '../drivers/docker/host.js';
import { connectLoadBalancer, type HaproxyRuntime } from '../drivers/haproxy.js';
import { LoadBalancers, type HeldSnapshot } from '../drivers/load-balancers.js';
import type { SshOptions } from '../drivers/ssh.js';
import { InputError, type Inputs } from '../inputs.js';
import { splitRepository } from '../release/image.js';
import { infoUntrusted } from '../report/untrusted.js';
import type { LoadBalancing, Logger } from '../rollout/execute.js';
import { runningReleases, type HostTarget } from '../rollout/plan.js';
import { containerName, oldName } from '../rollout/spec.js';
import type { FleetCounters, RegistryCredentials, Release, Role, Slot } from '../rollout/ports.js';

export class PreflightError extends Error {
  override name = 'PreflightError';
}

export interface Connected {
  env: EnvironmentConfig;
  /** The configured image: what the hosts' labels must name to be trusted. */
  image: string;
  hosts: Map<string, DockerHost>;
  /** Every load balancer (haproxy.hosts), in the order configured; empty without a haproxy section. */
  lbs: { host: string; runtime: HaproxyRuntime }[];
  auth?: RegistryCredentials;
  /** The slot each role's container runs in, where not a (readHosts fills it). */
  slots?: Map<string, Partial<Record<Role, Slot>>>;
  dispose(): void;
}

export const coreLogger = (fold: boolean): Logger => ({
  // What the rollout reports carries container logs and health answers.
  info: infoUntrusted,
  warning: (line) => core.warning(line),
  // Parallel hosts would interleave inside one fold: fold only when hosts go one at a time.
  group: (title, run) => (fold ? core.group(title, run) : run()),
});

export function sshOptions(inputs: Inputs, env: EnvironmentConfig, host: string): SshOptions {
  const jump = env.ssh['proxy-jump'];
  const options: SshOptions = {
    host,
    port: env.ssh.port,
    username: env.ssh.user,
    privateKey: inputs.ssh.privateKey,
    knownHosts: inputs.ssh.knownHosts,
    connectTimeoutSeconds: env.ssh['connect-timeout'],
    keepaliveIntervalSeconds: env.ssh['keepalive-interval'],
  };
  if (jump) {
    const match = /^(?:([^@]+)@)?(.+?)(?::(\d+))?$/.exec(jump)!;
    options.proxyJump = { username: match[1] ?? env.ssh.user, host: match[2]!, port: Number(match[3] ?? 22) };
  }
  return options;
}

export function requireSshInputs(inputs: Inputs): void {
  if (!inputs.ssh.privateKey) throw new InputError('ssh-private-key: required to reach the hosts (the deploy user\'s private key)');
  if (!inputs.ssh.knownHosts.trim()) {
    throw new InputError('ssh-known-hosts: required; host keys are always verified (known_hosts lines for every host and the load balancer)');
  }
}

/**
 * Opens every connection at once (with ssh.max-connections, the load balancers' only: the hosts
 * then go through a pool that opens at most that many at once, each when a call needs it, and
 * pre-flight's first reading of every host says which cannot be reached).
 */
export async function connect(inputs: Inputs, config: Config, env: EnvironmentConfig): Promise<Connected> {
  requireSshInputs(inputs);
  const { username, password } = inputs.registry;
  const auth = username ? { username, password, serveraddress: splitRepository(config.image).registry } : undefined;
  const max = env.ssh['max-connections'];
  const pool = max === undefined ? undefined : new ConnectionPool<DockerHost>(max, (host) => connectHost(sshOptions(inputs, env, host)), (host) => host.dispose());
  const balancers = env.haproxy?.hosts ?? [];
  const opened = await openAll(env, [
    ...(pool ? [] : env.hosts.map((host) => connectHost(sshOptions(inputs, env, host)))),
    ...balancers.map((lb) => connectLoadBalancer(sshOptions(inputs, env, lb), env.haproxy!)),
  ]);
  const hostCount = pool ? 0 : env.hosts.length;
  const hosts = new Map(env.hosts.map((host, i) => [host, pool ? pooled<DockerHost>(host, pool, { host, dispose: () => undefined }) : (opened[i] as DockerHost)]));
  const lbs = balancers.map((host, i) => ({ host, runtime: opened[hostCount + i] as HaproxyRuntime }));
  return {
    env,
    image: config.image,
    hosts,
    lbs,
    ...(auth ? { auth } : {}),
    dispose: () => {
      pool?.dispose();
      opened.forEach((c) => c.dispose());
    },
  };
}

/** Every connection opened, or none: any failure closes the others and names each host at fault. */
async function openAll(env: EnvironmentConfig, attempts: Promise<DockerHost | HaproxyRuntime>[]): Promise<(DockerHost | HaproxyRuntime)[]> {
  const settled = await Promise.allSettled(attempts);
  const opened = settled.flatMap((s) => (s.status === 'fulfilled' ? [s.value] : []));
  const failures = settled.flatMap((s) => (s.status === 'rejected' ? [String((s.reason as Error).message ?? s.reason)] : []));
  if (failures.length > 0) {
    for (const connection of opened) connection.dispose();
    throw new PreflightError(`cannot reach the ${env.name} environment:\n  ${failures.join('\n  ')}`);
  }
  return opened;
}

/** Runs `operation` on every host at once; all failures are reported together. */
export async function onEveryHost<T>(hosts: Map<string, DockerHost>, what: string, operation: (host: DockerHost) => Promise<T>): Promise<Map<string, T>> {
  return everyHost(hosts, what, operation).all();
}

/** Operations started on every host at once: one host's can be awaited alone, all() reports every failure together. */
export interface OnEveryHost<T> {
  of(host: string): Promise<T>;
  all(): Promise<Map<string, T>>;
}

export function everyHost<T>(hosts: Map<string, DockerHost>, what: string, operation: (host: DockerHost) => Promise<T>): OnEveryHost<T> {
  const entries = [...hosts.values()];
  const started = entries.map(operation);
  // Reported by all(); a caller awaiting one host must not leave the others' failures unhandled.
  for (const operation of started) operation.catch(() => undefined);
  return {
    of: (host) => started[entries.findIndex((entry) => entry.host === host)]!,
    all: async () => {
      const settled = await Promise.allSettled(started);
      const failures = settled.flatMap((s, i) => (s.status === 'rejected' ? [`${entries[i]!.host}: ${(s.reason as Error).message ?? s.reason}`] : []));
      if (failures.length > 0) throw new PreflightError(`${what} failed:\n  ${failures.join('\n  ')}`);
      return new Map(settled.map((s, i) => [entries[i]!.host, (s as PromiseFulfilledResult<T>).value]));
    },
  };
}

/**
 * The release's image pulled on every host at once (the lock is a container created from it, and
 * a pull changes no container): await one host's pull with of(host), or all of them with all().
 */
export function pullEverywhere(connected: Connected, target: Release): OnEveryHost<void> {
  return everyHost(connected.hosts, `Pulling ${target.ref}`, async (host) => {
    await host.pull(target.ref, connected.auth, (line) => infoUntrusted(`[${host.host}] ${line}`));
    core.info(`[${host.host}] has ${target.ref}`);
  });
}

/**
 * The old containers a no-gap switch left under their step-aside names (APP-old, APP-backup-old):
 * the run that renamed one was killed before it finished. Pre-flight stops on them; command:
 * check reports them.
 */
export async function steppedAside(host: DockerHost, app: string): Promise<{ role: Role; name: string; state: string }[]> {
  const found: { role: Role; name: string; state: string }[] = [];
  for (const role of ['master', 'backup'] as const) {
    const name = oldName(app, role);
    const state = await host.containerState(name);
    if (state) found.push({ role, name, state: state.state });
  }
  return found;
}

/** What to do about an APP-old: whether it or the role's container serves depends on how far the cut-short run got, so nothing guesses. */
export const steppedAsideFix = (app: string, { role, name }: { role: Role; name: string }) =>
  `Look at which of ${name} and ${containerName(app, role)} the load balancers send requests to (command: status), keep that one under the name ${containerName(app, role)}, remove the other, then deploy again`;

/** A no-gap switch cut short: the deploy stops before any change. */
async function refuseSteppedAside(host: DockerHost, app: string): Promise<void> {
  const [left] = await steppedAside(host, app);
  if (left) {
    throw new PreflightError(
      `${host.host}: ${left.name} exists (${left.state}): a no-gap deploy was cut short while it switched the ${left.role}. ${steppedAsideFix(app, left)}`,
    );
  }
}

/**
 * What each host runs now (from container labels). `repairing`: for the interrupted-run repair,
 * which finishes a no-gap switch cut short itself (an APP-old stops anything else).
 */
export async function readHosts(connected: Connected, app: string, { repairing = false } = {}): Promise<Map<string, HostTarget>> {
  const containers = await onEveryHost(connected.hosts, 'Reading the running containers', async (host) => {
    await host.ping();
    if (connected.env.rollout.procedure === 'no-gap' && !repairing) await refuseSteppedAside(host, app);
    return host.containers(app, { repository: connected.image, warn: (line) => core.warning(line) });
  });
  connected.slots = new Map(
    [...containers].map(([host, found]) => [host, Object.fromEntries((['master', 'backup'] as const).flatMap((role) => (found[role]?.running && found[role]?.slot ? [[role, found[role]!.slot]] : [])))]),
  );
  return new Map([...containers].map(([host, found]) => [host, runningReleases(found)]));
}

/**
 * The release pinned to the digest the registry holds for `tag`. When a digest is expected (the
 * build job's, or the one a release ran at), the tag must still point to it: a tag moved since
 * is not what was tested, or not what ran.
 */
export async function pinRelease(connected: Connected, image: string, tag: string, expectedDigest: string, expectedFrom: string): Promise<Release> {
  const first = connected.hosts.values().next().value as DockerHost;
  const digest = await first.resolveDigest(image, tag, connected.auth);
  if (!digest) throw new PreflightError(`${image}:${tag} is not in the registry: build and push it first (command: build)`);
  if (expectedDigest && digest !== expectedDigest) {
    throw new PreflightError(`${image}:${tag} now resolves to ${digest}, not ${expectedFrom} ${expectedDigest}: the tag moved since`);
  }
  return { version: tag, digest, ref: `${image}@${digest}` };
}

/** The servers a rollout drives; heldOn: what the operator had out of service before this run, for the journal to leave so. */
export type Servers = LoadBalancing & { heldOn: HeldSnapshot };

/** What a run cut short left, as findServers needs it: the servers it took out, and what the operator held before it. */
export type LeftBehind = { outOfService: string[]; heldOn: HeldSnapshot };

/**
 * Each host's master and backup server on every load balancer, found by address and port, and
 * which of them are out of service before the deploy: those an operator put there stay there.
 * `leftBy`, the journal of a run cut short (read by its post step, or by a run that took its
 * lock over): the servers that run took out are its leftovers and go back in service once
 * healthy, unless the operator had them out before it (its `heldOn`). After a takeover of a lock
 * whose run kept no journal, every server out of service counts as the operator's.
 */
export async function findServers(
  connected: Connected,
  { tookOverLock, leftBy, running }: { tookOverLock: boolean; leftBy?: LeftBehind; running?: Map<string, HostTarget> },
): Promise<Servers | undefined> {
  const { env, lbs } = connected;
  if (lbs.length === 0 || !env.haproxy) return undefined;
  // Containers in slot b (a no-gap deploy put them there) are served by the spare servers: any
  // procedure needs those then. Otherwise only no-gap looks for them: a backup-first deploy's
  // fleet, readings and receipt stay those of the two servers per host.
  const active = new Map([...(connected.slots ?? [])].map(([host, slots]) => [host, { ...slots }]));
  const inSlotB = [...active].some(([, slots]) => Object.values(slots).includes('b'));
  const sparePorts = env.rollout.procedure === 'no-gap' || inSlotB ? { master: env.ports['master-spare'], backup: env.ports['backup-spare'] } : undefined;
  const { fleet, servers, missing, spares, sparesMissing } = await LoadBalancers.locate(lbs, env.hosts, env.ports, sparePorts);
  if (missing.length > 0) {
    throw new PreflightError(
      `HAProxy backend ${env.haproxy.backend}: ${missing.join('; ')}; add them (command: haproxy-config prints a backend that fits)`,
    );
  }
  if (sparesMissing.length > 0) {
    throw new PreflightError(
      `HAProxy backend ${env.haproxy.backend}: ${sparesMissing.join('; ')}; ` +
        (env.rollout.procedure === 'no-gap' ? 'rollout.procedure no-gap needs a spare server per role and host' : 'containers run on their spare ports (a no-gap deploy put them there)') +
        ': add the spare server lines that command: haproxy-config prints',
    );
  }
  const slots = sparesMissing.length === 0 && spares.size > 0 ? { spares, active } : undefined;
  const roleOf = new Map(
    [...servers, ...spares].flatMap(([host, roles]) => (['master', 'backup'] as const).map((role) => [roles[role], { host, role }] as const)),
  );
  // The server of the slot a role's container is not in: out of service by design, the deploy's own.
  const idle = new Set(
    [...servers].flatMap(([host, roles]) =>
      (['master', 'backup'] as const).map((role) => ((active.get(host)?.[role] ?? 'a') === 'b' ? roles[role] : spares.get(host)?.[role])).filter((s): s is string => s !== undefined),
    ),
  );
  const heldBefore = new Set((leftBy?.heldOn ?? []).map(([server]) => server));
  for (const [server, { where }] of await fleet.readHeld()) {
    if (idle.has(server)) {
      fleet.forgetHeld(server);
      continue;
    }
    const { host, role } = roleOf.get(server)!;
    if (running && !running.get(host)?.[role]) {
      // No container serves there: nothing for an operator to hold; a rollback of a first deploy
      // leaves its servers so. It goes in service once its new container is healthy.
      core.info(`${server} is out of service (${where}) and has no running container: it goes in service once one is healthy`);
      fleet.forgetHeld(server);
      continue;
    }
    if (leftBy?.outOfService.includes(server) && !heldBefore.has(server)) {
      core.info(`${server} is out of service (${where}), taken out by the run cut short: it goes back in service once healthy`);
      fleet.forgetHeld(server);
      continue;
    }
    core.warning(
      `${server} is out of service (${where}), not READY: its containers are updated, and it is left as the operator set it ` +
        `(to put it back: set server ${env.haproxy.backend}/<server> state ready on that load balancer)` +
        (tookOverLock && !leftBy ? '; the run whose lock was taken over kept no journal saying otherwise' : ''),
    );
  }
  // Held before the run cut short: the state the operator set then, not the one that run left.
  const snapshot = fleet.heldSnapshot().map(([server, members]) => [server, heldBefore.has(server) ? leftBy!.heldOn.find(([s]) => s === server)![1] : members] as HeldSnapshot[number]);
  const held = fleet.loadHeld(snapshot);
  return {
    driver: fleet,
    servers,
    held,
    heldOn: snapshot,
    drainTimeoutSeconds: env.haproxy['drain-timeout'],
    onDrainTimeout: env.haproxy['on-drain-timeout'],
    ...(slots ? { slots } : {}),
  };
}

/**
 * Why a canary section cannot work with these load balancers, or undefined: a backend in mode
 * tcp counts no HTTP requests, so the canary would judge nothing and every release would pass
 * ("too few to judge"). Refused in pre-flight, before anything changes.
 */
export function canaryRefusal(env: EnvironmentConfig, reading: FleetCounters): string | undefined {
  if (!env.canary || !env.haproxy || !reading.withoutHttp?.length) return undefined;
  return (
    `environments.${env.name}.canary: HAProxy backend ${env.haproxy.backend} counts no HTTP requests on ${reading.withoutHttp.join(', ')} ` +
    '(mode tcp), so the canary would judge nothing; set mode http in that backend, or remove the canary section'
  );
}

