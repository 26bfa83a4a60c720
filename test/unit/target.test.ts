// Which release a deploy or rollback goes to, from what the environment runs and ran.
import { describe, expect, it } from 'vitest';
import { runningVersion, targetChanged, wantedRelease, historyFor, type EnvironmentState } from '../../src/pipeline/target.js';
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
    it("from the hosts' history label, at the digest it ran there; GitHub's records only cross-checked", () => {
      const agreeing = [record(2, 'deploy', 'v1.3.0', 'c', 'success'), record(1, 'deploy', 'v1.2.0', 'b')];
      const wanted = wantedRelease({ task: 'rollback', version: 'previous', allowNeverDeployed: false }, state({ h1: both(v13) }, agreeing));
      expect(wanted).toMatchObject({ tag: 'v1.2.0', digest: digest('b'), source: "the hosts' history (the deploy-action.history label)", disagreements: [] });
      expect(wanted.reason).toBe("previous: v1.2.0, the release before v1.3.0 in the hosts' history (the deploy-action.history label)");
    });

    it('reports records that disagree, and goes where the hosts say', () => {
      const other = [record(2, 'deploy', 'v1.3.0', 'c', 'success'), record(1, 'deploy', 'v1.2.0', 'e')];
      const wanted = wantedRelease({ task: 'rollback', version: 'previous', allowNeverDeployed: false }, state({ h1: both(v13) }, other));
      expect(wanted).toMatchObject({ tag: 'v1.2.0', digest: digest('b') });
      expect(wanted.disagreements).toEqual([
        `GitHub's deployment records of production say the release before v1.3.0 is ${entry('v1.2.0', 'e')}, the hosts' history (the deploy-action.history label) says ${entry('v1.2.0', 'b')}: ` +
          'the hosts decide. A record that disagrees was written by a run that did not deploy it there (any workflow with deployments: write can write one); look at who wrote it',
      ]);
    });

    it('from the label alone when GitHub has none (no token)', () => {
      const wanted = wantedRelease({ task: 'rollback', version: 'previous', allowNeverDeployed: false }, state({ h1: both(v13) }));
      expect(wanted).toMatchObject({ tag: 'v1.2.0', digest: digest('b'), disagreements: [] });
    });

    it('stops where the hosts\' history ends, never going forward to a newer image the hosts keep, whatever the records say', () => {
      const first = release('v1.2.0', 'b', [entry('v1.2.0', 'b')]);
      const records = [record(2, 'deploy', 'v1.2.0', 'b', 'success'), record(1, 'deploy', 'v1.1.0', 'a')];
      expect(() => wantedRelease({ task: 'rollback', version: 'previous', allowNeverDeployed: false }, state({ h1: both(first) }, records))).toThrow(
        "version: previous: the hosts' history (the deploy-action.history label) in production has no release before v1.2.0 (repeated rollbacks walk it back to its start); " +
          "give the tag of a release this environment ran (GitHub's records name v1.1.0, but only what the hosts ran counts)",
      );
    });

    it('needs something running', () => {
      expect(() => wantedRelease({ task: 'rollback', version: 'previous', allowNeverDeployed: false }, state({}))).toThrow('nothing with a release tag runs in production yet');
    });
  });

  describe('rollback to a tag', () => {
    it('one the environment ran, at the digest the hosts ran it; a record claiming another digest is reported', () => {
      const records = [record(2, 'deploy', 'v1.3.0', 'c', 'success'), record(1, 'deploy', 'v1.2.0', 'e')];
      const wanted = wantedRelease({ task: 'rollback', version: 'v1.2.0', allowNeverDeployed: false }, state({ h1: both(v13) }, records));
      expect(wanted).toMatchObject({ tag: 'v1.2.0', digest: digest('b'), neverRan: false });
      expect(wanted.disagreements).toHaveLength(1);
      expect(wanted.disagreements![0]).toContain(`say v1.2.0 ran there at ${digest('e')}, the hosts' history (the deploy-action.history label) says at ${digest('b')}`);
    });

    it('one only GitHub\'s records claim is refused as never ran', () => {
      const records = [record(2, 'deploy', 'v1.3.0', 'c', 'success'), record(1, 'deploy', 'v1.1.0', 'a')];
      expect(() => wantedRelease({ task: 'rollback', version: 'v1.1.0', allowNeverDeployed: false }, state({ h1: both(v13) }, records))).toThrow(
        "version: v1.1.0 never ran in production (the hosts' history (the deploy-action.history label) does not have it; GitHub's records claim it did",
      );
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

describe('targetChanged', () => {
  const shown = { version: 'v1.2.0', digest: digest('b') };
  const rollback = { task: 'rollback' as const, version: 'previous', allowNeverDeployed: false };

  it('stops a rollback whose target changed between resolving and acting', () => {
    expect(targetChanged(rollback, shown, { version: 'v1.1.0', digest: digest('a') }, 'production')).toBe(
      `the rollback target changed between resolving it (${entry('v1.2.0', 'b')}) and acting on it under the deploy lock (${entry('v1.1.0', 'a')}): ` +
        'another run changed production meanwhile. Nothing was changed; run the rollback again to go to what previous means now',
    );
    expect(targetChanged(rollback, shown, { version: 'v1.2.0', digest: digest('e') }, 'production')).toMatch(/^the rollback target changed/);
  });

  it('lets an unchanged rollback, and any deploy, go on', () => {
    expect(targetChanged(rollback, shown, { ...shown }, 'production')).toBeUndefined();
    expect(targetChanged({ task: 'deploy', tag: 'v1.2.0', digest: '' }, shown, { version: 'v1.2.0', digest: digest('e') }, 'production')).toBeUndefined();
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
