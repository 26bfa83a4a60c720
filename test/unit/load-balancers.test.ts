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
  async findServer(address: string, port: number) {
    return this.servers[`${address}:${port}`];
  }
  async setState(server: string, state: 'ready' | 'drain' | 'maint') {
    this.calls.push(`${state} ${server}`);
    this.state.set(server, state);
  }
  async status(server: string): Promise<ServerStatus> {
    const state = this.state.get(server);
    const status = state === 'maint' ? 'MAINT' : state === 'drain' ? 'DRAIN' : this.up.get(server) ? 'UP' : 'DOWN';
    return { status, sessions: this.sessions.get(server) ?? 0, queued: 0 };
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
