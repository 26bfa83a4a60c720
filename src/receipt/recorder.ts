// Reads every load balancer's counters for the receipt: once in pre-flight and once as the
// rollout starts (the baseline), every second during the rollout, and at each step where a
// server's release changes. Readings are taken one at a time, in order; a load balancer that
// does not answer leaves a gap, never fails the deploy (the rollout's own steps judge that).
import type { LoadBalancerFleet, Release, Role } from '../rollout/ports.js';
import { Ledger } from './ledger.js';

const EVERY_MS = 1_000;

export class ReceiptRecorder {
  readonly baseline: Ledger;
  readonly deploy: Ledger;
  /**
   * The receipt's own cost: time spent reading counters and how many readings, and of that time
   * what the rollout waited for (the canary's readings; the others run alongside its steps).
   */
  readonly cost = { ms: 0, readings: 0, waitedMs: 0 };
  private queue: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly fleet: Pick<LoadBalancerFleet, 'counters'>,
    private readonly servers: Map<string, Record<Role, string>>,
    running: (host: string, role: Role) => string | undefined,
    private readonly clock: () => number = Date.now,
  ) {
    this.baseline = new Ledger(servers, running);
    this.deploy = new Ledger(servers, running);
  }

  /** The baseline's first reading (pre-flight). */
  open(): Promise<void> {
    return this.read([this.baseline]);
  }

  /** Ends the baseline and starts the deploy's readings, then reads every second until finish. */
  async start(): Promise<void> {
    await this.read([this.baseline, this.deploy]);
    this.timer = setInterval(() => void this.read([this.deploy]), EVERY_MS);
    this.timer.unref();
  }

  async finish(): Promise<void> {
    this.stop();
    await this.read([this.deploy]);
  }

  /** No more readings every second (a rollout that threw). */
  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** A reading now, after any in flight, waited for: everything counted so far is in the ledgers. */
  async readNow(): Promise<void> {
    const started = this.clock();
    await this.read([this.deploy]);
    this.cost.waitedMs += this.clock() - started;
  }

  /**
   * A role is in maintenance and its container is about to change: what its server counted until
   * the next reading was the old release's, what it counts after is `to`'s. Nothing reaches the
   * server until it is put back in service, so that reading may land any time before then:
   * settled when the returned promise is.
   */
  changing(host: string, role: Role, to: Release | undefined): Promise<void> {
    const server = this.servers.get(host)?.[role];
    if (!server) return Promise.resolve();
    this.deploy.mark({ at: this.clock(), host, role, what: 'out of service', version: to?.version ?? 'nothing' });
    return this.read([this.deploy]).then(() => this.deploy.changeOwner(server, to?.version));
  }

  serving(host: string, role: Role, release: Release): void {
    this.deploy.mark({ at: this.clock(), host, role, what: 'in service', version: release.version });
  }

  private read(into: Ledger[]): Promise<void> {
    const reading = this.queue.then(async () => {
      const started = this.clock();
      const counters = await this.fleet.counters();
      const at = this.clock();
      this.cost.ms += at - started;
      this.cost.readings++;
      for (const ledger of into) ledger.take(at, counters);
    });
    // A reading that throws (it should not: the fleet reports failures) must not stop the next.
    this.queue = reading.catch(() => undefined);
    return this.queue;
  }
}
