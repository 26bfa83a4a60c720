// The rollout plan as a user meets it: what `command: plan` prints, which host is the canary and
// where it holds, which containers count as running, and when a container already runs the
// release. Written against mutation testing (npm run mutate): each test kills changes to
// src/rollout/plan.ts that the rollout tests let through.
import { describe, expect, it } from 'vitest';
import { describePlan, describeStep, planHost, planRollout, runningReleases, sameRelease, settleTarget, type HostTarget, type Step } from '../../src/rollout/plan.js';
import type { AppContainer, Release } from '../../src/rollout/ports.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const release = (version: string, c: string, repository = 'registry:5000/team/app'): Release => ({ version, digest: digest(c), ref: `${repository}@${digest(c)}` });
const v1 = release('v1.0.0', '1');
const v2 = release('v2.0.0', '2');
/** A container started by hand: no digest label, adopted as it is. */
const handRun: Release = { version: 'v0.9.0', ref: 'registry:5000/team/app:v0.9.0', digest: '', adopted: true };

const steps = (host: { steps: Step[] }) => host.steps.map((s) => `${s.kind} ${s.role}`);

describe('the plan as `command: plan` prints it', () => {
  it('shows each batch, numbered from 1, each host with what it runs and its own steps only', () => {
    const plan = planRollout(
      v2,
      [
        { host: 'a', current: { master: v1, backup: v1 } },
        { host: 'b', current: {} },
        { host: 'c', current: { master: v2, backup: v2 } },
      ],
      2,
      30,
    );
    expect(describePlan(plan)).toEqual([
      `Target: v2.0.0 (registry:5000/team/app@${digest('2')})`,
      'Batch 1: a',
      '  a (master v1.0.0, backup v1.0.0)',
      '    - backup: keep v1.0.0, check it is healthy and in service',
      '    - master: v1.0.0 → v2.0.0',
      "    - master: hold 30 s as the canary, judged by the load balancers' counters (canary)",
      '    - backup: v1.0.0 → v2.0.0',
      'Batch 2: b, c',
      '  b (master nothing, backup nothing)',
      '    - backup: nothing → v2.0.0',
      '    - master: nothing → v2.0.0',
      '  c (master v2.0.0, backup v2.0.0)',
      '    - backup: keep v2.0.0, check it is healthy and in service',
      '    - master: keep v2.0.0, check it is healthy and in service',
    ]);
  });

  it('names a removal and what it removes (rollback of a first deploy)', () => {
    expect(describeStep({ kind: 'remove', role: 'master', from: v2 })).toBe('master: remove v2.0.0');
    expect(describeStep({ kind: 'remove', role: 'backup', from: handRun })).toBe('backup: remove v0.9.0 (registry:5000/team/app:v0.9.0, started without deploy-action: adopting it)');
  });
});

describe('the canary host', () => {
  it('is the first host whose master changes, not one already on the target', () => {
    // h1's master runs the target already (a re-run after a kill); only its backup moves.
    const plan = planRollout(v2, [{ host: 'h1', current: { master: v2, backup: v1 } }, { host: 'h2', current: { master: v1, backup: v1 } }], 2, 30);
    expect(plan.batches).toEqual([['h2'], ['h1']]);
    expect(steps(plan.hosts[1]!)).toEqual(['check backup', 'replace master', 'hold master', 'replace backup']);
    expect(steps(plan.hosts[0]!)).not.toContain('hold master');
  });

  // Equivalent mutant: `s.kind === 'replace'` → true where the hold is inserted (plan.ts, `const
  // at = ...`). A host has exactly one master step, and the canary was chosen for its master
  // replace, so its first master step is that replace either way.
  it('holds once its new master serves, not after the stand-in backup started before it', () => {
    const plan = planRollout(v2, [{ host: 'h1', current: { master: v1 } }], 1, 30);
    expect(steps(plan.hosts[0]!)).toEqual(['replace backup', 'replace master', 'hold master']);
  });

  it('is none when no master changes: nothing to judge, no hold, batches as max-parallel says', () => {
    const plan = planRollout(v2, [{ host: 'h1', current: { master: v2, backup: v1 } }, { host: 'h2', current: { master: v2, backup: v2 } }], 1, 30);
    expect(plan.batches).toEqual([['h1'], ['h2']]);
    expect(plan.hosts.flatMap(steps)).not.toContain('hold master');
  });
});

describe('planHost', () => {
  it('removes both roles when a host goes back to nothing (rollback of a first deploy), the master first', () => {
    expect(steps(planHost('h1', { master: v2, backup: v2 }, {}))).toEqual(['check backup', 'remove master', 'remove backup']);
  });

  it('keeps a stand-in backup serving while the master moves, even when the target has no backup', () => {
    const plan = planHost('h1', { master: v1 }, { master: v2 });
    expect(plan.steps).toEqual([
      { kind: 'replace', role: 'backup', to: v2 },
      { kind: 'replace', role: 'master', from: v1, to: v2 },
      { kind: 'remove', role: 'backup', from: v2 },
    ]);
  });

  it('does nothing to an empty host that is to stay empty', () => {
    expect(planHost('h1', {}, {}).steps).toEqual([]);
  });

  it('only checks hand-run containers a rollback puts back as they were', () => {
    expect(steps(planHost('h1', { master: handRun, backup: handRun }, { master: handRun, backup: handRun }))).toEqual(['check backup', 'check master']);
  });
});

describe('settleTarget: where a host cut short goes back to', () => {
  it('what it ran before this run, master and backup as they were (hand-run containers put back whole)', () => {
    expect(settleTarget({ master: v2, backup: v1 }, false, { master: handRun, backup: v1 })).toEqual({ master: handRun, backup: v1 });
  });

  it('the master it ran before on both roles, when it had no backup', () => {
    expect(settleTarget({ master: v2, backup: v2 }, false, { master: v1 })).toEqual({ master: v1, backup: v1 });
  });

  it('the new master once it is proven in service, whatever ran before', () => {
    expect(settleTarget({ master: v2, backup: v1 }, true, { master: v1, backup: v1 })).toEqual({ master: v2, backup: v2 });
  });
});

describe('sameRelease: whether a container already runs the release (then it is only checked)', () => {
  it.each<[string, Release | undefined, Release | undefined, boolean]>([
    ['the same digest', v1, { ...v1 }, true],
    ['the same digest pulled through another repository name', v1, release('v1.0.0', '1', 'mirror:5000/team/app'), true],
    ['another digest', v1, v2, false],
    ['no digest on either (unknown image): never the same', { ...v1, digest: '' }, { ...v1, digest: '' }, false],
    ['nothing running', undefined, v1, false],
    ['nothing wanted', v1, undefined, false],
    ['an adopted container and a release of ours with its very image', { ...v2, adopted: true }, v2, false],
    ['the same adopted container', handRun, { ...handRun }, true],
    ['adopted containers of another image reference', handRun, { ...handRun, ref: 'registry:5000/team/app:v0.9.1' }, false],
    ['adopted containers of the same reference and another digest', { ...handRun, digest: digest('a') }, { ...handRun, digest: digest('b') }, false],
  ])('%s → %s', (_case, a, b, same) => {
    expect(sameRelease(a, b)).toBe(same);
  });
});

describe('runningReleases: what a host runs, as the plan starts from', () => {
  const container = (role: 'master' | 'backup', running: boolean, r?: Release): AppContainer => ({ id: `${role}-id`, name: role, role, running, ...(r ? { release: r } : {}) });

  it.each<[string, Partial<Record<'master' | 'backup', AppContainer>>, HostTarget]>([
    ['both running', { master: container('master', true, v2), backup: container('backup', true, v1) }, { master: v2, backup: v1 }],
    ['a stopped container counts as absent (it is started again on the target)', { master: container('master', false, v2), backup: container('backup', true, v1) }, { backup: v1 }],
    ['a container without a release (not ours, not adopted) counts as absent', { master: container('master', true) }, {}],
    ['an adopted container counts', { backup: container('backup', true, handRun) }, { backup: handRun }],
    ['none', {}, {}],
  ])('%s', (_case, containers, expected) => {
    expect(runningReleases(containers)).toEqual(expected);
  });
});
