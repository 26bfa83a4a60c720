// The event clock under the scale simulation: waits that overlap take the longest one's time, not
// the sum, and a run that waits for nothing the clock can move is reported, not hung.
import { describe, expect, it } from 'vitest';
import { EventClock } from '../support/event-clock.js';
import { simulate } from '../../scripts/simulate.js';

describe('EventClock', () => {
  it('runs overlapping sleeps side by side, and ones in sequence one after the other', async () => {
    const clock = new EventClock();
    const order: string[] = [];
    const wait = async (name: string, ms: number) => {
      await clock.sleep(ms);
      order.push(`${name}@${clock.now()}`);
    };
    await clock.run(Promise.all([wait('a', 1000), wait('b', 300), (async () => { await wait('c1', 200); await wait('c2', 200); })()]));
    expect(clock.now()).toBe(1000);
    expect(order).toEqual(['c1@200', 'b@300', 'c2@400', 'a@1000']);
  });

  it('wakes an aborted sleep at once', async () => {
    const clock = new EventClock();
    const abort = new AbortController();
    const slept = clock.sleep(60_000, abort.signal);
    abort.abort();
    await clock.run(slept);
    expect(clock.now()).toBe(0);
  });

  it('names a deadlock', async () => {
    await expect(new EventClock().run(new Promise(() => undefined))).rejects.toThrow(/deadlock/);
  });
});

describe('the scale simulation', () => {
  it('rolls 200 hosts behind 2 load balancers to the new release with no moment HAProxy could route to a dead container', async () => {
    const row = await simulate(200, 2);
    expect(row.violations).toBe(0);
    expect(row.ssh).toBe(202);
  });

  it('with ssh.max-connections, never holds more host connections than the bound', async () => {
    const row = await simulate(200, 1, 20);
    expect(row.violations).toBe(0);
    expect(row.ssh).toBe(21);
  });
});
