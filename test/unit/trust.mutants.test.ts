// What the action refuses to take from labels and GitHub records, at the edges trust.test.ts does
// not reach. Written against mutation testing (npm run mutate): each test kills changes to
// src/release/trust.ts that the other tests let through.
//
// Equivalent mutants (no input tells them apart), left in the report on purpose:
// - versionProblem without its `typeof value !== 'string'` guard: parseRelease throws on any
//   non-string a JSON payload or a label can hold (it calls startsWith), and the catch gives the
//   same message.
// - versionProblem calling parseRelease(value, '') instead of (value, 'version'): the name only
//   goes into parseRelease's error message, which is discarded.
import { describe, expect, it } from 'vitest';
import type { DeploymentRecord } from '../../src/release/history.js';
import { checkContainerRelease, digestProblem, recordProblem, repositoryOf, trustedRecords, versionProblem } from '../../src/release/trust.js';

const A = `sha256:${'a'.repeat(64)}`;
const REPO = 'registry.example.com/clay/mobile';

describe('digests', () => {
  it('refuses a string that merely ends in a digest', () => {
    expect(digestProblem(`evil/../../${A}`)).toBe(`digest "evil/../../${A}" is not sha256:<64 hex digits>`);
    expect(checkContainerRelease({ version: 'v1.4.0', digest: `x${A}` }, `${REPO}:v1.4.0`, REPO)).toEqual({ untrusted: `digest "x${A}" is not sha256:<64 hex digits>` });
  });

  it('refuses a digest that is not a string, even a list holding a good one', () => {
    expect(digestProblem([A])).toBe(`digest ${A} is not sha256:<64 hex digits>`);
  });
});

describe('values shown in a warning', () => {
  it('are cut after 160 characters, so a label cannot flood the log', () => {
    const long = `v1.0.0${'x'.repeat(300)}`;
    expect(versionProblem(long)).toBe(`version "${long.slice(0, 160)}…" is not a release tag`);
  });

  it('are shown whole up to 160 characters', () => {
    const exactly = `v1.0.0${'x'.repeat(154)}`;
    expect(versionProblem(exactly)).toBe(`version "${exactly}" is not a release tag`);
  });
});

describe('repositoryOf: the repository an image reference names', () => {
  it.each([
    ['by digest', `${REPO}@${A}`, REPO],
    ['by tag, with a registry port', 'registry:5000/team/app:v1', 'registry:5000/team/app'],
    ['a registry port and no tag', 'registry:5000/team/app', 'registry:5000/team/app'],
    ['a bare name', 'app', 'app'],
    ['a digest alone names no repository', `@${A}`, ''],
  ])('%s', (_case, ref, repository) => {
    expect(repositoryOf(ref)).toBe(repository);
  });
});

/** A record as the action writes it, with its payload replaced by `payload`. */
const record = (id: number, payload: DeploymentRecord['payload']): DeploymentRecord => ({
  id, ref: 'v1.4.0', task: 'deploy', createdAt: new Date('2026-01-01T00:00:00Z'), creator: 'github-actions[bot]', payload, state: 'success',
});

describe('records that look like release records', () => {
  it('name every problem, one after the other', () => {
    expect(recordProblem(record(1, { version: 'latest', image: REPO, digest: 'sha256:1', recordedBy: 'clay/deploy-action' }), REPO)).toBe(
      'version "latest" is not a release tag; digest "sha256:1" is not sha256:<64 hex digits>; ref "v1.4.0" is not its version',
    );
  });

  it('are reported as untrusted when any release field is there, and passed over only with none', () => {
    const { trusted, untrusted } = trustedRecords(
      [
        record(1, { version: 'v1.4.0' }),
        record(2, { digest: A }),
        record(3, { recordedBy: 'clay/deploy-action' }),
        record(4, { version: 'v1.4.0', digest: A, image: REPO }),
        record(5, { image: REPO }),
        record(6, {}),
      ],
      REPO,
    );
    expect(trusted).toEqual([]);
    expect(untrusted.map((u) => u.id)).toEqual([1, 2, 3, 4]);
  });
});
