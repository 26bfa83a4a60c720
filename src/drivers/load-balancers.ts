// Every HAProxy in front of an environment behind one driver. A server is drained on all of
// them and counts as drained only when its sessions are 0 on all of them; it counts as in service
// only when every one of them reports it UP. A load balancer the action drove on its own while
// another kept sending requests is how requests get dropped (issue of one HAProxy of a pair left
// behind), so there is no way here to drive one of them alone.
import type { BackendCounters, FleetCounters, LoadBalancerDriver, LoadBalancerFleet, Role, ServerCounters, ServerStatus } from '../rollout/ports.js';

type AdminState = 'ready' | 'drain' | 'maint';

/** Servers an operator had out of service, per load balancer, as plain data. */
export type HeldSnapshot = [server: string, members: [host: string, state: 'maint' | 'drain'][]][];

export interface FleetMember {
  /** The load balancer's host, as configured (haproxy.hosts). */
  host: string;
  runtime: LoadBalancerDriver;
}

/** The admin state an operator set, from HAProxy's status column (MAINT, MAINT (via …), DRAIN …). */
export function heldState(status: string): 'maint' | 'drain' | undefined {
  if (status.startsWith('MAINT')) return 'maint';
  if (status.startsWith('DRAIN')) return 'drain';
  return undefined;
}

/**
 * One read shared by everyone who asks while it is under way, each caller getting a read that
 * started after it asked (so it sees its own state change before it): however many servers are
 * polled at once, a load balancer answers at most one status read at a time.
 */
class SharedRead<T> {
  private current?: Promise<T>;
  private next?: Promise<T>;

  constructor(private readonly fetch: () => Promise<T>) {}

  read(): Promise<T> {
    if (!this.current) return this.start();
    // The read under way started before this call: wait for it, then share the one after.
    this.next ??= this.current.then(
      () => undefined,
      () => undefined,
    ).then(() => {
      this.next = undefined;
      return this.start();
    });
    return this.next;
  }

  private start(): Promise<T> {
    const read = this.fetch();
    this.current = read;
    const done = () => {
      if (this.current === read) this.current = undefined;
    };
    read.then(done, done);
    return read;
  }
}

/** A server a load balancer's backend lacks: which load balancer, for which host, port and role, and whether it is a spare. */
export interface AbsentServer {
  lb: string;
  address: string;
  port: number;
  role: Role;
  spare: boolean;
}

export const describeAbsent = (a: AbsentServer) => `${a.lb} has no server for ${a.address}:${a.port} (${a.role}${a.spare ? ' spare' : ''})`;

/**
 * Each host's master and backup server (and spare servers, given their ports) on each load
 * balancer, by address and port, from one read of each backend; what a backend lacks is in
 * `absent`. A spare counts only where every load balancer has it. Pre-flight (through locate)
 * and command: check (one load balancer at a time) both judge the backends by this.
 */
export async function locateServers(
  members: { host: string; runtime: Pick<LoadBalancerDriver, 'findServers'> }[],
  hosts: string[],
  ports: Record<Role, number>,
  sparePorts?: Record<Role, number>,
): Promise<{ names: Map<string, Map<string, string>>; servers: Map<string, Record<Role, string>>; spares: Map<string, Record<Role, string>>; absent: AbsentServer[] }> {
  const slots = [{ ports, spare: false }, ...(sparePorts ? [{ ports: sparePorts, spare: true }] : [])];
  const targets = slots.flatMap(({ ports: of, spare }) => hosts.flatMap((address) => (['master', 'backup'] as const).map((role) => ({ address, port: of[role], role, spare }))));
  const found = await Promise.all(members.map((member) => member.runtime.findServers(targets)));
  const names = new Map<string, Map<string, string>>();
  const servers = new Map<string, Record<Role, string>>();
  const spares = new Map<string, Record<Role, string>>();
  const absent: AbsentServer[] = [];
  targets.forEach(({ address, port, role, spare }, i) => {
    const key = `${address}:${port}`;
    const of = new Map<string, string>();
    members.forEach((member, m) => {
      const name = found[m]![i];
      if (name) of.set(member.host, name);
      else absent.push({ lb: member.host, address, port, role, spare });
    });
    if (spare && of.size < members.length) return;
    names.set(key, of);
    const into = spare ? spares : servers;
    into.set(address, { ...into.get(address), [role]: key } as Record<Role, string>);
  });
  return { names, servers, spares, absent };
}

export class LoadBalancers implements LoadBalancerFleet {
  /** Fleet server name → each member's own server name. */
  private readonly names = new Map<string, Map<string, string>>();
  /** Fleet server name → members where it was out of service before the deploy, and how. */
  private readonly held = new Map<string, Map<string, 'maint' | 'drain'>>();
  /** Each member's status reads, shared by every server polled at once. */
  private readonly reads: Map<string, SharedRead<Map<string, ServerStatus>>>;
  /** Members with a reading of counters in flight. */
  private readonly reading = new Set<string>();

  private constructor(readonly members: FleetMember[]) {
    this.reads = new Map(members.map((member) => [member.host, new SharedRead(() => member.runtime.statuses())]));
  }

  /**
   * Finds each host's master and backup on every load balancer, by address and port (one read
   * of each load balancer's backend). `missing` names, per load balancer, what it lacks; the
   * fleet is usable only when nothing is missing.
   */
  static async locate(
    members: FleetMember[],
    hosts: string[],
    ports: Record<Role, number>,
    sparePorts?: Record<Role, number>,
  ): Promise<{ fleet: LoadBalancers; servers: Map<string, Record<Role, string>>; missing: string[]; spares: Map<string, Record<Role, string>>; sparesMissing: string[] }> {
    const fleet = new LoadBalancers(members);
    const { names, servers, spares, absent } = await locateServers(members, hosts, ports, sparePorts);
    for (const [key, of] of names) fleet.names.set(key, of);
    const missing = absent.filter((a) => !a.spare).map(describeAbsent);
    const sparesMissing = absent.filter((a) => a.spare).map(describeAbsent);
    return { fleet, servers, missing, spares, sparesMissing };
  }

  /**
   * Reads every server's state on every load balancer and remembers those out of service, to be
   * left so (restoreState). Returns each fleet server out of service somewhere, with each load
   * balancer's status, for the pre-flight report.
   */
  async readHeld(): Promise<Map<string, { state: 'maint' | 'drain'; where: string }>> {
    const out = new Map<string, { state: 'maint' | 'drain'; where: string }>();
    const read = await Promise.all(this.members.map((member) => this.reads.get(member.host)!.read()));
    for (const server of this.names.keys()) {
      const statuses = this.memberStatuses(server, read);
      const held = new Map<string, 'maint' | 'drain'>();
      for (const [member, status] of statuses) {
        const state = heldState(status.status);
        if (state) held.set(member, state);
      }
      if (held.size === 0) continue;
      this.held.set(server, held);
      out.set(server, {
        state: [...held.values()].includes('maint') ? 'maint' : 'drain',
        where: [...statuses].map(([member, status]) => `${member}: ${status.status}`).join(', '),
      });
    }
    return out;
  }

  /**
   * Forgets what readHeld found (of one server, or all): after a lock takeover those states are a
   * dead run's leftovers.
   */
  forgetHeld(server?: string): void {
    if (server === undefined) this.held.clear();
    else this.held.delete(server);
  }

  /** What readHeld found, per server and load balancer: for the post step of a killed run. */
  heldSnapshot(): HeldSnapshot {
    return [...this.held].map(([server, members]) => [server, [...members]]);
  }

  /** Takes what an earlier readHeld found (heldSnapshot), instead of reading states changed since. */
  loadHeld(snapshot: HeldSnapshot): Map<string, 'maint' | 'drain'> {
    this.held.clear();
    const out = new Map<string, 'maint' | 'drain'>();
    for (const [server, members] of snapshot) {
      if (!this.names.has(server)) continue;
      this.held.set(server, new Map(members));
      out.set(server, members.some(([, state]) => state === 'maint') ? 'maint' : 'drain');
    }
    return out;
  }

  async setState(server: string, state: AdminState): Promise<void> {
    await this.each(server, (runtime, name, member) =>
      state === 'drain' && this.held.get(server)?.get(member) === 'maint' ? Promise.resolve() : runtime.setState(name, state),
    );
  }

  async restoreState(server: string): Promise<void> {
    await this.each(server, (runtime, name, member) => runtime.setState(name, this.held.get(server)?.get(member) ?? 'ready'));
  }

  async status(server: string): Promise<ServerStatus> {
    if (!this.names.has(server)) throw new Error(`no load balancer server ${server}`);
    const statuses = [...this.memberStatuses(server, await Promise.all(this.members.map((member) => this.reads.get(member.host)!.read())))];
    // One load balancer: its own words; several: the state they all agree on (UP, MAINT, DRAIN…),
    // else each one's.
    const agreed = ['UP', 'MAINT', 'DRAIN', 'DOWN'].find((state) => statuses.every(([, s]) => s.status.startsWith(state)));
    return {
      status: statuses.length === 1 ? statuses[0]![1].status : (agreed ?? statuses.map(([member, s]) => `${member}: ${s.status}`).join(', ')),
      sessions: statuses.reduce((sum, [, s]) => sum + s.sessions, 0),
      queued: statuses.reduce((sum, [, s]) => sum + s.queued, 0),
    };
  }

  /** One fleet server's status on each member, from each member's read (in members' order). */
  private memberStatuses(server: string, read: Map<string, ServerStatus>[]): Map<string, ServerStatus> {
    const names = this.names.get(server)!;
    return new Map(
      this.members.map((member, m) => {
        const name = names.get(member.host)!;
        const status = read[m]!.get(name);
        if (!status) throw new Error(`HAProxy backend on ${member.host}: there is no server ${name}`);
        return [member.host, status] as const;
      }),
    );
  }

  async counters(timeoutMs: number): Promise<FleetCounters> {
    const out: FleetCounters = { read: new Map(), failed: new Map(), processes: new Map() };
    await Promise.all(
      this.members.map(async (member) => {
        try {
          const own = await this.readOnce(member, timeoutMs);
          const read = new Map<string, ServerCounters>();
          for (const [server, names] of this.names) {
            const counters = own.servers.get(names.get(member.host)!);
            if (counters) read.set(server, counters);
          }
          out.read.set(member.host, read);
          if (own.process) out.processes!.set(member.host, own.process);
          if (own.http === false) (out.withoutHttp ??= []).push(member.host);
        } catch (error) {
          out.failed.set(member.host, error instanceof Error ? error.message : String(error));
        }
      }),
    );
    return out;
  }

  /**
   * One member's counters within `timeoutMs`. Its reading goes on in the background past that
   * (an SSH channel that never opens cannot be called back): until it ends, that member is not
   * asked again, so a slow admin socket never has more than one reading waiting on it.
   */
  private readOnce(member: FleetMember, timeoutMs: number): Promise<BackendCounters> {
    if (this.reading.has(member.host)) return Promise.reject(new Error('still answering an earlier reading'));
    const reading = member.runtime.counters(timeoutMs).finally(() => this.reading.delete(member.host));
    this.reading.add(member.host);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    return Promise.race([reading, late]).finally(() => clearTimeout(timer));
  }

  /** Runs `operation` on every load balancer at once; the first failure names its load balancer. */
  private async each<T>(server: string, operation: (runtime: LoadBalancerDriver, name: string, member: string) => Promise<T>): Promise<Map<string, T>> {
    const names = this.names.get(server);
    if (!names) throw new Error(`no load balancer server ${server}`);
    const results = await Promise.all(this.members.map(async (member) => [member.host, await operation(member.runtime, names.get(member.host)!, member.host)] as const));
    return new Map(results);
  }
}
