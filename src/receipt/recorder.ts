// Reads every load balancer's counters for the receipt: once in pre-flight and once as the
// rollout starts (the baseline), every second during the rollout, and at each step where a
// server's release changes. Readings never pile up: one at a time, each load balancer's answer
// bounded by the reading period, and at most one more waiting behind the one in flight (asking
// for a reading while one waits joins it). A load balancer that does not answer in time leaves
// a gap, never fails the deploy (the rollout's own steps judge that).
import type { LoadBalancerFleet, Release, Role } from '../rollout/ports.js';
import { Ledger, type LedgerSlots } from './ledger.js';

export const EVERY_MS = 1_000;

export class ReceiptRecorder {
  readonly baseline: Ledger;
  readonly deploy: Ledger;
  /**
   * The receipt's own cost: time spent reading counters and how many readings, and of that time
   * what the rollout waited for (the canary's readings; the others run alongside its steps).
   */
  readonly cost = { ms: 0, readings: 0, waitedMs: 0 };
  private inFlight: Promise<void> | undefined;
  private next: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private into: Ledger[];

  constructor(
    private readonly fleet: Pick<LoadBalancerFleet, 'counters'>,
    private readonly servers: Map<string, Record<Role, string>>,
    running: (host: string, role: Role) => Release | undefined,
    private readonly clock: () => number = Date.now,
    private readonly everyMs = EVERY_MS,
    slots?: LedgerSlots,
  ) {
    this.baseline = new Ledger(servers, running, slots);
    this.deploy = new Ledger(servers, running, slots);
    this.into = [this.baseline];
  }

  /** The baseline's first reading (pre-flight). */
  open(): Promise<void> {
    return this.fresh();
  }

  /** Ends the baseline and starts the deploy's readings, then reads every period until finish. */
  async start(): Promise<void> {
    this.into = [this.baseline, this.deploy];
    await this.fresh();
    this.into = [this.deploy];
    this.deploy.carryFrom(this.baseline);
    // A tick while a reading is in flight or waiting adds nothing: they never queue up.
    this.timer = setInterval(() => {
      if (!this.inFlight) void this.begin();
    }, this.everyMs);
    this.timer.unref();
  }

  async finish(): Promise<void> {
    this.stop();
    await this.fresh();
  }

  /** No more readings every period (a rollout that threw). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /**
   * A reading begun from now on, waited for until it lands, `deadline` (ms since the epoch) or
   * `signal`, whichever comes first. Returns whether it landed: what was counted until now is in
   * the ledgers.
   */
  async readNow(signal?: AbortSignal, deadline?: number): Promise<boolean> {
    const started = this.clock();
    try {
      return await within(this.fresh().then(() => true), signal, deadline === undefined ? undefined : deadline - this.clock(), false);
    } finally {
      this.cost.waitedMs += this.clock() - started;
    }
  }

  /** The reading in flight, if any, waited for until `deadline` or `signal`: for a verdict at a set time. */
  async landed(signal?: AbortSignal, deadline?: number): Promise<void> {
    const started = this.clock();
    if (this.inFlight) await within(this.inFlight, signal, deadline === undefined ? undefined : deadline - this.clock(), undefined);
    this.cost.waitedMs += this.clock() - started;
  }

  /**
   * A role is in maintenance and its old container gone: what its server counted until now was
   * the old release's, what it counts from the next time it is in service is `to`'s. A reading
   * begun now splits them; settled (never rejected) when it lands, which must be before the
   * server is put back in service. A load balancer that missed it makes its next counts of the
   * server unattributable (the ledger reports them).
   */
  changing(host: string, role: Role, to: Release | undefined, onServer?: string): Promise<void> {
    const server = onServer ?? this.servers.get(host)?.[role];
    if (!server) return Promise.resolve();
    const at = this.clock();
    this.deploy.mark({ at, host, role, what: 'out of service', version: to?.version ?? 'nothing' });
    this.deploy.freeze(server, to, at);
    return this.fresh().then(() => this.deploy.thaw(server));
  }

  serving(host: string, role: Role, release: Release): void {
    this.deploy.mark({ at: this.clock(), host, role, what: 'in service', version: release.version });
  }

  /** A reading that begins now, or right after the one in flight (one waiting serves all who ask). */
  private fresh(): Promise<void> {
    if (!this.inFlight) return this.begin();
    this.next ??= this.inFlight.then(() => {
      this.next = undefined;
      return this.begin();
    });
    return this.next;
  }

  private begin(): Promise<void> {
    const into = this.into;
    const reading = (async () => {
      const started = this.clock();
      // Bounded by the fleet (each load balancer's answer within the period); never rejects.
      const counters = await this.fleet.counters(this.everyMs).catch((error: Error) => ({ read: new Map(), failed: new Map([['every load balancer', error.message]]) }));
      const arrived = this.clock();
      this.cost.ms += arrived - started;
      this.cost.readings++;
      // HAProxy took its counters somewhere between the question and the answer: the middle is
      // the best guess (a slow answer would otherwise stretch the window's start or end).
      for (const ledger of into) ledger.take(started + (arrived - started) / 2, counters, started);
    })().finally(() => {
      if (this.inFlight === reading) this.inFlight = undefined;
    });
    this.inFlight = reading;
    return reading;
  }
}

/** `promise`, or `otherwise` once `ms` passed or `signal` aborted. */
function within<T>(promise: Promise<T>, signal: AbortSignal | undefined, ms: number | undefined, otherwise: T): Promise<T> {
  if (signal?.aborted || (ms !== undefined && ms <= 0)) return Promise.resolve(otherwise);
  return new Promise<T>((resolve) => {
    const timer = ms === undefined ? undefined : setTimeout(() => done(otherwise), ms);
    const abort = () => done(otherwise);
    signal?.addEventListener('abort', abort, { once: true });
    function done(value: T) {
      clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
      resolve(value);
    }
    void promise.then(done, () => done(otherwise));
  });
}
