// What a rollout leaves for whoever finishes it, written as it goes, before each change it
// announces: which hosts it touched and what they ran before, which roles it is changing, which
// servers it has out of service, which adopted containers it set aside, which canary is not yet
// judged, what the operator had out of service before it. Kept twice: in the step's saved state
// (for this job's post step) and in the lock container on the lock host (for a run that takes
// the lock over after this one's runner died), where it also carries the run's last sign of life.
import * as core from '@actions/core';
import type { HeldSnapshot } from '../drivers/load-balancers.js';
import type { RolloutJournal } from '../rollout/execute.js';
import type { HostTarget } from '../rollout/plan.js';
import type { HostDriver, Role } from '../rollout/ports.js';

export const JOURNAL_STATE = 'rollout-journal';

export interface Journal {
  environment: string;
  /** The release the run was putting on the hosts. */
  version?: string;
  touched: string[];
  /** What each touched host ran before the run changed it: where a host goes back to. */
  before?: Record<string, HostTarget>;
  /** Fleet server names (`host:port`) this run has out of service right now. */
  outOfService: string[];
  /** What the operator had out of service before the deploy, per load balancer: left so. */
  heldOn: HeldSnapshot;
  deploymentId?: number;
  /** Hosts whose new master is a canary not yet judged: never finished on it. */
  unproven?: string[];
  /** `host/role` whose container the run is changing: a stop may be in flight, nothing is proven. */
  changing?: string[];
  /** `host/role` whose adopted container the run set aside (stopped, renamed): restored or discarded by whoever finishes. */
  asides?: string[];
  /** How the main step ended, when it could say (absent: its runner died mid-step). */
  ended?: { how: 'cancelled' | 'failed'; message: string };
  /** The run's last sign of life (ISO 8601), refreshed while it runs: a lock's age counts from it. */
  aliveAt?: string;
  /** Writes so far: of the lock host's two copies, the higher is the newer. */
  seq?: number;
}

/** Where the journal is kept besides the step state: the lock container on the lock host. */
export interface LockJournalStore {
  host: HostDriver;
  lock: string;
  warn(line: string): void;
}

const key = (host: string, role: Role) => `${host}/${role}`;
const toggle = (list: string[] | undefined, item: string, on: boolean) => [...(list ?? []).filter((i) => i !== item), ...(on ? [item] : [])];

/**
 * The journal next to the lock could not be written: the change it was to announce is not made
 * (a run taking the lock over would not know of it, and would read a server this run took out
 * as one the operator holds).
 */
export class JournalUnwritable extends Error {
  override name = 'JournalUnwritable';
}

/**
 * Keeps the journal in the step's saved state and the lock container, rewritten on every change.
 * The write next to the lock is a precondition of the change it announces: a write that fails
 * throws (JournalUnwritable), so the run stops before that change, and every later change waits
 * for a write that succeeds. A journal next to the lock therefore never lags what its run did.
 */
export class JournalWriter implements RolloutJournal {
  private written: Promise<void> = Promise.resolve();
  /** Of the lock's two files, the one the next write goes to: it moves on only past a whole write, so the other always holds one. */
  private slot: 0 | 1 = 1;
  /** The last write next to the lock failed: what is in memory is not there, so the next change writes whatever it is. */
  private behind = false;
  private warned = false;

  constructor(
    private readonly data: Journal,
    private readonly store?: LockJournalStore,
    private readonly saveState: (text: string) => void = (text) => core.saveState(JOURNAL_STATE, text),
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Writes the journal as it is now (the first write, and each announcement); throws JournalUnwritable when the lock's host does not take it. */
  async save(): Promise<void> {
    this.data.aliveAt = this.now().toISOString();
    this.data.seq = (this.data.seq ?? 0) + 1;
    const text = JSON.stringify(this.data);
    this.saveState(text);
    const { store } = this;
    if (!store) return;
    // Written in order, one at a time.
    const write = this.written.then(async () => {
      await store.host.writeLockJournal(store.lock, this.slot, text);
      this.slot = this.slot === 0 ? 1 : 0;
    });
    this.written = write.catch(() => undefined);
    try {
      await write;
      this.behind = false;
    } catch (error) {
      this.behind = true;
      throw new JournalUnwritable(
        `could not keep the journal next to the deploy lock on ${store.host.host} (${error instanceof Error ? error.message : String(error)}): ` +
          'no change is made that a run taking the lock over would not know of',
      );
    }
  }

  /** A sign of life (the heartbeat): a write that fails costs a warning; the next change's write stops the run. */
  async beat(): Promise<void> {
    await this.save().catch((error: Error) => this.warnOnce(error.message));
  }

  private warnOnce(message: string): void {
    if (!this.warned) this.store?.warn(`${message[0]!.toUpperCase()}${message.slice(1)}`);
    this.warned = true;
  }

  /** Saves after `changed`, or when the last write failed (an announcement it carried is not yet next to the lock). */
  private async update(changed: boolean): Promise<void> {
    if (changed || this.behind) await this.save();
  }

  /** Adds what the run learns as it goes (the servers the operator holds, the deployment record) and saves it. */
  async note(fields: Partial<Pick<Journal, 'heldOn' | 'deploymentId' | 'version'>>): Promise<void> {
    Object.assign(this.data, fields);
    await this.save();
  }

  /** Starts over with `data` (a run that took a lock over, once it finished what that run left). */
  async restart(data: Journal): Promise<void> {
    const seq = this.data.seq;
    for (const field of Object.keys(this.data)) delete (this.data as unknown as Record<string, unknown>)[field];
    Object.assign(this.data, data, seq === undefined ? {} : { seq: Math.max(seq, data.seq ?? 0) });
    await this.save();
  }

  snapshot(): Journal {
    return JSON.parse(JSON.stringify(this.data)) as Journal;
  }

  async touched(host: string, before: HostTarget): Promise<void> {
    const changed = !this.data.touched.includes(host);
    if (changed) {
      this.data.touched.push(host);
      this.data.before = { ...this.data.before, [host]: before };
    }
    await this.update(changed);
  }

  async outOfService(server: string, out: boolean): Promise<void> {
    const changed = out !== this.data.outOfService.includes(server);
    this.data.outOfService = toggle(this.data.outOfService, server, out);
    await this.update(changed);
  }

  async unproven(host: string, holding: boolean): Promise<void> {
    this.data.unproven = toggle(this.data.unproven, host, holding);
    await this.save();
  }

  async changing(host: string, role: Role, yes: boolean): Promise<void> {
    const changed = yes !== (this.data.changing ?? []).includes(key(host, role));
    this.data.changing = toggle(this.data.changing, key(host, role), yes);
    await this.update(changed);
  }

  async aside(host: string, role: Role, yes: boolean): Promise<void> {
    const changed = yes !== (this.data.asides ?? []).includes(key(host, role));
    this.data.asides = toggle(this.data.asides, key(host, role), yes);
    await this.update(changed);
  }

  /** How the main step ended, for the post step's record: in the step state at least (the run is over; nothing waits on it). */
  async ended(how: 'cancelled' | 'failed', message: string): Promise<void> {
    this.data.ended = { how, message };
    await this.save().catch((error: Error) => this.warnOnce(error.message));
  }

  /** Whether anything is left to finish: a server still out, a container mid-change or set aside, a canary unjudged. */
  pending(): boolean {
    return unfinished(this.data).length > 0;
  }

  /** Nothing left to finish. */
  clear(): void {
    this.saveState('');
  }
}

/** What a journal says is left to finish, one phrase each: servers out, containers mid-change or set aside, canaries unjudged. */
export function unfinished(journal: Journal): string[] {
  const { outOfService, changing = [], asides = [], unproven = [] } = journal;
  return [
    ...(outOfService.length ? [`out of service: ${outOfService.join(', ')}`] : []),
    ...(changing.length ? [`mid-change: ${changing.join(', ')}`] : []),
    ...(asides.length ? [`set aside: ${asides.join(', ')}`] : []),
    ...(unproven.length ? [`canary unjudged on ${unproven.join(', ')}`] : []),
  ];
}

/** The newest whole journal of those a lock container holds (two copies, one possibly cut off mid-write). */
export function newestJournal(texts: string[]): Journal | undefined {
  let newest: Journal | undefined;
  for (const text of texts) {
    try {
      const journal = JSON.parse(text) as Journal;
      if (typeof journal.environment === 'string' && Array.isArray(journal.touched) && (newest === undefined || (journal.seq ?? 0) > (newest.seq ?? 0))) newest = journal;
    } catch {
      // A copy cut off mid-write: the other one is whole.
    }
  }
  return newest;
}
