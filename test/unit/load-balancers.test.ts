// Several HAProxy instances driven as one: every state change reaches all of them, and a server
// counts as drained or in service only by all of them together.
import { describe, expect, it } from 'vitest';
import { LoadBalancers } from '../../src/drivers/load-balancers.js';
import type { LoadBalancerDriver, ServerCounters, ServerStatus } from '../../src/rollout/ports.js';

/** One HAProxy backend: servers by address:port, each with its admin state, health and sessions. */
class FakeRuntime implements LoadBalancerDriver {
  calls: string[] = [];
  state = new Map<string, 'ready' | 'drain' | 'maint'>();
  up = new Map<string, boolean>();
  sessions = new Map<string, number>();
  requests = new Map<string, number>();
  unreachable = false;
  /** Set: counters() answers only when this resolves (a stopped HAProxy, a slow admin socket). */
  stalled: Promise<void> | undefined;
  countersAsked = 0;
  constructor(private readonly servers: Record<string, string>) {
    for (const name of Object.values(servers)) {
      this.state.set(name, 'ready');
      this.up.set(name, true);
    }
  }
  /** Whole-backend reads: show servers state (finds), show stat (statuses). */
  finds = 0;
  reads = 0;
  /** Holds each status read until released, to have many callers wait on one. */
  gate?: Promise<void>;
  async findServers(targets: { address: string; port: number }[]) {
    this.finds++;
    return targets.map(({ address, port }) => this.servers[`${address}:${port}`]);
  }
  async setState(server: string, state: 'ready' | 'drain' | 'maint') {
    this.calls.push(`${state} ${server}`);
    this.state.set(server, state);
  }
  async statuses(): Promise<Map<string, ServerStatus>> {
    this.reads++;
    // What the backend says when the read starts, as HAProxy's dump is taken then.
    const out = new Map<string, ServerStatus>();
    for (const [server, state] of this.state) {
      const status = state === 'maint' ? 'MAINT' : state === 'drain' ? 'DRAIN' : this.up.get(server) ? 'UP' : 'DOWN';
      out.set(server, { status, sessions: this.sessions.get(server) ?? 0, queued: 0 });
    }
    await this.gate;
    return out;
  }
  async counters() {
    this.countersAsked++;
    if (this.stalled) await this.stalled;
    if (this.unreachable) throw new Error('connection lost');
    const zero: Omit<ServerCounters, 'requests'> = { http5xx: 0, connectionErrors: 0, responseErrors: 0, retries: 0, redispatches: 0, responseMs: 0, totalMs: 0 };
    // Servers the fleet does not drive are in the answer too (another app's, say).
    return { servers: new Map([...this.state.keys(), 'other-app'].map((name) => [name, { ...zero, requests: this.requests.get(name) ?? 0 }])) };
  }
}

const ports = { master: 50000, backup: 50001 };
// Each load balancer names the same servers its own way.
const lb1 = () => new FakeRuntime({ '10.0.0.1:50000': 'h1-master', '10.0.0.1:50001': 'h1-backup' });
const lb2 = () => new FakeRuntime({ '10.0.0.1:50000': 'web1', '10.0.0.1:50001': 'web1-spare' });

async function fleetOf(a: FakeRuntime, b: FakeRuntime) {
  const found = await LoadBalancers.locate([{ host: 'lb1', runtime: a }, { host: 'lb2', runtime: b }], ['10.0.0.1'], ports);
  return { ...found, master: found.servers.get('10.0.0.1')!.master };
}

describe('LoadBalancers', () => {
  it('finds every host role on every load balancer, and names the one lacking a server', async () => {
    const { missing, servers } = await fleetOf(lb1(), lb2());
    expect(missing).toEqual([]);
    expect(servers.get('10.0.0.1')).toEqual({ master: '10.0.0.1:50000', backup: '10.0.0.1:50001' });
    const partial = new FakeRuntime({ '10.0.0.1:50000': 'web1' });
    expect((await fleetOf(lb1(), partial)).missing).toEqual(['lb2 has no server for 10.0.0.1:50001 (backup)']);
  });

  it('finds every server of a thousand hosts with one read of each load balancer', async () => {
    const hosts = Array.from({ length: 1000 }, (_, i) => `10.1.${i >> 8}.${i & 255}`);
    const table = (prefix: string) => Object.fromEntries(hosts.flatMap((h, i) => [[`${h}:50000`, `${prefix}${i}-m`], [`${h}:50001`, `${prefix}${i}-b`]]));
    const [a, b] = [new FakeRuntime(table('a')), new FakeRuntime(table('b'))];
    const { missing, servers, fleet } = await LoadBalancers.locate([{ host: 'lb1', runtime: a }, { host: 'lb2', runtime: b }], hosts, ports);
    expect(missing).toEqual([]);
    expect(servers.size).toBe(1000);
    expect([a.finds, b.finds]).toEqual([1, 1]);
    await fleet.readHeld();
    expect([a.reads, b.reads]).toEqual([1, 1]);
  });

  it('answers servers polled at once from one status read per load balancer, each from a read begun after it asked', async () => {
    const hosts = Array.from({ length: 50 }, (_, i) => `10.2.0.${i}`);
    const a = new FakeRuntime(Object.fromEntries(hosts.flatMap((h, i) => [[`${h}:50000`, `m${i}`], [`${h}:50001`, `b${i}`]])));
    const { fleet, servers } = await LoadBalancers.locate([{ host: 'lb1', runtime: a }], hosts, ports);
    let release!: () => void;
    a.gate = new Promise((done) => (release = done));
    const first = fleet.status(servers.get(hosts[0]!)!.master);
    // Asked while the first read is under way: a state changed meanwhile must show.
    await fleet.setState(servers.get(hosts[1]!)!.master, 'maint');
    const rest = hosts.map((h) => fleet.status(servers.get(h)!.master));
    release();
    const answers = await Promise.all([first, ...rest]);
    expect(a.reads).toBe(2);
    expect(answers[0]!.status).toBe('UP');
    expect(answers[2]!.status).toBe('MAINT');
    expect(answers.slice(3).every((s) => s.status === 'UP')).toBe(true);
  });

  it('sets a state on all of them, each under its own server name', async () => {
    const [a, b] = [lb1(), lb2()];
    const { fleet, master } = await fleetOf(a, b);
    await fleet.setState(master, 'drain');
    expect([a.calls, b.calls]).toEqual([['drain h1-master'], ['drain web1']]);
  });

  it('is drained only when the sessions on all of them are gone, and UP only when all report UP', async () => {
    const [a, b] = [lb1(), lb2()];
    const { fleet, master } = await fleetOf(a, b);
    b.sessions.set('web1', 2);
    a.sessions.set('h1-master', 1);
    expect((await fleet.status(master)).sessions).toBe(3);
    b.up.set('web1', false);
    expect((await fleet.status(master)).status).toBe('lb1: UP, lb2: DOWN');
    b.up.set('web1', true);
    expect((await fleet.status(master)).status).toBe('UP');
    await fleet.setState(master, 'maint');
    expect((await fleet.status(master)).status).toBe('MAINT');
  });

  it('leaves what an operator took out on one load balancer as it was there, and only there', async () => {
    const [a, b] = [lb1(), lb2()];
    b.state.set('web1', 'maint');
    const { fleet, master } = await fleetOf(a, b);
    const held = await fleet.readHeld();
    expect(held.get(master)).toEqual({ state: 'maint', where: 'lb1: UP, lb2: MAINT' });
    await fleet.setState(master, 'drain');
    expect([a.state.get('h1-master'), b.state.get('web1')]).toEqual(['drain', 'maint']);
    await fleet.setState(master, 'maint');
    await fleet.restoreState(master);
    expect([a.state.get('h1-master'), b.state.get('web1')]).toEqual(['ready', 'maint']);
  });

  it('after a lock takeover, forgets those states: everything goes back to READY', async () => {
    const [a, b] = [lb1(), lb2()];
    a.state.set('h1-master', 'maint');
    const { fleet, master } = await fleetOf(a, b);
    await fleet.readHeld();
    fleet.forgetHeld();
    await fleet.restoreState(master);
    expect([a.state.get('h1-master'), b.state.get('web1')]).toEqual(['ready', 'ready']);
  });

  it('reads every server\'s counters on each load balancer under the fleet\'s names, and names one that did not answer', async () => {
    const [a, b] = [lb1(), lb2()];
    a.requests.set('h1-master', 7);
    b.requests.set('web1', 5);
    const { fleet, master } = await fleetOf(a, b);
    const both = await fleet.counters(1000);
    expect([...both.read.keys()]).toEqual(['lb1', 'lb2']);
    expect(both.read.get('lb1')?.get(master)?.requests).toBe(7);
    expect(both.read.get('lb2')?.get(master)?.requests).toBe(5);
    expect([...both.read.get('lb2')!.keys()]).toEqual([master, '10.0.0.1:50001']);
    b.unreachable = true;
    const one = await fleet.counters(1000);
    expect([...one.read.keys()]).toEqual(['lb1']);
    expect(one.failed).toEqual(new Map([['lb2', 'connection lost']]));
  });

  it('gives up on a load balancer that does not answer within the time given, and asks it nothing more until it has', async () => {
    const [a, b] = [lb1(), lb2()];
    let resume = () => {};
    b.stalled = new Promise<void>((done) => (resume = done));
    const { fleet, master } = await fleetOf(a, b);
    const first = await fleet.counters(50);
    expect(first.read.get('lb1')?.get(master)).toBeDefined();
    expect(first.failed).toEqual(new Map([['lb2', 'no answer within 0.05 s']]));
    const second = await fleet.counters(50);
    expect(second.failed).toEqual(new Map([['lb2', 'still answering an earlier reading']]));
    expect([a.countersAsked, b.countersAsked]).toEqual([2, 1]);
    b.stalled = undefined;
    resume();
    await new Promise((done) => setTimeout(done, 0));
    const third = await fleet.counters(50);
    expect([...third.read.keys()]).toEqual(['lb1', 'lb2']);
    expect(b.countersAsked).toBe(2);
  });
});
