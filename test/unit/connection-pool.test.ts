// ssh.max-connections: never more connections open than the bound, one shared per host, the least
// recently used closed to make room, and every caller served in the end.
import { describe, expect, it } from 'vitest';
import { ConnectionPool, pooled } from '../../src/drivers/connection-pool.js';

class Fake {
  constructor(readonly key: string, private readonly log: string[]) {}
  async work(ms: number): Promise<string> {
    await new Promise((done) => setTimeout(done, ms));
    return `${this.key} worked`;
  }
  async fail(): Promise<never> {
    throw new Error(`${this.key} failed`);
  }
  close(): void {
    this.log.push(`close ${this.key}`);
  }
}

function pool(max: number, refuse: string[] = []) {
  const log: string[] = [];
  let open = 0;
  let peak = 0;
  const p = new ConnectionPool<Fake>(
    max,
    async (key) => {
      log.push(`open ${key}`);
      if (refuse.includes(key)) throw new Error(`${key} unreachable`);
      peak = Math.max(peak, ++open);
      return new Fake(key, log);
    },
    (fake) => {
      open--;
      fake.close();
    },
  );
  return { p, log, peak: () => peak };
}

describe('ConnectionPool', () => {
  it('serves twenty hosts at once through three connections, never more open', async () => {
    const { p, peak } = pool(3);
    const keys = Array.from({ length: 20 }, (_, i) => `h${i}`);
    const answers = await Promise.all(keys.map((key) => p.use(key, (c) => c.work(2))));
    expect(answers).toEqual(keys.map((key) => `${key} worked`));
    expect(peak()).toBe(3);
    expect(p.peak).toBe(3);
  });

  it('shares one connection among a host\'s calls, and closes the least recently used to make room', async () => {
    const { p, log } = pool(2);
    await Promise.all([p.use('a', (c) => c.work(1)), p.use('a', (c) => c.work(1))]);
    await p.use('b', (c) => c.work(1));
    await p.use('a', (c) => c.work(1));
    await p.use('c', (c) => c.work(1));
    expect(log).toEqual(['open a', 'open b', 'close b', 'open c']);
  });

  it('frees the slot of a connection that could not be opened, and the next call tries again', async () => {
    const { p, log } = pool(1, ['down']);
    await expect(p.use('down', (c) => c.work(1))).rejects.toThrow('down unreachable');
    await expect(p.use('up', (c) => c.work(1))).resolves.toBe('up worked');
    await expect(p.use('down', (c) => c.work(1))).rejects.toThrow('down unreachable');
    expect(log.filter((l) => l === 'open down')).toHaveLength(2);
  });

  it('lends a driver whose calls borrow the connection, with its fixed properties, and no then', async () => {
    const { p } = pool(1);
    const a = pooled<Fake>('a', p, { key: 'a' });
    expect(a.key).toBe('a');
    expect((a as unknown as { then?: unknown }).then).toBeUndefined();
    await expect(a.work(1)).resolves.toBe('a worked');
    await expect(a.fail()).rejects.toThrow('a failed');
    await expect(pooled<Fake>('b', p, { key: 'b' }).work(1)).resolves.toBe('b worked');
  });

  it('closes every connection it holds when disposed', async () => {
    const { p, log } = pool(3);
    await Promise.all(['a', 'b'].map((key) => p.use(key, (c) => c.work(1))));
    p.dispose();
    await new Promise((done) => setTimeout(done, 1));
    expect(log.filter((l) => l.startsWith('close')).sort()).toEqual(['close a', 'close b']);
  });
});
