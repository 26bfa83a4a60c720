// The lock stage as the pipeline wires it (takeLock): the job's cancel signal reaches the wait
// for a live lock and its sleep, and an error from GitHub never makes a lock stale. The rules
// themselves (rollout/lock.ts) are tested in interruptions.test.ts; these fail if the pipeline
// stops passing them the signal or starts reading an error as "GitHub cannot tell".
import { describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import { GitHubApiError, type GitHubApi } from '../../src/drivers/github.js';
import type { Inputs } from '../../src/inputs.js';
import type { Connected } from '../../src/pipeline/preflight.js';
import type { Release } from '../../src/rollout/ports.js';
import { lockOf } from '../support/deploy-lock.js';
import { Estate, MemoryHost, release } from '../support/memory-estate.js';

/** Sleeps the lock's wait starts: a sleep given the cancel signal ends only when it aborts. */
const sleeps = vi.hoisted(() => ({ started: [] as (() => void)[] }));
vi.mock('node:timers/promises', async (original) => {
  const real = await original<typeof import('node:timers/promises')>();
  return {
    ...real,
    setTimeout: (ms: number, value?: unknown, options?: { signal?: AbortSignal }) => {
      const signal = options?.signal;
      if (!signal) return real.setTimeout(ms, value);
      // Never over by itself: only the abort ends it, so a wait that ends proves the signal reached it.
      return new Promise((_resolve, reject) => {
        signal.addEventListener('abort', () => reject(signal.reason), { once: true });
        sleeps.started.shift()?.();
      });
    },
  };
});
vi.mock('@actions/core', async (original) => ({ ...(await original<object>()), info: () => undefined, warning: () => undefined, saveState: () => undefined }));

const { takeLock } = await import('../../src/pipeline/lock.js');

const configWith = (lock: string) =>
  parseConfig('deploy.yml', ['app: app', 'image: r/app', 'container: { port: 3000 }', 'environments:', '  production:', '    hosts: [h1, h2]', `    lock: ${lock}`, ''].join('\n'));
const inputs = { run: { repository: 'clay/app', serverUrl: 'https://github.com', runId: '1003', runAttempt: '1', actor: 'octocat', workflow: 'release' } } as Inputs;
const v2: Release = release('v2.0.0');

function held(config: ReturnType<typeof configWith>) {
  const world = new Estate(['h1', 'h2']);
  // Run 1001 took the lock long ago (t0), and never refreshed it.
  world.locks.set('h1/app-deploy-lock', lockOf('1001'));
  const connected = { env: config.environments.production!, hosts: new Map([['h1', new MemoryHost('h1', world)]]) } as unknown as Connected;
  return { world, connected };
}

describe('the lock stage (takeLock)', () => {
  it('an error from GitHub (HTTP 502) never makes a lock stale: with takeover: true, a lock far older than stale-after stays its holder\'s', async () => {
    const config = configWith('{ takeover: true, stale-after: 60, wait: 0 }');
    const { world, connected } = held(config);
    const github = { runEnded: async () => Promise.reject(new GitHubApiError('Could not read workflow run 1001: HTTP 502', 502)) } as unknown as GitHubApi;
    await expect(takeLock(inputs, config, connected, v2, github)).rejects.toThrow('another deploy holds the lock');
    expect(world.locks.get('h1/app-deploy-lock')?.runId).toBe('1001');
  });

  it('GitHub cannot be asked (no token): the age decides, and the stale lock is taken over', async () => {
    const config = configWith('{ takeover: true, stale-after: 60, wait: 0 }');
    const { world, connected } = held(config);
    const taken = await takeLock(inputs, config, connected, v2, undefined);
    expect(taken.held.tookOver).toBe(true);
    expect(world.locks.get('h1/app-deploy-lock')?.runId).toBe('1003');
  });

  it('a cancel ends the wait for a live lock at once, mid-sleep, and takes nothing', async () => {
    const config = configWith('{ wait: 3600 }');
    const { world, connected } = held(config);
    const github = { runEnded: async () => false } as unknown as GitHubApi;
    const controller = new AbortController();
    const sleeping = new Promise<void>((started) => sleeps.started.push(started));
    const waiting = takeLock(inputs, config, connected, v2, github, controller.signal);
    await sleeping;
    controller.abort();
    await expect(waiting).rejects.toThrow('cancelled while waiting for the deploy lock; nothing was changed');
    expect(world.locks.get('h1/app-deploy-lock')?.runId).toBe('1001');
  });
});
