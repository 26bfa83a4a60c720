// At most `max` connections open at once (ssh.max-connections), each opened when a call needs
// it and closed, least recently used first, when another host needs the slot. A call holds its
// connection until it returns; calls on one host share it. No call waits on another host's
// call while holding a connection, so callers beyond the bound wait their turn and none waits
// forever.

interface Entry<C> {
  connection: Promise<C>;
  /** Set once open: an idle entry has one, so closing it is not left for later. */
  opened?: C;
  users: number;
  lastUsed: number;
}

export class ConnectionPool<C> {
  private readonly entries = new Map<string, Entry<C>>();
  private readonly waiting: (() => void)[] = [];
  private tick = 0;
  /** The most connections open at once so far. */
  peak = 0;

  constructor(
    private readonly max: number,
    private readonly open: (key: string) => Promise<C>,
    private readonly close: (connection: C) => void,
  ) {}

  async use<T>(key: string, work: (connection: C) => Promise<T>): Promise<T> {
    const entry = await this.acquire(key);
    try {
      return await work(await entry.connection);
    } finally {
      entry.users--;
      entry.lastUsed = ++this.tick;
      this.waiting.shift()?.();
    }
  }

  /** Closes every connection (the end of the run). */
  dispose(): void {
    for (const entry of this.entries.values()) entry.connection.then(this.close, () => undefined);
    this.entries.clear();
  }

  private async acquire(key: string): Promise<Entry<C>> {
    for (;;) {
      const open = this.entries.get(key);
      if (open) {
        open.users++;
        return open;
      }
      if (this.entries.size >= this.max) this.evictIdle();
      if (this.entries.size < this.max) {
        const connection = this.open(key);
        const entry: Entry<C> = { connection, users: 1, lastUsed: ++this.tick };
        connection.then((opened) => (entry.opened = opened), () => undefined);
        this.entries.set(key, entry);
        this.peak = Math.max(this.peak, this.entries.size);
        // A failed open frees its slot: the next call to that host tries again.
        connection.catch(() => {
          if (this.entries.get(key) === entry) this.entries.delete(key);
          this.waiting.shift()?.();
        });
        return entry;
      }
      await new Promise<void>((turn) => this.waiting.push(turn));
    }
  }

  private evictIdle(): void {
    let oldest: [string, Entry<C>] | undefined;
    for (const item of this.entries) if (item[1].users === 0 && (!oldest || item[1].lastUsed < oldest[1].lastUsed)) oldest = item;
    if (!oldest) return;
    this.entries.delete(oldest[0]);
    // Closed before the next one opens: never more than `max` at once, even for a moment.
    if (oldest[1].opened) this.close(oldest[1].opened);
  }
}

/**
 * `key`'s driver as the pool lends it: each method call borrows the connection for its duration.
 * Every method of T must return a promise; `fixed` are its plain properties (the host's name).
 */
export function pooled<T extends object>(key: string, pool: ConnectionPool<T>, fixed: Partial<T>): T {
  return new Proxy(fixed as T, {
    get(target, property) {
      if (property in target) return target[property as keyof T];
      // Not a thenable, and nothing but the driver's own methods.
      if (typeof property === 'symbol' || property === 'then') return undefined;
      return (...args: unknown[]) => pool.use(key, (connection) => (connection[property as keyof T] as (...a: unknown[]) => Promise<unknown>)(...args));
    },
  });
}
