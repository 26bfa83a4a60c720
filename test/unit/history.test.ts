import { describe, expect, it } from 'vitest';
import {
  checkPromotion,
  inEffect,
  nextHistory,
  parseHistoryLabel,
  previousInLabel,
  previousRelease,
  ranDigest,
  ranDigestInLabel,
  HISTORY_LENGTH,
  type DeploymentRecord,
  type DeploymentState,
} from '../../src/release/history.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;

/**
 * A history written oldest first, one line per deployment, as `task version state [digest]`;
 * `job - success` is the deployment GitHub itself makes for a job bound to the environment (no
 * payload). Returned newest first, as the driver gives it.
 */
function history(...lines: string[]): DeploymentRecord[] {
  return lines
    .map((line, i): DeploymentRecord => {
      const [task = '', version = '', state = '', digest = A] = line.split(' ');
      const payload = task === 'job' ? {} : { version, image: 'registry.example.com/clay/mobile', digest };
      return { id: i + 1, ref: version, task: task === 'job' ? 'deploy' : task, createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)), payload, state: state as DeploymentState };
    })
    .reverse();
}

describe('previousRelease', () => {
  it.each<[string, string[], string, string | undefined]>([
    ['nothing deployed yet', [], 'v1.0.0', undefined],
    ['only the current release', ['deploy v1.3.0 success'], 'v1.3.0', undefined],
    ['the release deployed before', ['deploy v1.2.0 inactive', 'deploy v1.3.0 success'], 'v1.3.0', 'v1.2.0'],
    ['GitHub marked both inactive after its own job deployment', ['deploy v1.2.0 inactive', 'deploy v1.3.0 inactive', 'job - success'], 'v1.3.0', 'v1.2.0'],
    ['a failed deploy never ran (the hosts were put back)', ['deploy v1.2.0 inactive', 'deploy v1.3.0 success', 'deploy v1.4.0 failure'], 'v1.3.0', 'v1.2.0'],
    ['the deploy now in progress is not history yet', ['deploy v1.2.0 inactive', 'deploy v1.3.0 success', 'deploy v1.4.0 in_progress'], 'v1.3.0', 'v1.2.0'],
    ['records without a status', ['deploy v1.2.0 inactive', 'deploy v1.3.0 success', 'deploy v1.4.0 none'], 'v1.3.0', 'v1.2.0'],
    ['the same release deployed twice in a row counts once', ['deploy v1.2.0 inactive', 'deploy v1.3.0 inactive', 'deploy v1.3.0 success'], 'v1.3.0', 'v1.2.0'],
    ['hosts run a release the history does not know: its newest', ['deploy v1.2.0 inactive', 'deploy v1.3.0 success'], 'v1.4.0', 'v1.3.0'],
    [
      'after rolling back from v1.4.0 to v1.3.0, previous is v1.2.0, not v1.4.0 again',
      ['deploy v1.2.0 inactive', 'deploy v1.3.0 inactive', 'deploy v1.4.0 inactive', 'rollback v1.3.0 success'],
      'v1.3.0',
      'v1.2.0',
    ],
    [
      'a second rollback to previous walks back once more, then the history ends',
      ['deploy v1.2.0 inactive', 'deploy v1.3.0 inactive', 'deploy v1.4.0 inactive', 'rollback v1.3.0 inactive', 'rollback v1.2.0 success'],
      'v1.2.0',
      undefined,
    ],
    [
      'a deploy after a rollback: previous is what the rollback restored',
      ['deploy v1.3.0 inactive', 'deploy v1.4.0 inactive', 'rollback v1.3.0 inactive', 'deploy v1.5.0 success'],
      'v1.5.0',
      'v1.3.0',
    ],
    [
      'a rollback several releases back undoes all of them',
      ['deploy v1.1.0 inactive', 'deploy v1.2.0 inactive', 'deploy v1.3.0 inactive', 'deploy v1.4.0 inactive', 'rollback v1.2.0 success'],
      'v1.2.0',
      'v1.1.0',
    ],
    [
      'a rollback to a release older than the history undoes all of it',
      ['deploy v1.3.0 inactive', 'deploy v1.4.0 inactive', 'rollback v1.1.0 success'],
      'v1.1.0',
      undefined,
    ],
    ['a failed rollback changed nothing', ['deploy v1.3.0 inactive', 'deploy v1.4.0 success', 'rollback v1.3.0 failure'], 'v1.4.0', 'v1.3.0'],
    ['an older release deployed again (not rolled back to) is a new entry', ['deploy v1.2.0 inactive', 'deploy v1.3.0 inactive', 'deploy v1.2.0 success'], 'v1.2.0', 'v1.3.0'],
  ])('%s', (_name, lines, current, expected) => {
    expect(previousRelease(history(...lines), current)?.version).toBe(expected);
  });
});

describe('checkPromotion from staging', () => {
  it.each<[string, string[], string, string, string | undefined]>([
    ['the same image staging runs', ['deploy v1.4.0 success'], 'v1.4.0', A, undefined],
    ['inactive once GitHub recorded its own job deployment', ['deploy v1.4.0 inactive', 'job - success'], 'v1.4.0', A, undefined],
    ['staging moved on to a newer release since', ['deploy v1.4.0 inactive', 'deploy v1.5.0 success'], 'v1.4.0', A, undefined],
    ['a later failed deploy to staging changes nothing', ['deploy v1.4.0 success', 'deploy v1.5.0 failure'], 'v1.4.0', A, undefined],
    ['deployed there again after a rollback', ['deploy v1.3.0 inactive', 'deploy v1.4.0 inactive', 'rollback v1.3.0 inactive', 'deploy v1.4.0 success'], 'v1.4.0', A, undefined],
    ['never deployed', [], 'v1.4.0', A, 'v1.4.0 was never deployed to staging: deploy it to staging first'],
    ['only other releases', ['deploy v1.3.0 success'], 'v1.4.0', A, 'v1.4.0 was never deployed to staging: deploy it to staging first'],
    ['only GitHub job records', ['job - success'], 'v1.4.0', A, 'v1.4.0 was never deployed to staging: deploy it to staging first'],
    ['its deploy failed', ['deploy v1.3.0 success', 'deploy v1.4.0 failure'], 'v1.4.0', A, 'v1.4.0 was never deployed to staging successfully (the latest attempt there: failure): deploy it to staging first'],
    ['its deploy is still running', ['deploy v1.4.0 in_progress'], 'v1.4.0', A, 'v1.4.0 was never deployed to staging successfully (the latest attempt there: in_progress): deploy it to staging first'],
    ['another image under the same tag', ['deploy v1.4.0 success'], 'v1.4.0', B, `the digest of v1.4.0 (${B}) differs from what staging runs (${A})`],
    ['the tag was pushed again and deployed: the newest deployment counts', [`deploy v1.4.0 inactive ${A}`, `deploy v1.4.0 success ${B}`], 'v1.4.0', A, `the digest of v1.4.0 (${A}) differs from what staging runs (${B})`],
    ['a failed deploy of another image under the tag does not count', [`deploy v1.4.0 success ${A}`, `deploy v1.4.0 failure ${B}`], 'v1.4.0', A, undefined],
    ['staging rolled back past it', ['deploy v1.3.0 inactive', 'deploy v1.4.0 inactive', 'rollback v1.3.0 success'], 'v1.4.0', A, 'v1.4.0 was rolled back in staging: deploy it to staging again before promoting it'],
  ])('%s', (_name, lines, version, digest, expected) => {
    expect(checkPromotion(history(...lines), 'staging', version, digest)).toBe(expected);
  });

  it('says so when the record has no digest', () => {
    const [record] = history('deploy v1.4.0 success');
    const records = [{ ...record!, payload: { version: 'v1.4.0' } }];
    expect(checkPromotion(records, 'staging', 'v1.4.0', A)).toBe(`the digest of v1.4.0 (${A}) differs from what staging runs (no digest recorded)`);
  });
});

describe('previousRelease and ranDigest give the digest a release ran at', () => {
  it('previous carries its digest', () => {
    expect(previousRelease(history(`deploy v1.2.0 inactive ${B}`, 'deploy v1.3.0 success'), 'v1.3.0')).toEqual({ version: 'v1.2.0', digest: B });
  });

  it.each<[string, string[], string, string | undefined]>([
    ['the newest successful record of the version', [`deploy v1.2.0 inactive ${A}`, `deploy v1.2.0 success ${B}`], 'v1.2.0', B],
    ['a failed deploy never ran', [`deploy v1.2.0 failure ${B}`], 'v1.2.0', undefined],
    ['a release rolled back from still ran', [`deploy v1.4.0 inactive ${B}`, 'rollback v1.3.0 success'], 'v1.4.0', B],
    ['never deployed', ['deploy v1.3.0 success'], 'v1.2.0', undefined],
    ["GitHub's own job records carry no version", ['job - success'], 'v1.2.0', undefined],
  ])('%s', (_case, lines, version, expected) => {
    expect(ranDigest(history(...lines), version)).toBe(expected);
  });
});

describe('the history label', () => {
  const e = (version: string, digest = A) => `${version}@${digest}`;

  it('keeps only well-formed entries of release tags', () => {
    expect(parseHistoryLabel(`${e('v1.0.0')}  ${e('v1.1.0', B)} junk $(reboot)@${A} v1.2.0@sha256:short ${e('latest')}`)).toEqual([e('v1.0.0'), e('v1.1.0', B)]);
    expect(parseHistoryLabel('')).toEqual([]);
  });

  it.each<[string, string[], string, 'deploy' | 'rollback', string[]]>([
    ['a deploy goes on top', [e('v1.0.0')], 'v1.1.0', 'deploy', [e('v1.0.0'), e('v1.1.0')]],
    ['the same release again counts once', [e('v1.0.0'), e('v1.1.0')], 'v1.1.0', 'deploy', [e('v1.0.0'), e('v1.1.0')]],
    ['a rollback undoes what came after, keeping it apart as ran here', [e('v1.0.0'), e('v1.1.0'), e('v1.2.0')], 'v1.0.0', 'rollback', [`~${e('v1.1.0')}`, `~${e('v1.2.0')}`, e('v1.0.0')]],
    ['a release undone once and deployed again is in the stack only', [`~${e('v1.1.0')}`, e('v1.0.0')], 'v1.1.0', 'deploy', [e('v1.0.0'), e('v1.1.0')]],
    ['a rollback forward to an undone release goes on top', [`~${e('v1.1.0')}`, e('v1.0.0')], 'v1.1.0', 'rollback', [e('v1.0.0'), e('v1.1.0')]],
    ['an undone release undone again counts once', [`~${e('v1.1.0')}`, e('v1.0.0'), e('v1.1.0')], 'v1.0.0', 'rollback', [`~${e('v1.1.0')}`, e('v1.0.0')]],
    ['a rollback to a release not in it goes on top', [e('v1.1.0')], 'v0.9.0', 'rollback', [e('v1.1.0'), e('v0.9.0')]],
    ['starting empty', [], 'v1.0.0', 'deploy', [e('v1.0.0')]],
  ])('%s', (_case, base, version, task, expected) => {
    expect(nextHistory(base, { version, digest: A }, task)).toEqual(expected);
  });

  it('is bounded', () => {
    const long = Array.from({ length: 30 }, (_, i) => e(`v1.${i}.0`));
    const next = nextHistory(long, { version: 'v2.0.0', digest: A }, 'deploy');
    expect(next).toHaveLength(HISTORY_LENGTH);
    expect(next.at(-1)).toBe(e('v2.0.0'));
  });

  it('walks back one release at a time and never forward', () => {
    let history = [e('v1.0.0'), e('v1.1.0', B), e('v1.2.0')];
    const back = previousInLabel(history, 'v1.2.0')!;
    expect(back).toEqual({ version: 'v1.1.0', digest: B });
    history = nextHistory(history, back, 'rollback');
    expect(previousInLabel(history, 'v1.1.0')?.version).toBe('v1.0.0');
    history = nextHistory(history, previousInLabel(history, 'v1.1.0')!, 'rollback');
    expect(previousInLabel(history, 'v1.0.0')).toBeUndefined();
  });

  it('finds the digest a release ran at', () => {
    expect(ranDigestInLabel([e('v1.0.0', B), e('v1.1.0')], 'v1.0.0')).toBe(B);
    expect(ranDigestInLabel([e('v1.1.0')], 'v1.0.0')).toBeUndefined();
  });

  it('a release a rollback undid still ran there, at its digest; previous never goes to it', () => {
    const label = nextHistory([e('v1.0.0'), e('v1.1.0', B)], { version: 'v1.0.0', digest: A }, 'rollback');
    expect(parseHistoryLabel(label.join(' '))).toEqual(label);
    expect(ranDigestInLabel(label, 'v1.1.0')).toBe(B);
    expect(previousInLabel(label, 'v1.0.0')).toBeUndefined();
    expect(inEffect(label)).toEqual([e('v1.0.0')]);
  });

  it('keeps a bounded number of undone releases', () => {
    const long = Array.from({ length: 30 }, (_, i) => e(`v1.${i}.0`));
    const back = nextHistory([e('v0.1.0'), ...long.slice(-HISTORY_LENGTH + 1)], { version: 'v0.1.0', digest: A }, 'rollback');
    expect(back.filter((entry) => entry.startsWith('~'))).toHaveLength(HISTORY_LENGTH - 1);
    const again = nextHistory([...long.slice(0, 5).map((entry) => `~${entry}`), ...back], { version: 'v0.1.0', digest: A }, 'deploy');
    expect(again.filter((entry) => entry.startsWith('~'))).toHaveLength(HISTORY_LENGTH);
  });
});
