import { describe, expect, it } from 'vitest';
import { releaseOf } from '../../src/drivers/container-state.js';
import { demuxLogs } from '../../src/drivers/docker/logs.js';
import { restartPolicy } from '../../src/drivers/docker/lifecycle.js';
import { imagesToPrune, type PrunableImage } from '../../src/drivers/docker/prune.js';
import { LABELS } from '../../src/rollout/ports.js';

describe('restartPolicy', () => {
  it.each([
    ['no', { Name: 'no' }],
    ['always', { Name: 'always' }],
    ['unless-stopped', { Name: 'unless-stopped' }],
    ['on-failure', { Name: 'on-failure', MaximumRetryCount: 0 }],
    ['on-failure:3', { Name: 'on-failure', MaximumRetryCount: 3 }],
    [' on-failure:10 ', { Name: 'on-failure', MaximumRetryCount: 10 }],
  ])('%j', (text, expected) => {
    expect(restartPolicy(text)).toEqual(expected);
  });

  it.each(['', 'sometimes', 'always:3', 'on-failure:', 'on-failure:x', 'on-failure:-1', 'NO'])('rejects %j', (text) => {
    expect(() => restartPolicy(text)).toThrow(/not a Docker restart policy/);
  });
});

/** One frame of Docker's multiplexed log stream. */
function frame(stream: 1 | 2, text: string): Buffer {
  const header = Buffer.alloc(8);
  header[0] = stream;
  header.writeUInt32BE(Buffer.byteLength(text), 4);
  return Buffer.concat([header, Buffer.from(text)]);
}

describe('demuxLogs', () => {
  it.each<[string, Buffer, string]>([
    ['stdout and stderr interleaved', Buffer.concat([frame(1, 'listening\n'), frame(2, 'boom\n'), frame(1, 'bye\n')]), 'listening\nboom\nbye\n'],
    ['empty', Buffer.alloc(0), ''],
    ['TTY output (not framed)', Buffer.from('plain text\n'), 'plain text\n'],
    ['multi-byte text', frame(1, 'héllo ✓\n'), 'héllo ✓\n'],
    ['a frame cut short', Buffer.concat([frame(1, 'whole\n'), frame(2, 'partial line\n').subarray(0, 12)]), 'whole\npart'],
  ])('%s', (_case, raw, expected) => {
    expect(demuxLogs(raw)).toBe(expected);
  });
});

describe('releaseOf', () => {
  const A = `sha256:${'a'.repeat(64)}`;
  const labels = { [LABELS.version]: 'v1.2.0', [LABELS.digest]: A };
  const release = (ref: string) => ({ trusted: { version: 'v1.2.0', digest: A, ref } });

  it.each<[string, Record<string, string>, string, string | undefined, ReturnType<typeof releaseOf>]>([
    ['pinned image', labels, `reg:5000/team/app@${A}`, 'reg:5000/team/app', release(`reg:5000/team/app@${A}`)],
    ['tagged image', labels, 'reg:5000/team/app:v1.2.0', 'reg:5000/team/app', release(`reg:5000/team/app@${A}`)],
    ['untagged image with a registry port', labels, 'reg:5000/app', undefined, release(`reg:5000/app@${A}`)],
    ['no labels: not the action\'s container', {}, 'reg:5000/app:v1', undefined, undefined],
    ['version without digest', { [LABELS.version]: 'v1.2.0' }, 'reg:5000/app:v1', undefined, { untrusted: 'digest undefined is not sha256:<64 hex digits>' }],
    ['another image than the configured one', labels, `evil.example/app@${A}`, 'reg:5000/team/app', { untrusted: `image "evil.example/app@${A}" is not of reg:5000/team/app` }],
    ['a version label that would be shell text', { ...labels, [LABELS.version]: 'v1.2.0;curl x|sh' }, `reg:5000/app@${A}`, 'reg:5000/app', { untrusted: 'version "v1.2.0;curl x|sh" is not a release tag' }],
  ])('%s', (_case, given, image, repository, expected) => {
    expect(releaseOf(given, image, repository)).toEqual(expected);
  });
});

describe('imagesToPrune', () => {
  const repo = 'reg:5000/team/app';
  const image = (id: string, created: number, tags: string[], digests: string[] = []): PrunableImage => ({
    Id: id,
    Created: created,
    RepoTags: tags,
    RepoDigests: digests,
  });
  const v1 = image('sha256:i1', 1, [`${repo}:v1`], [`${repo}@sha256:d1`]);
  const v2 = image('sha256:i2', 2, [], [`${repo}@sha256:d2`]);
  const v3 = image('sha256:i3', 3, [`${repo}:v3`, `${repo}:latest`], [`${repo}@sha256:d3`]);
  const v4 = image('sha256:i4', 4, [`${repo}:v4`], [`${repo}@sha256:d4`]);
  const other = image('sha256:o1', 0, ['reg:5000/team/other:v1'], ['reg:5000/team/other@sha256:o']);
  const prefix = image('sha256:p1', 0, [`${repo}-worker:v1`]);
  const all = [v2, other, v4, v1, prefix, v3];
  const none = new Set<string>();

  it.each<[string, number, string[], Set<string>, string[][]]>([
    ['keeps the newest, oldest removed first by tags then digests', 2, [], none, [[`${repo}@sha256:d2`], [`${repo}:v1`, `${repo}@sha256:d1`]]],
    ['keep covers all', 4, [], none, []],
    ['keep more than there are', 10, [], none, []],
    ['in use by a container', 1, [], new Set(['sha256:i2']), [[`${repo}:v3`, `${repo}:latest`, `${repo}@sha256:d3`], [`${repo}:v1`, `${repo}@sha256:d1`]]],
    ['protected by digest', 2, ['sha256:d1'], none, [[`${repo}@sha256:d2`]]],
    ['protected by digest reference', 2, [`${repo}@sha256:d2`], none, [[`${repo}:v1`, `${repo}@sha256:d1`]]],
    ['protected by tag', 2, [`${repo}:v1`], none, [[`${repo}@sha256:d2`]]],
    ['protected by image ID', 2, ['sha256:i1', 'sha256:i2'], none, []],
  ])('%s', (_case, keep, protect, inUse, expected) => {
    expect(imagesToPrune(all, repo, keep, protect, inUse)).toEqual(expected);
  });

  it('breaks ties of the same second by the version label (semver order), then by image ID', () => {
    const labelled = (id: string, version?: string): PrunableImage => ({
      ...image(id, 7, [`${repo}:${id}`]),
      ...(version ? { Labels: { 'org.opencontainers.image.version': version } } : {}),
    });
    // Listed in an order that is neither build nor semver order; v1.10.0 > v1.9.0 as semver, not as text.
    const tied = [labelled('b', 'v1.9.0'), labelled('a'), labelled('c', 'v1.10.0'), labelled('d', 'v1.10.0-rc.1'), labelled('e')];
    const pruned = (keep: number) => imagesToPrune(tied, repo, keep, [], none).map((refs) => refs[0]);
    expect(pruned(0)).toEqual([`${repo}:c`, `${repo}:d`, `${repo}:b`, `${repo}:a`, `${repo}:e`]);
    expect(pruned(3)).toEqual([`${repo}:a`, `${repo}:e`]);
    expect(imagesToPrune([...tied].reverse(), repo, 3, [], none)).toEqual(imagesToPrune(tied, repo, 3, [], none));
  });

  it('only touches references of the repository', () => {
    const shared = image('sha256:s', 0, [`${repo}:old`, 'elsewhere/app:old'], [`${repo}@sha256:s`, 'elsewhere/app@sha256:s']);
    expect(imagesToPrune([v4, shared], repo, 1, [], none)).toEqual([[`${repo}:old`, `${repo}@sha256:s`]]);
  });

  it('ignores <none> references of dangling images', () => {
    expect(imagesToPrune([v4, image('sha256:x', 0, ['<none>:<none>'], ['<none>@<none>'])], repo, 0, [], none)).toEqual([
      [`${repo}:v4`, `${repo}@sha256:d4`],
    ]);
  });
});
