import { describe, expect, it } from 'vitest';
import { acquireDeployLock, lockHost as lockHostOf, type LockPolicy } from '../../src/rollout/lock.js';
import type { DeployLock, HostDriver, LockOwner } from '../../src/rollout/ports.js';
import { lockOf, t0 } from '../support/deploy-lock.js';

const lock = (runId: string, since = t0, attempt = '1') => lockOf(runId, { since, attempt });

/** One lock slot with Docker's semantics: create fails while a lock exists. */
function lockHost(existing?: DeployLock, journalTexts: string[] = []) {
  let held = existing;
  let journal = journalTexts;
  const host = {
    host: 'h1',
    acquireLock: async (_name: string, mine: DeployLock) => {
      if (held) return { acquired: false as const, current: held };
      held = mine;
      return { acquired: true as const };
    },
    releaseLock: async (_name: string, owner: LockOwner) => {
      if (held?.runId !== owner.runId || held.attempt !== owner.attempt) return false;
      held = undefined;
      journal = [];
      return true;
    },
    readLockJournal: async () => journal,
  } as unknown as HostDriver;
  return { host, held: () => held };
}

function policy(overrides: Partial<LockPolicy> & { wait?: number; takeover?: boolean; ended?: boolean } = {}) {
  let now = t0.getTime() + 60_000;
  const lines: string[] = [];
  const p: LockPolicy = {
    config: { wait: overrides.wait ?? 0, 'stale-after': 3600, takeover: overrides.takeover ?? false },
    runEnded: async () => overrides.ended,
    sleep: async (ms) => void (now += ms),
    now: () => new Date(now),
    warn: (l) => lines.push(`warn: ${l}`),
    info: (l) => lines.push(`info: ${l}`),
    ...overrides,
  };
  return { p, lines, advance: (ms: number) => (now += ms) };
}

describe('acquireDeployLock', () => {
  it('takes a free lock', async () => {
    const { host, held } = lockHost();
    await acquireDeployLock(host, 'demo-deploy-lock', lock('2'), 'img', policy().p);
    expect(held()?.runId).toBe('2');
  });

  it('fails at once on a live lock, naming the holder', async () => {
    const { host } = lockHost(lock('1'));
    await expect(acquireDeployLock(host, 'l', lock('2'), 'img', policy().p)).rejects.toThrow(
      'another deploy holds the lock: octocat (release #1) since 2026-01-01T00:00:00.000Z deploying v1.0.0 (https://github.com/clay/demo/actions/runs/1, attempt 1); set lock.wait to wait for it',
    );
  });

  it('waits up to lock.wait for a live lock, then fails', async () => {
    const { host } = lockHost(lock('1'));
    const { p, lines } = policy({ wait: 12 });
    await expect(acquireDeployLock(host, 'l', lock('2'), 'img', p)).rejects.toThrow('waited 12s (lock.wait)');
    expect(lines.filter((l) => l.startsWith('info: Waiting'))).toHaveLength(3);
  });

  it.each([
    ['its run has ended', { ended: true }, lock('1')],
    ['it is older than lock.stale-after (3600s) and GitHub cannot tell whether its run has ended', { ended: undefined }, lock('1', new Date(t0.getTime() - 7200_000))],
  ])('reports a stale lock (%s) and stops without takeover', async (reason, opts, existing) => {
    const { host, held } = lockHost(existing);
    await expect(acquireDeployLock(host, 'l', lock('2'), 'img', policy(opts).p)).rejects.toThrow(
      `the deploy lock is stale (${reason}): held by octocat (release #1)`,
    );
    expect(held()?.runId).toBe('1');
  });

  it('takes over a stale lock with lock.takeover, and says so', async () => {
    const { host, held } = lockHost(lock('1'));
    const { p, lines } = policy({ ended: true, takeover: true });
    await acquireDeployLock(host, 'l', lock('2'), 'img', p);
    expect(held()?.runId).toBe('2');
    expect(lines[0]).toMatch(/^warn: Taking over a stale deploy lock \(its run has ended\) held by octocat \(release #1\)/);
  });

  it('never takes over a live lock, even with lock.takeover', async () => {
    const { host, held } = lockHost(lock('1'));
    await expect(acquireDeployLock(host, 'l', lock('2'), 'img', policy({ ended: false, takeover: true }).p)).rejects.toThrow('another deploy holds the lock');
    expect(held()?.runId).toBe('1');
  });

  it('never calls a lock stale by age while GitHub reports its run running', async () => {
    const { host, held } = lockHost(lock('1', new Date(t0.getTime() - 7200_000)));
    await expect(acquireDeployLock(host, 'l', lock('2'), 'img', policy({ ended: false, takeover: true }).p)).rejects.toThrow('another deploy holds the lock');
    expect(held()?.runId).toBe('1');
  });

  it('takes over the lock of an earlier attempt of this very run, without lock.takeover, and returns it', async () => {
    const { host, held } = lockHost(lock('7', t0, '1'));
    // GitHub reports the run (now in attempt 2) as running: that is this attempt, not the holder.
    const { p, lines } = policy({ ended: false });
    const result = await acquireDeployLock(host, 'l', lock('7', t0, '2'), 'img', p);
    expect(held()?.attempt).toBe('2');
    expect(result.tookOverFrom?.attempt).toBe('1');
    expect(lines[0]).toContain('it belongs to attempt 1 of this run, and this is attempt 2');
  });

  it('returns no takeover for a free lock', async () => {
    expect(await acquireDeployLock(lockHost().host, 'l', lock('2'), 'img', policy().p)).toEqual({});
  });
});

describe('lockHost', () => {
  it('does not depend on the order the hosts are listed in', () => {
    expect(lockHostOf(['10.0.0.12', '10.0.0.11', 'web-3'])).toBe('10.0.0.11');
    expect(lockHostOf(['web-3', '10.0.0.11', '10.0.0.12'])).toBe('10.0.0.11');
  });
});

