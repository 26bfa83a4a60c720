// Virtual time for the simulator: setTimeout, setInterval, Date and AbortSignal.timeout of the
// code under test run on a clock that moves only when the simulator moves it, to the next timer.
// A timer's callback runs in the async context it was set in (AsyncLocalStorage.snapshot), so a
// run's code after a sleep is still that run's: the simulator knows a killed runner's code by it.
import { AsyncLocalStorage } from 'node:async_hooks';

interface Timer {
  id: number;
  at: number;
  every?: number;
  run: () => void;
}

const real = {
  setTimeout: globalThis.setTimeout,
  clearTimeout: globalThis.clearTimeout,
  setInterval: globalThis.setInterval,
  clearInterval: globalThis.clearInterval,
  setImmediate: globalThis.setImmediate,
  Date: globalThis.Date,
  timeout: AbortSignal.timeout.bind(AbortSignal),
};

/** Lets every promise chain that can move without time move (a real macrotask turn). */
export const settle = () => new Promise<void>((done) => real.setImmediate(done));

/** Real time passing: for the little real I/O the code does (the post step reads its config file). */
export const realPause = (ms: number) => new Promise<void>((done) => real.setTimeout(done, ms));

/** A handle shaped like Node's Timeout, for code that unrefs its timers. */
class Handle {
  constructor(readonly id: number) {}
  unref() {
    return this;
  }
  ref() {
    return this;
  }
  hasRef() {
    return true;
  }
  refresh() {
    return this;
  }
  [Symbol.toPrimitive]() {
    return this.id;
  }
}

export class VirtualTime {
  private ms = Date.UTC(2026, 0, 1);
  private next = 1;
  private timers = new Map<number, Timer>();

  now(): number {
    return this.ms;
  }

  /** Forgets every timer (between schedules) and starts the clock again. */
  reset(): void {
    this.timers.clear();
    this.ms = Date.UTC(2026, 0, 1);
  }

  pending(): number {
    return this.timers.size;
  }

  /** Moves the clock to the earliest timer and runs it; false when there is none. */
  fire(): boolean {
    let first: Timer | undefined;
    for (const t of this.timers.values()) if (!first || t.at < first.at || (t.at === first.at && t.id < first.id)) first = t;
    if (!first) return false;
    this.ms = Math.max(this.ms, first.at);
    if (first.every !== undefined) first.at = this.ms + first.every;
    else this.timers.delete(first.id);
    first.run();
    return true;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((done) => {
      // An await after it resumes in its own context: the timer need not carry one.
      const handle = this.set(() => done(), ms, false, [], false);
      signal?.addEventListener('abort', () => {
        this.timers.delete(handle.id);
        done();
      }, { once: true });
    });
  }

  private set(fn: (...args: unknown[]) => void, ms: number | undefined, every?: boolean, args: unknown[] = [], inContext = true): Handle {
    const id = this.next++;
    const context = inContext ? AsyncLocalStorage.snapshot() : undefined;
    const bound = context ? () => context(() => fn(...args)) : () => fn(...args);
    const delay = Math.max(0, Number(ms) || 0);
    this.timers.set(id, { id, at: this.ms + delay, ...(every ? { every: Math.max(1, delay) } : {}), run: bound });
    return new Handle(id);
  }

  private clear(handle: unknown): void {
    if (handle === undefined || handle === null) return;
    this.timers.delete(Number(handle));
  }

  /** Replaces the globals; `uninstall` puts the real ones back. */
  install(): void {
    const time = this;
    const RealDate = real.Date;
    class VirtualDate extends RealDate {
      constructor(...args: unknown[]) {
        if (args.length === 0) super(time.ms);
        else super(...(args as [string]));
      }
      static override now() {
        return time.ms;
      }
    }
    const g = globalThis as Record<string, unknown>;
    g.setTimeout = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => this.set(fn, ms, false, args);
    g.setInterval = (fn: (...a: unknown[]) => void, ms?: number, ...args: unknown[]) => this.set(fn, ms, true, args);
    g.clearTimeout = (h: unknown) => this.clear(h);
    g.clearInterval = (h: unknown) => this.clear(h);
    g.Date = VirtualDate;
    AbortSignal.timeout = (ms: number) => {
      const controller = new AbortController();
      this.set(() => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')), ms);
      return controller.signal;
    };
  }

  uninstall(): void {
    const g = globalThis as Record<string, unknown>;
    g.setTimeout = real.setTimeout;
    g.setInterval = real.setInterval;
    g.clearTimeout = real.clearTimeout;
    g.clearInterval = real.clearInterval;
    g.Date = real.Date;
    AbortSignal.timeout = real.timeout;
  }
}
