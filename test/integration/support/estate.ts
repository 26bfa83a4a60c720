// The running test estate (test/estate/estate.sh up), as its estate.json describes it: where
// the registry, hosts and load balancers are, and how to reach them the way the action does.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { SshOptions } from '../../../src/drivers/ssh.js';
import type { RegistryCredentials } from '../../../src/rollout/ports.js';

/** The repository's root: the nearest folder up with action.yml (also from compiled copies). */
export const REPO_ROOT = ((): string => {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    if (existsSync(join(dir, 'action.yml'))) return dir;
  }
  throw new Error('not inside the deploy-action repository');
})();
const ESTATE_SCRIPT = join(REPO_ROOT, 'test/estate/estate.sh');

export interface EstateLoadBalancer {
  address: string;
  frontend: string;
  backend: string;
  socket: string;
}

export interface EstateEnvironment {
  /** The first load balancer. */
  lb: EstateLoadBalancer;
  /** Every load balancer, peers in front of the same hosts (production has two). */
  lbs: EstateLoadBalancer[];
  hosts: string[];
}

/** The estate's node name of a load balancer address (lb-staging, lb-production, lb-production2). */
export function lbNodeOf(estate: Estate, address: string): string {
  const nodes: Record<string, string[]> = { staging: ['lb-staging'], production: ['lb-production', 'lb-production2'] };
  for (const [environment, names] of Object.entries(nodes)) {
    const index = estate.environments[environment as 'staging' | 'production'].lbs.findIndex((lb) => lb.address === address);
    if (index >= 0) return names[index]!;
  }
  throw new Error(`${address} is not a load balancer of the estate`);
}

/** One Runtime API command on a load balancer, asked inside its node (not through the action). */
export async function lbCommand(estate: Estate, lb: EstateLoadBalancer, command: string): Promise<string> {
  return execIn(lbNodeOf(estate, lb.address), 'sh', '-c', `echo "${command}" | socat - UNIX-CONNECT:${lb.socket}`);
}

export interface Estate {
  registry: { address: string; username: string; password: string };
  /** unix:///... socket of the runner's own engine (builds and pushes). */
  runnerDockerHost: string;
  /** A docker CLI with BuildKit built in. */
  dockerCli: string;
  sshUser: string;
  sshKey: string;
  knownHosts: string;
  environments: Record<'staging' | 'production', EstateEnvironment>;
}

export function loadEstate(): Estate {
  const dir = process.env.ESTATE_DIR || '/var/lib/deploy-action-estate';
  try {
    return JSON.parse(readFileSync(join(dir, 'estate.json'), 'utf8')) as Estate;
  } catch (error) {
    throw new Error(`no test estate in ${dir} (${(error as Error).message}): run bash test/estate/estate.sh up`);
  }
}

/** SSH options for a host or load balancer, with the estate's key and known_hosts. */
export function sshOptions(estate: Estate, host: string, overrides: Partial<SshOptions> = {}): SshOptions {
  return {
    host,
    port: 22,
    username: estate.sshUser,
    privateKey: readFileSync(estate.sshKey, 'utf8'),
    knownHosts: readFileSync(estate.knownHosts, 'utf8'),
    connectTimeoutSeconds: 10,
    keepaliveIntervalSeconds: 5,
    ...overrides,
  };
}

export function registryAuth(estate: Estate): RegistryCredentials {
  const { address, username, password } = estate.registry;
  return { username, password, serveraddress: address };
}

/** The estate's node name (stg1, prd2, ...) of a host address. */
export function nodeOf(estate: Estate, address: string): string {
  for (const [environment, prefix] of [['staging', 'stg'], ['production', 'prd']] as const) {
    const index = estate.environments[environment].hosts.indexOf(address);
    if (index >= 0) return `${prefix}${index + 1}`;
  }
  throw new Error(`${address} is not a host of the estate`);
}

/**
 * Runs a command inside an estate node, beside the action's own path (no SSH): for tests to
 * look at a host's engine independently of the drivers under test.
 */
export async function execIn(node: string, ...command: string[]): Promise<string> {
  const { stdout } = await promisify(execFile)('bash', [ESTATE_SCRIPT, 'exec', node, ...command], {
    maxBuffer: 16 * 1024 * 1024,
  });
  return stdout;
}

/** One column of `show stat` for a server on one load balancer (status, scur, ...); '?' when absent. */
export async function serverStat(estate: Estate, lb: EstateLoadBalancer, server: string, column: string): Promise<string> {
  const csv = await lbCommand(estate, lb, `show stat ${lb.backend} 4 -1`);
  const header = csv.split('\n')[0]!.replace(/^# /, '').split(',');
  const row = csv.split('\n').map((line) => line.split(',')).find((cells) => cells[1] === server);
  return row?.[header.indexOf(column)] ?? '?';
}

/** The status column HAProxy shows for a server on one load balancer (UP, MAINT, DRAIN, ...). */
export function serverStatus(estate: Estate, lb: EstateLoadBalancer, server: string): Promise<string> {
  return serverStat(estate, lb, server, 'status');
}

export interface KillWatch {
  /** Names of the containers Docker signalled (a stop's SIGTERM, a SIGKILL), in order. */
  readonly names: string[];
  stop(): void;
}

/**
 * Watches a host's engine for containers being signalled to stop (Docker's `kill` event: every
 * stop begins with one), calling `onKill` with each container's name. The watch runs beside the
 * action, on the host's own engine.
 */
export function watchKills(estate: Estate, host: string, onKill: (name: string) => void = () => {}): KillWatch {
  return watchEvents(estate, host, 'kill', onKill);
}

/**
 * Watches a host's engine for one kind of container event (kill, rename, start, ...), calling
 * `onEvent` with each container's name (its new name, for a rename).
 */
export function watchEvents(estate: Estate, host: string, event: string, onEvent: (name: string) => void = () => {}): KillWatch {
  // Its own process group: stopping it must end `docker events` inside the node too, not only
  // the shell that started it (an orphan would linger until the host's next event).
  const events = spawn('bash', [ESTATE_SCRIPT, 'exec', nodeOf(estate, host), 'docker', 'events', '--filter', `event=${event}`, '--format', '{{.Actor.Attributes.name}}'], { detached: true });
  const names: string[] = [];
  events.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    for (const name of chunk.split('\n').filter(Boolean)) {
      names.push(name);
      onEvent(name);
    }
  });
  return {
    names,
    stop: () => {
      try {
        if (events.pid) process.kill(-events.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    },
  };
}

/**
 * Calls `then` the first time Docker signals the master container (`demo`) on `host` to stop: the
 * moment its replacement begins. Returns what stops watching.
 */
export function onMasterStop(estate: Estate, host: string, then: () => void): () => void {
  let fired = false;
  const watch = watchKills(estate, host, (name) => {
    if (!fired && name === 'demo') {
      fired = true;
      then();
    }
  });
  return () => watch.stop();
}
