// Who served what: readings of every load balancer's counters turned into requests and errors per
// release (by digest: two builds under one tag are two releases) and per host. A server's
// counters belong to the release its container runs; the rollout reads the counters while a
// server is in maintenance and its old container is gone (nothing reaches it then), so each
// load balancer's reading falls cleanly on one release. A load balancer that missed that reading
// answers next with counts from both sides of the change: those are unattributable, reported as
// such, and credited to no release. Pure.
import type { FleetCounters, HaproxyProcess, Release, Role, ServerCounters, Slot } from '../rollout/ports.js';
import { addInto, between, emptyTally, errorsOf, wholeTally, type Tally } from './tally.js';

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

/** Counts a load balancer reported across a container change it missed the reading of. */
export interface Unattributed {
  at: number;
  lb: string;
  server: string;
  /** Versions before and after the change. */
  from: string;
  to: string;
  requests: number;
  errors: number;
}

/** Something the receipt could not count as it should, and why. */
export interface Notice {
  at: number;
  lb: string;
  why: string;
}

/** The release key for a server with no container behind it. */
export const NONE = 'none';

/** The spare servers of each host and the slot each role runs in (LoadBalancing.slots). */
export interface LedgerSlots {
  spares: Map<string, Record<Role, string>>;
  active: Map<string, Partial<Record<Role, Slot>>>;
}

export class Ledger {
  /** Load balancer → server → the counters last read there. */
  private readonly last = new Map<string, Map<string, ServerCounters>>();
  /** Load balancer → the HAProxy process that answered last. */
  private readonly processes = new Map<string, HaproxyProcess>();
  /** Server → the host and release behind it now (none while nothing runs there). */
  private readonly owner = new Map<string, { host: string; release?: Release }>();
  /** Load balancer → server → the release its counts since its last reading belong to. */
  private readonly countingFor = new Map<string, Map<string, string>>();
  /** Server → since when it is frozen (in maintenance, between two containers). */
  private readonly frozen = new Map<string, number>();
  /** Load balancer → servers it did not list in its last answer. */
  private readonly absent = new Map<string, Set<string>>();
  /** By digest (NONE: no container). */
  readonly byRelease = new Map<string, Tally>();
  /** Digest → version, for labels. */
  readonly versions = new Map<string, string>([[NONE, NONE]]);
  readonly byHost = new Map<string, Map<string, Tally>>();
  readonly total = emptyTally();
  readonly series: SeriesPoint[] = [];
  readonly marks: StepMark[] = [];
  /** Readings in which a load balancer did not answer: its requests in between count later. */
  readonly gaps: Notice[] = [];
  readonly unattributed: Unattributed[] = [];
  /** Reloads (a new HAProxy process) and servers a load balancer stopped listing. */
  readonly notices: Notice[] = [];
  first?: number;
  lastAt?: number;

  /**
   * `servers`: each host's fleet server names; `running`: the release behind each role now;
   * `slots`: the spare servers and which slot each role runs in (no-gap): the release is behind
   * the server of its slot, nothing behind the other.
   */
  constructor(servers: Map<string, Record<Role, string>>, running: (host: string, role: Role) => Release | undefined, slots?: LedgerSlots) {
    for (const [host, roles] of servers) {
      for (const role of ['master', 'backup'] as const) {
        const inB = slots?.active.get(host)?.[role] === 'b';
        this.setOwner(roles[role], host, inB ? undefined : running(host, role));
        const spare = slots?.spares.get(host)?.[role];
        if (spare) this.setOwner(spare, host, inB ? running(host, role) : undefined);
      }
    }
  }

  /**
   * Adds what every server did since the previous reading; the first reading only sets the
   * start. `startedAt`: when the reading was asked for (its counters are from after then).
   */
  take(at: number, reading: FleetCounters, startedAt = at): void {
    const point: SeriesPoint = { at, requests: 0, errors: 0 };
    for (const [lb, servers] of reading.read) {
      const before = this.last.get(lb);
      const process = reading.processes?.get(lb);
      const restarted = this.restarted(at, lb, process);
      this.noteAbsent(at, lb, servers);
      const kept = new Map(before);
      for (const [server, counters] of servers) {
        const previous = before?.get(server);
        const tally = previous && !restarted ? between(previous, counters) : restarted ? wholeTally(counters) : undefined;
        if (tally) this.credit(at, lb, server, tally, point);
        // A reading begun before a freeze may predate the server's last requests: not a split.
        const frozenAt = this.frozen.get(server);
        if (frozenAt === undefined || startedAt >= frozenAt) this.counting(lb).set(server, this.ownerKey(server));
        kept.set(server, counters);
      }
      this.last.set(lb, kept);
    }
    for (const [lb, why] of reading.failed) this.gaps.push({ at, lb, why });
    if (this.first === undefined) this.first = at;
    else this.series.push(point);
    this.lastAt = at;
  }

  /**
   * Carries `earlier`'s last readings of load balancers this ledger has none of yet (one that
   * missed its first reading): what they count from then on is not lost.
   */
  carryFrom(earlier: Ledger): void {
    for (const [lb, servers] of earlier.last) {
      if (this.last.has(lb)) continue;
      this.last.set(lb, new Map(servers));
      const process = earlier.processes.get(lb);
      if (process) this.processes.set(lb, process);
      for (const server of servers.keys()) this.counting(lb).set(server, this.ownerKey(server));
    }
  }

  /**
   * The server is in maintenance and its old container gone (nothing reaches it): from `at` on,
   * its counters are `release`'s (undefined: nothing runs behind it). Each load balancer's first
   * reading begun after `at` splits its counts cleanly, until thaw.
   */
  freeze(server: string, release: Release | undefined, at: number): void {
    const owner = this.owner.get(server);
    if (!owner) return;
    this.setOwner(server, owner.host, release);
    this.frozen.set(server, at);
  }

  /**
   * The server is about to go back in service: a load balancer that has not read it since the
   * freeze will count both releases' requests in its next answer, which is then unattributable.
   */
  thaw(server: string): void {
    this.frozen.delete(server);
  }

  mark(mark: StepMark): void {
    this.marks.push(mark);
  }

  /** What one release (by digest) did so far (a copy). */
  ofRelease(digest: string): Tally {
    return addInto(emptyTally(), this.byRelease.get(digest) ?? emptyTally());
  }

  /** What every release but `digest` did so far (not the unattributable). */
  ofOthers(digest: string): Tally {
    const sum = emptyTally();
    for (const [other, tally] of this.byRelease) if (other !== digest) addInto(sum, tally);
    return sum;
  }

  /** A label per release key: its version, and the digest's start after a + when two share a version. */
  labels(): Map<string, string> {
    const out = new Map<string, string>();
    const keys = [...this.byRelease.keys()];
    for (const key of keys) {
      const version = this.versions.get(key) ?? key;
      const shared = keys.some((other) => other !== key && this.versions.get(other) === version);
      out.set(key, shared ? `${version}+${key.replace(/^sha256:/, '').slice(0, 12)}` : version);
    }
    return out;
  }

  private setOwner(server: string, host: string, release: Release | undefined): void {
    this.owner.set(server, { host, ...(release ? { release } : {}) });
    if (release) this.versions.set(release.digest, release.version);
  }

  private ownerKey(server: string): string {
    return this.owner.get(server)?.release?.digest ?? NONE;
  }

  private counting(lb: string): Map<string, string> {
    const map = this.countingFor.get(lb) ?? new Map<string, string>();
    this.countingFor.set(lb, map);
    return map;
  }

  /**
   * A new HAProxy process (a reload or a restart: another pid, or an uptime that went back)
   * counts from 0: its counters are all there is since, whatever their size.
   */
  private restarted(at: number, lb: string, process: HaproxyProcess | undefined): boolean {
    const before = this.processes.get(lb);
    if (process) this.processes.set(lb, process);
    if (!before || !process) return false;
    const restarted = before.pid !== process.pid || process.uptimeSeconds < before.uptimeSeconds;
    if (restarted) this.notices.push({ at, lb, why: `HAProxy restarted (pid ${before.pid} → ${process.pid}): what the old process counted since the last reading is lost` });
    return restarted;
  }

  private noteAbsent(at: number, lb: string, servers: Map<string, ServerCounters>): void {
    const absent = new Set([...this.owner.keys()].filter((server) => !servers.has(server)));
    const before = this.absent.get(lb) ?? new Set<string>();
    for (const server of absent) {
      if (!before.has(server)) this.notices.push({ at, lb, why: `no longer lists ${server} (renamed or removed): its counts there are not in the receipt` });
    }
    this.absent.set(lb, absent);
  }

  private credit(at: number, lb: string, server: string, tally: Tally, point: SeriesPoint): void {
    point.requests += tally.requests;
    point.errors += errorsOf(tally);
    addInto(this.total, tally);
    const owner = this.ownerKey(server);
    const since = this.countingFor.get(lb)?.get(server) ?? owner;
    // Frozen: nothing reached the server since the change, so every count is the release before.
    const now = this.frozen.has(server) ? since : owner;
    if (since !== now) {
      if (tally.requests > 0 || errorsOf(tally) > 0) {
        this.unattributed.push({ at, lb, server, from: this.versions.get(since) ?? since, to: this.versions.get(now) ?? now, requests: tally.requests, errors: errorsOf(tally) });
      }
      return;
    }
    this.byRelease.set(now, addInto(this.byRelease.get(now) ?? emptyTally(), tally));
    const host = this.owner.get(server)?.host;
    if (!host) return;
    const tallies = this.byHost.get(host) ?? new Map<string, Tally>();
    tallies.set(now, addInto(tallies.get(now) ?? emptyTally(), tally));
    this.byHost.set(host, tallies);
  }
}
