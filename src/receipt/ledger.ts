// Who served what: readings of every load balancer's counters turned into requests and errors per
// release and per host. A server's counters belong to the release its container runs; the
// rollout reads the counters at the moment a server is in maintenance before its container is
// replaced (nothing reaches it then), so each reading falls cleanly on one release. Pure.
import type { FleetCounters, Role, ServerCounters } from '../rollout/ports.js';
import { addInto, between, emptyTally, errorsOf, type Tally } from './tally.js';

/** Requests and errors through every load balancer between two readings. */
export interface SeriesPoint {
  /** ms since the epoch, when the reading arrived */
  at: number;
  requests: number;
  errors: number;
}

/** A step of a host's rollout, for the chart. */
export interface StepMark {
  at: number;
  host: string;
  role: Role;
  what: 'out of service' | 'in service';
  version: string;
}

export class Ledger {
  /** Load balancer → server → the counters last read there. */
  private readonly last = new Map<string, Map<string, ServerCounters>>();
  /** Server → the host and release behind it now (none while nothing runs there). */
  private readonly owner = new Map<string, { host: string; version?: string }>();
  readonly total = emptyTally();
  readonly byRelease = new Map<string, Tally>();
  readonly byHost = new Map<string, Map<string, Tally>>();
  readonly series: SeriesPoint[] = [];
  readonly marks: StepMark[] = [];
  /** Readings in which a load balancer did not answer: its requests in between count later. */
  readonly gaps: { at: number; lb: string; why: string }[] = [];
  first?: number;
  lastAt?: number;

  /** `servers`: each host's fleet server names; `running`: the version behind each role now. */
  constructor(servers: Map<string, Record<Role, string>>, running: (host: string, role: Role) => string | undefined) {
    for (const [host, roles] of servers) {
      for (const role of ['master', 'backup'] as const) {
        const version = running(host, role);
        this.owner.set(roles[role], { host, ...(version ? { version } : {}) });
      }
    }
  }

  /** Adds what every server did since the previous reading; the first reading only sets the start. */
  take(at: number, reading: FleetCounters): void {
    const point: SeriesPoint = { at, requests: 0, errors: 0 };
    for (const [lb, servers] of reading.read) {
      const before = this.last.get(lb);
      for (const [server, counters] of servers) {
        const previous = before?.get(server);
        if (previous) this.credit(server, between(previous, counters), point);
      }
      this.last.set(lb, servers);
    }
    for (const [lb, why] of reading.failed) this.gaps.push({ at, lb, why });
    if (this.first === undefined) this.first = at;
    else this.series.push(point);
    this.lastAt = at;
  }

  /** From now on the server's counters are `version`'s (undefined: nothing runs behind it). */
  changeOwner(server: string, version: string | undefined): void {
    const owner = this.owner.get(server);
    if (owner) this.owner.set(server, { host: owner.host, ...(version ? { version } : {}) });
  }

  mark(mark: StepMark): void {
    this.marks.push(mark);
  }

  /** What one release did so far (a copy). */
  ofRelease(version: string): Tally {
    return addInto(emptyTally(), this.byRelease.get(version) ?? emptyTally());
  }

  /** What every release but `version` did so far. */
  ofOthers(version: string): Tally {
    const sum = emptyTally();
    for (const [other, tally] of this.byRelease) if (other !== version) addInto(sum, tally);
    return sum;
  }

  private credit(server: string, tally: Tally, point: SeriesPoint): void {
    point.requests += tally.requests;
    point.errors += errorsOf(tally);
    addInto(this.total, tally);
    const owner = this.owner.get(server);
    // A server with nothing behind it answers nothing, but HAProxy may count errors there.
    const version = owner?.version ?? 'none';
    this.byRelease.set(version, addInto(this.byRelease.get(version) ?? emptyTally(), tally));
    if (!owner) return;
    const host = this.byHost.get(owner.host) ?? new Map<string, Tally>();
    host.set(version, addInto(host.get(version) ?? emptyTally(), tally));
    this.byHost.set(owner.host, host);
  }
}
