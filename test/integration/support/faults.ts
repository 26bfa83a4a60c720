// Faults caused for real on the estate, shared by the fault tests and `npm run chaos`: a node's
// link cut and restored, the load balancers reloaded, a deploy struck the moment a host's master
// begins to stop, and what a fault left behind (servers out of rotation, hosts with mixed
// roles, the lock).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ActionRun } from './action.js';
import { containersOn, versionsOn } from './deploy.js';
import { REPO_ROOT, onMasterStop, serverStatus, type Estate } from './estate.js';

const run = promisify(execFile);
const ESTATE_SCRIPT = join(REPO_ROOT, 'test/estate/estate.sh');
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

/**
 * A node's link to the bridge (its veth, daev + the address's last octet), down or up: the host
 * or load balancer drops off the network, its processes still running, as when a cable or a
 * switch port goes.
 */
export function setLink(address: string, state: 'up' | 'down'): Promise<unknown> {
  return run('ip', ['link', 'set', `daev${address.split('.').at(-1)}`, state]);
}

/** Reloads every HAProxy of an environment (`estate.sh reload`, runtime state kept in the state file). */
export async function reloadLoadBalancers(environment: 'staging' | 'production'): Promise<{ began: number; ended: number }> {
  const began = Date.now();
  await run('bash', [ESTATE_SCRIPT, 'reload', environment]);
  return { began, ended: Date.now() };
}

/**
 * The runner's cancel: SIGINT now, then SIGTERM at 7.5 s and SIGKILL at 10 s should the action
 * still run. Returns what clears the signals still pending, for once the action has exited.
 */
export function cancelAsRunner(pid: number): () => void {
  process.kill(pid, 'SIGINT');
  const timers = [setTimeout(() => process.kill(pid, 'SIGTERM'), 7_500), setTimeout(() => process.kill(pid, 'SIGKILL'), 10_000)];
  return () => timers.forEach(clearTimeout);
}

/**
 * SIGKILLs `pid` (no post step: a runner lost) the first time `seen` holds, asked every `everyMs`.
 * Returns whether it has killed. Ticks overlap while `seen` awaits: only the first that sees it kills.
 */
export function killWhen(pid: number, seen: () => Promise<boolean>, everyMs: number): () => boolean {
  let killed = false;
  const poll = setInterval(async () => {
    if (killed || !(await seen()) || killed) return;
    killed = true;
    clearInterval(poll);
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // It ended on its own: the test's assertions say how.
    }
  }, everyMs);
  return () => killed;
}

export interface Struck {
  run: ActionRun;
  /** When the fault struck (0 when it never did: the master never began to stop). */
  struckAt: number;
  exitedAt: number;
}

/**
 * Runs `start` (a deploy, handed the onStart to pass on) and calls `strike` with the action's pid
 * the moment `host`'s master begins to stop: its server is out of service on every load
 * balancer, its container going.
 */
export async function strikeAtMasterStop(
  estate: Estate,
  host: string,
  start: (onStart: (pid: number) => void) => Promise<ActionRun>,
  strike: (pid: number) => unknown,
): Promise<Struck> {
  let struckAt = 0;
  let stopWatching = () => {};
  const done = await start((pid) => {
    stopWatching = onMasterStop(estate, host, () => {
      struckAt = Date.now();
      void strike(pid);
    });
  }).finally(() => stopWatching());
  return { run: done, struckAt, exitedAt: Date.now() };
}

export interface Aftermath {
  /** Servers not UP, as `LB SERVER STATUS`. */
  outOfRotation: string[];
  /** Hosts whose master and backup do not both run one release, as `HOST: master …, backup …`. */
  mixed: string[];
  lockLeft: boolean;
}

/**
 * What a fault left in an environment: every server of `hosts` on every load balancer that is not
 * UP, every host whose roles do not run one release, and whether the deploy lock is left. The
 * `lost` host is HAProxy's to judge and its engine unreachable: it is left out.
 */
export async function aftermath(estate: Estate, environment: 'staging' | 'production', hosts: string[], lost?: string): Promise<Aftermath> {
  const { lbs, hosts: all } = estate.environments[environment];
  const reachable = hosts.filter((host) => host !== lost);
  const outOfRotation: string[] = [];
  for (const lb of lbs) {
    for (const host of reachable) {
      for (const role of ['master', 'backup']) {
        const server = `h${all.indexOf(host) + 1}-${role}`;
        const status = await serverStatus(estate, lb, server);
        if (!status.startsWith('UP')) outOfRotation.push(`${lb.address} ${server} ${status}`);
      }
    }
  }
  const mixed = Object.entries(await versionsOn(estate, reachable))
    .filter(([, roles]) => roles.demo !== roles['demo-backup'] || !roles.demo?.endsWith(' running'))
    .map(([host, roles]) => `${host}: master ${roles.demo ?? 'none'}, backup ${roles['demo-backup'] ?? 'none'}`);
  const lockHost = [...hosts].sort()[0]!;
  const lockLeft = lockHost !== lost && (await containersOn(estate, lockHost)).some((c) => c.name === 'demo-deploy-lock');
  return { outOfRotation, mixed, lockLeft };
}

/**
 * After a link comes back: waits (up to `timeoutMs`) until HAProxy's own checks report every
 * server of `hosts` UP on every load balancer again; returns what is still out.
 */
export async function backInRotation(estate: Estate, environment: 'staging' | 'production', hosts: string[], timeoutMs = 30_000): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { outOfRotation } = await aftermath(estate, environment, hosts);
    if (outOfRotation.length === 0 || Date.now() >= deadline) return outOfRotation;
    await sleep(500);
  }
}
