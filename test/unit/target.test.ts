// Which release a deploy or rollback goes to, from what the environment runs and ran.
import { describe, expect, it } from 'vitest';
import { runningVersion, wantedRelease, historyFor, type EnvironmentState } from '../../src/pipeline/target.js';
import type { DeploymentRecord } from '../../src/release/history.js';
import type { HostTarget } from '../../src/rollout/plan.js';
import type { Release } from '../../src/rollout/ports.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const entry = (version: string, c: string) => `${version}@${digest(c)}`;
const release = (version: string, c: string, history?: string[]): Release => ({
  version,
  digest: digest(c),
  ref: `reg/app@${digest(c)}`,
  ...(history ? { history } : {}),
});

function state(hosts: Record<string, HostTarget>, records?: DeploymentRecord[]): EnvironmentState {
  return { environment: 'production', current: new Map(Object.entries(hosts)), ...(records ? { records } : {}) };
}

const record = (id: number, task: string, version: string, c: string, st: DeploymentRecord['state'] = 'inactive'): DeploymentRecord => ({
  id,
  ref: version,
  task,
  createdAt: new Date(Date.UTC(2026, 0, 1, 0, id)),
  payload: { version, image: 'reg/app', digest: digest(c) },
  state: st,
});

const v13 = release('v1.3.0', 'c', [entry('v1.2.0', 'b'), entry('v1.3.0', 'c')]);
const both = (r: Release): HostTarget => ({ master: r, backup: r });

describe('runningVersion', () => {
  it('is what most masters run', () => {
    expect(runningVersion(new Map([['h1', both(v13)], ['h2', both(v13)], ['h3', both(release('v1.4.0', 'd'))]]))).toBe('v1.3.0');
  });

  it('does not depend on host order when hosts disagree evenly: the higher release', () => {
    const a = new Map([['h1', both(release('v1.10.0', 'd'))], ['h2', both(release('v1.9.0', 'c'))]]);
    const b = new Map([['h2', both(release('v1.9.0', 'c'))], ['h1', both(release('v1.10.0', 'd'))]]);
    expect(runningVersion(a)).toBe('v1.10.0');
    expect(runningVersion(b)).toBe('v1.10.0');
  });

  it('ignores what has no release tag (an adopted container of an untagged image)', () => {
    const unknown: Release = { version: 'unknown', ref: 'app:latest', digest: '', adopted: true };
    expect(runningVersion(new Map([['h1', both(unknown)]]))).toBe('');
  });
});

describe('wantedRelease', () => {
  it('a deploy takes its tag and the build job digest', () => {
    expect(wantedRelease({ task: 'deploy', tag: 'v1.4.0', digest: digest('d') }, state({}))).toMatchObject({ tag: 'v1.4.0', digest: digest('d'), neverRan: false });
  });

  describe('rollback to previous', () => {
    it('from the deployment history, at the digest it ran', () => {
      const records = [record(2, 'deploy', 'v1.3.0', 'c', 'success'), record(1, 'deploy', 'v1.2.0', 'e')];
      expect(wantedRelease({ task: 'rollback', version: 'previous', allowNeverDeployed: false }, state({ h1: both(v13) }, records))).toMatchObject({
        tag: 'v1.2.0',
        digest: digest('e'),
      });
    });

    it('from the containers history label when GitHub has none (no token)', () => {
      const wanted = wantedRelease({ task: 'rollback', version: 'previous', allowNeverDeployed: false }, state({ h1: both(v13) }));
      expect(wanted).toMatchObject({ tag: 'v1.2.0', digest: digest('b') });
      expect(wanted.reason).toContain("containers' history labels");
    });

    it('stops where the history ends, never going forward to a newer image the hosts keep', () => {
      const first = release('v1.2.0', 'b', [entry('v1.2.0', 'b')]);
      expect(() => wantedRelease({ task: 'rollback', version: 'previous', allowNeverDeployed: false }, state({ h1: both(first) }, []))).toThrow(
        'version: previous: the history of production has no release before v1.2.0',
      );
    });

    it('needs something running', () => {
      expect(() => wantedRelease({ task: 'rollback', version: 'previous', allowNeverDeployed: false }, state({}))).toThrow('nothing with a release tag runs in production yet');
    });
  });

  describe('rollback to a tag', () => {
    it('one the environment ran, at the digest it ran (history)', () => {
      const records = [record(2, 'deploy', 'v1.3.0', 'c', 'success'), record(1, 'deploy', 'v1.1.0', 'a')];
      expect(wantedRelease({ task: 'rollback', version: 'v1.1.0', allowNeverDeployed: false }, state({ h1: both(v13) }, records))).toMatchObject({
        tag: 'v1.1.0',
        digest: digest('a'),
        neverRan: false,
      });
    });

    it('one the environment ran, from the labels', () => {
      expect(wantedRelease({ task: 'rollback', version: 'v1.2.0', allowNeverDeployed: false }, state({ h1: both(v13) }))).toMatchObject({ digest: digest('b') });
    });

    it('refuses one the environment never ran', () => {
      expect(() => wantedRelease({ task: 'rollback', version: 'v1.0.0', allowNeverDeployed: false }, state({ h1: both(v13) }, []))).toThrow(
        'version: v1.0.0 never ran in production',
      );
    });

    it('allows it with allow-never-deployed, and says so', () => {
      const wanted = wantedRelease({ task: 'rollback', version: 'v1.0.0', allowNeverDeployed: true }, state({ h1: both(v13) }, []));
      expect(wanted).toMatchObject({ tag: 'v1.0.0', digest: '', neverRan: true });
      expect(wanted.reason).toContain('NEVER ran');
    });
  });
});

describe('historyFor', () => {
  it('continues the running release history; an adopted release with a digest starts one', () => {
    const target = { version: 'v1.4.0', digest: digest('d') };
    expect(historyFor(state({ h1: both(v13) }), target, 'deploy')).toEqual([entry('v1.2.0', 'b'), entry('v1.3.0', 'c'), entry('v1.4.0', 'd')]);
    const adopted: Release = { version: 'v0.9.0', ref: 'reg/app:v0.9.0', digest: digest('9'), adopted: true };
    expect(historyFor(state({ h1: both(adopted) }), target, 'deploy')).toEqual([entry('v0.9.0', '9'), entry('v1.4.0', 'd')]);
    expect(historyFor(state({}), target, 'deploy')).toEqual([entry('v1.4.0', 'd')]);
  });
});
