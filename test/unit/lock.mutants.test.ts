// When the deploy lock counts as stale, and what a refusal says, at the edges lock.test.ts does
// not reach. Written against mutation testing (npm run mutate): each test kills changes to
// src/rollout/lock.ts that lock.test.ts lets through.
//
// Equivalent mutants, left in the report on purpose:
// - LockError's `name = 'LockError'` → ''. The action reports an error by its message only
//   (main.ts: fail), so the name never reaches a user.
// - staleReason's `signOfLife !== undefined` → true: `undefined > lock.since` is false all the
//   same (the guard is there for the type checker).
import { describe, expect, it } from 'vitest';
import { acquireDeployLock, describeLock, LockError, lockHost, staleReason, type LockPolicy } from '../../src/rollout/lock.js';
import type { DeployLock, HostDriver } from '../../src/rollout/ports.js';
import { lockOf, t0 } from '../support/deploy-lock.js';

const lock = (runId: string, attempt = '1', since = t0) => lockOf(runId, { attempt, since });

/** A policy whose clock moves only when the lock waits; `ended` is what GitHub says of the holder's run. */
function policy(ended: boolean | undefined, config: Partial<LockPolicy['config']> = {}, startAt = t0.getTime()) {
  let now = startAt;
  const lines: string[] = [];
  const p: LockPolicy = {
    config: { wait: 0, 'stale-after': 3600, takeover: false, ...config },
    runEnded: async () => ended,
    sleep: async (ms) => void (now += ms),
    now: () => new Date(now),
    warn: (l) => lines.push(`warn: ${l}`),
    info: (l) => lines.push(`info: ${l}`),
  };
  return { p, lines };
}

/** A lock slot that someone else holds for good. */
const heldBy = (holder: DeployLock) => ({ host: 'h1', acquireLock: async () => ({ acquired: false as const, current: holder }), releaseLock: async () => false, readLockJournal: async () => [] }) as unknown as HostDriver;

describe('staleReason', () => {
  it("on a re-run (attempt 2), another run's live lock is live", async () => {
    expect(await staleReason(lock('5', '1'), lock('9', '2'), policy(false).p)).toBeUndefined();
  });

  it("this very attempt's own lock is live while GitHub reports the run running", async () => {
    expect(await staleReason(lock('9', '2'), lock('9', '2'), policy(false).p)).toBeUndefined();
  });

  it('an earlier attempt of this run without an attempt number is named "?"', async () => {
    expect(await staleReason(lock('9', ''), lock('9', '2'), policy(false).p)).toBe('it belongs to attempt ? of this run, and this is attempt 2');
  });

  it('a lock exactly lock.stale-after old is still live when GitHub cannot tell; a second older is stale', async () => {
    const oneHour = t0.getTime() + 3600_000;
    expect(await staleReason(lock('5'), lock('9'), policy(undefined, {}, oneHour).p)).toBeUndefined();
    expect(await staleReason(lock('5'), lock('9'), policy(undefined, {}, oneHour + 1000).p)).toBe(
      'it is older than lock.stale-after (3600s) and GitHub cannot tell whether its run has ended',
    );
  });
});

describe("the holder's last sign of life (GitHub cannot tell)", () => {
  const twoHoursAgo = new Date(t0.getTime() - 7200_000);
  const tenMinutesAgo = new Date(t0.getTime() - 600_000);

  it('keeps an old lock live while its holder showed life within lock.stale-after', async () => {
    expect(await staleReason(lock('5', '1', twoHoursAgo), lock('9'), policy(undefined).p, tenMinutesAgo)).toBeUndefined();
  });

  it('counts from the lock when the sign of life is older than the lock (left by an earlier run)', async () => {
    expect(await staleReason(lock('5', '1', tenMinutesAgo), lock('9'), policy(undefined).p, twoHoursAgo)).toBeUndefined();
  });

  it('names the sign of life when it is what went stale, and the lock when they are the same moment', async () => {
    const threeHoursAgo = new Date(t0.getTime() - 3 * 3600_000);
    expect(await staleReason(lock('5', '1', threeHoursAgo), lock('9'), policy(undefined).p, twoHoursAgo)).toBe(
      "its holder's last sign of life (2025-12-31T22:00:00.000Z) is older than lock.stale-after (3600s) and GitHub cannot tell whether its run has ended",
    );
    expect(await staleReason(lock('5', '1', twoHoursAgo), lock('9'), policy(undefined).p, twoHoursAgo)).toBe(
      'it is older than lock.stale-after (3600s) and GitHub cannot tell whether its run has ended',
    );
  });
});

describe('a lock whose journal cannot be read', () => {
  it('is judged all the same, says so, and a takeover gets an empty journal', async () => {
    let taken = false;
    const host = {
      host: 'h1',
      acquireLock: async () => (taken ? { acquired: true as const } : { acquired: false as const, current: lock('5') }),
      releaseLock: async () => ((taken = true), true),
      readLockJournal: async () => {
        throw new Error('h1: no such container');
      },
    } as unknown as HostDriver;
    const { p, lines } = policy(true, { takeover: true });
    expect(await acquireDeployLock(host, 'l', lock('9'), 'img', p)).toEqual({ tookOverFrom: lock('5'), journal: [] });
    expect(lines[0]).toBe('info: Could not read the journal kept in the deploy lock: h1: no such container');
  });
});

describe('acquireDeployLock refusing', () => {
  it('a stale lock without lock.takeover says how to take it over', async () => {
    await expect(acquireDeployLock(heldBy(lock('5')), 'l', lock('9'), 'img', policy(true).p)).rejects.toThrow(
      'Check that no deploy is running, then set lock.takeover: true in the deploy config to take it over.',
    );
  });

  it('with lock.wait: 0, fails at once, without waiting', async () => {
    const { p, lines } = policy(false, { wait: 0 });
    await expect(acquireDeployLock(heldBy(lock('5')), 'l', lock('9'), 'img', p)).rejects.toThrow('another deploy holds the lock');
    expect(lines).toEqual([]);
  });
});

describe('describeLock', () => {
  it('names the run by id when its URL is unknown, and the attempt as "?" when missing', () => {
    expect(describeLock({ ...lock('5', ''), runUrl: '' })).toBe('octocat (release #5) since 2026-01-01T00:00:00.000Z deploying v1.0.0 (run 5, attempt ?)');
  });
});

describe('lockHost', () => {
  it('refuses an environment without hosts, saying why', () => {
    expect(() => lockHost([])).toThrow(new LockError('no host to hold the deploy lock'));
  });
});
