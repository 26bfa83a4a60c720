// Virtual time for the in-memory estate (memory-estate.ts Clock) where many callers wait at once:
// each sleep is a timer at now + ms, and the clock jumps to the earliest timer only when nothing
// else can move. Concurrent sleeps overlap (the wall time of two parallel 1 s waits is 1 s, where
// InstantClock would count 2 s), so a rollout's virtual wall time is what it would take with the
// latencies of the model and no CPU shared between hosts.
import type { Clock } from './memory-estate.js';

interface Timer {
  at: number;
  seq: number;
  wake: () => void;
}

export class EventClock implements Clock {
  private ms = 0;
  private seq = 0;
  /** A binary min-heap on (at, seq): thousands of hosts wait at once. */
  private heap: Timer[] = [];

  now(): number {
    return this.ms;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      if (signal?.aborted) return resolve();
      const timer: Timer = { at: this.ms + Math.max(0, ms), seq: this.seq++, wake: resolve };
      this.push(timer);
      signal?.addEventListener('abort', () => {
        timer.wake = () => undefined;
        resolve();
      }, { once: true });
    });
  }

  /**
   * Runs `work` to its end: whenever every promise chain has settled (one macrotask turn), moves
   * the clock to the earliest timer and wakes it. `onTurn` is called at each move (to sample memory).
   */
  async run<T>(work: Promise<T>, onTurn: () => void = () => undefined): Promise<T> {
    let done = false;
    const settled = work.then(
      () => (done = true),
      () => (done = true),
    );
    void settled;
    for (;;) {
      await new Promise<void>((next) => setImmediate(next));
      if (done) return work;
      onTurn();
      const timer = this.pop();
      if (!timer) throw new Error('the simulated run waits for nothing the clock can move: a deadlock');
      this.ms = Math.max(this.ms, timer.at);
      timer.wake();
    }
  }

  private less(a: Timer, b: Timer): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(timer: Timer): void {
    const heap = this.heap;
    heap.push(timer);
    for (let i = heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!this.less(heap[i]!, heap[parent]!)) break;
      [heap[i], heap[parent]] = [heap[parent]!, heap[i]!];
      i = parent;
    }
  }

  private pop(): Timer | undefined {
    const heap = this.heap;
    const top = heap[0];
    const last = heap.pop();
    if (heap.length > 0 && last) {
      heap[0] = last;
      for (let i = 0; ; ) {
        const [l, r] = [2 * i + 1, 2 * i + 2];
        let least = i;
        if (l < heap.length && this.less(heap[l]!, heap[least]!)) least = l;
        if (r < heap.length && this.less(heap[r]!, heap[least]!)) least = r;
        if (least === i) break;
        [heap[i], heap[least]] = [heap[least]!, heap[i]!];
        i = least;
      }
    }
    return top;
  }
}
