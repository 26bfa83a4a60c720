// npm run bench -- --simulate: the rollout at 10, 100 and 1,000 hosts behind 1 to 4 load
// balancers, in virtual time. The action's own planner (planRollout), executor (executeRollout)
// and load balancer fleet (LoadBalancers: locate, readHeld, every state change and status read)
// run over the shared in-memory estate (test/support/memory-estate.ts), whose every call waits
// what the latency model below says. Hosts share no CPU; each load balancer answers its Runtime
// API commands one at a time, so a command waits for those before it (HAProxy's CLI runs on one
// thread). What this measures is the action's structure at scale: how many commands, how many
// at once, how long each waits. It does not measure ssh2 or dockerode themselves.
import { ConnectionPool, pooled } from '../src/drivers/connection-pool.js';
import { LoadBalancers } from '../src/drivers/load-balancers.js';
import { executeRollout } from '../src/rollout/execute.js';
import { planRollout } from '../src/rollout/plan.js';
import type { Role } from '../src/rollout/ports.js';
import { EventClock } from '../test/support/event-clock.js';
import { MemoryHost, MemoryLoadBalancer, PORTS, hostTarget, memoryEstate, release, type Call } from '../test/support/memory-estate.js';

/**
 * The latency model, in ms. A round trip between the runner and a host or load balancer (an SSH
 * channel's request and answer; a GitHub-hosted runner is far from the estate); each Docker
 * operation's own time on the host; each Runtime API command's time inside HAProxy, by what it
 * reads (show stat and show servers state list every server of the backend).
 */
export const MODEL = {
  roundTripMs: 30,
  /** An SSH connection's handshake (key exchange, host key check, login), beyond its round trip. */
  connectMs: 150,
  host: { ping: 0, containers: 5, resolve: 150, pull: 3000, stop: 600, remove: 50, rename: 10, start: 300, run: 700, health: 800, lock: 50, unlock: 30, prune: 200 } as Record<string, number>,
  lb: { commandMs: 0.1, perServerRowMs: 0.015 },
};

export interface SimulationRow {
  hosts: number;
  lbs: number;
  /** ssh.max-connections; undefined: one connection per host, all held. */
  maxConnections?: number;
  /** Virtual seconds: pre-flight (reads, pulls, locating servers), then the rollout. */
  preflight: number;
  rollout: number;
  /** Heap of this process at its peak during the run (the estate's maps included), MB. */
  heapMb: number;
  /**
   * SSH connections open at once at the peak: one per host and per load balancer for the whole run
   * without ssh.max-connections; with it, the pool's peak plus the load balancers'.
   */
  ssh: number;
  /** Runtime API commands per virtual second on the busiest load balancer, over the whole run. */
  lbCommandsPerSecond: number;
  /** The longest any command waited for the load balancer's earlier commands, ms. */
  lbQueueMs: number;
  violations: number;
}

/** Reads of the whole backend (every server's row): what costs HAProxy time per server. */
const WHOLE_BACKEND = new Set(['lb-status', 'lb-find', 'lb-counters', 'lb-statuses', 'lb-servers']);

export async function simulate(hostCount: number, lbCount: number, maxConnections?: number): Promise<SimulationRow> {
  const hosts = Array.from({ length: hostCount }, (_, i) => `h${i + 1}`);
  const lbs = Array.from({ length: lbCount }, (_, i) => `lb${i + 1}`);
  const from = release('v1');
  const target = release('v2');
  const maxParallel = Math.max(1, Math.floor(hostCount / 2));
  const { world, deps } = memoryEstate(hosts, { master: from, backup: from }, { lb: false, loadBalancers: lbs, maxParallel });
  const clock = new EventClock();
  world.clock = clock;
  const busyUntil = new Map(lbs.map((lb) => [lb, 0]));
  const commands = new Map(lbs.map((lb) => [lb, 0]));
  let lbQueueMs = 0;
  world.latency = (call: Call) =>
    MODEL.roundTripMs + (call.op === 'connect' ? MODEL.connectMs : call.op.startsWith('lb-') ? 0 : (MODEL.host[call.op] ?? 0));
  // Each load balancer serves one command at a time, in arrival order.
  world.intercept = async (call: Call) => {
    if (!call.op.startsWith('lb-')) return;
    const service = MODEL.lb.commandMs + (WHOLE_BACKEND.has(call.op) ? MODEL.lb.perServerRowMs * 2 * hostCount : 0);
    const start = Math.max(clock.now(), busyUntil.get(call.at)!);
    lbQueueMs = Math.max(lbQueueMs, start - clock.now());
    busyUntil.set(call.at, start + service);
    commands.set(call.at, commands.get(call.at)! + 1);
    await clock.sleep(start + service - clock.now());
  };
  // ssh.max-connections: the hosts through the action's own pool, each connection opened when a
  // call needs it (a handshake each time), as connect() does with the setting.
  const pool =
    maxConnections === undefined
      ? undefined
      : new ConnectionPool<MemoryHost>(maxConnections, async (host) => {
          await world.enter({ at: host, op: 'connect' });
          return new MemoryHost(host, world);
        }, () => undefined);
  if (pool) for (const host of hosts) deps.hosts.set(host, pooled<MemoryHost>(host, pool, { host }));
  let heap = 0;
  const sample = () => (heap = Math.max(heap, process.memoryUsage().heapUsed));

  const run = async () => {
    // Pre-flight as the action runs it: every connection opened at once (the hosts' through the
    // pool, when a call needs them, with ssh.max-connections), every host read and pulled at once,
    // then the servers found and their states read on every load balancer.
    await Promise.all([...(pool ? [] : hosts), ...lbs].map((at) => world.enter({ at, op: 'connect' })));
    const snapshots = await Promise.all(hosts.map(async (host) => ({ host, current: hostTarget(await deps.hosts.get(host)!.containers('app')) })));
    await Promise.all(hosts.map((host) => deps.hosts.get(host)!.pull(target.ref, undefined, () => undefined)));
    const members = lbs.map((lb) => ({ host: lb, runtime: new MemoryLoadBalancer(lb, world) }));
    const { fleet, servers, missing } = await LoadBalancers.locate(members, hosts, PORTS as Record<Role, number>);
    if (missing.length > 0) throw new Error(missing.join('; '));
    const held = new Map([...(await fleet.readHeld())].map(([server, { state }]) => [server, state]));
    const preflight = clock.now();
    const plan = planRollout(target, snapshots, maxParallel, 0);
    const result = await executeRollout(plan, { ...deps, lb: { driver: fleet, servers, held, drainTimeoutSeconds: 30, onDrainTimeout: 'fail' } });
    if (!result.ok) throw new Error(`the simulated rollout failed: ${result.failures.map((f) => `${f.host} ${f.role} ${f.reason}`).join('; ')}`);
    return preflight;
  };
  const preflightMs = await clock.run(run(), sample);
  const wall = clock.now() / 1000;
  for (const [key, box] of world.boxes) if (box.release.version !== 'v2') throw new Error(`${key} still runs ${box.release.version}`);
  return {
    hosts: hostCount,
    lbs: lbCount,
    ...(maxConnections !== undefined ? { maxConnections } : {}),
    preflight: preflightMs / 1000,
    rollout: wall - preflightMs / 1000,
    heapMb: heap / 2 ** 20,
    ssh: (pool ? pool.peak : hostCount) + lbCount,
    lbCommandsPerSecond: Math.max(...commands.values()) / wall,
    lbQueueMs,
    violations: world.violations.length,
  };
}

export async function simulationTable(sizes = [10, 100, 1000], lbCounts = [1, 2, 3, 4]): Promise<SimulationRow[]> {
  const rows: SimulationRow[] = [];
  for (const hosts of sizes) for (const lbs of lbCounts) rows.push(await simulate(hosts, lbs));
  // The SSH connections bounded: as many as a batch has hosts, and a fifth of that.
  const largest = Math.max(...sizes);
  for (const max of [largest / 2, largest / 10]) rows.push(await simulate(largest, 1, max));
  return rows;
}

export function printSimulation(rows: SimulationRow[]): void {
  const m = MODEL;
  console.log(
    `\nSimulated rollout (virtual time; max-parallel 50 %; round trip ${m.roundTripMs} ms; SSH handshake ${m.connectMs} ms; pull ${m.host.pull} ms, stop ${m.host.stop} ms, ` +
      `run ${m.host.run} ms, healthy ${m.host.health} ms; HAProxy ${m.lb.commandMs} ms a command + ${m.lb.perServerRowMs} ms a server row, one command at a time)`,
  );
  const header = ['hosts', 'LBs', 'max-connections', 'pre-flight', 'rollout', 'wall', 'wall / 10 hosts', 'heap peak', 'SSH held', 'LB commands/s', 'LB queue max', 'violations'];
  const base = new Map(rows.filter((r) => r.hosts === Math.min(...rows.map((x) => x.hosts)) && r.maxConnections === undefined).map((r) => [r.lbs, r.preflight + r.rollout]));
  const table = rows.map((r) => {
    const wall = r.preflight + r.rollout;
    return [
      String(r.hosts), String(r.lbs), r.maxConnections === undefined ? '-' : String(r.maxConnections), `${r.preflight.toFixed(1)} s`, `${r.rollout.toFixed(1)} s`, `${wall.toFixed(1)} s`,
      `${(wall / base.get(r.lbs)!).toFixed(2)}×`, `${r.heapMb.toFixed(0)} MB`, String(r.ssh), r.lbCommandsPerSecond.toFixed(0),
      `${r.lbQueueMs.toFixed(0)} ms`, String(r.violations),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
  const print = (cells: string[]) => console.log(cells.map((c, i) => c.padEnd(widths[i]!)).join('  '));
  print(header);
  for (const row of table) print(row);
}
