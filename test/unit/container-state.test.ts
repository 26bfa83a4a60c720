import { describe, expect, it } from 'vitest';
import { adoptedRelease, releaseOf } from '../../src/drivers/container-state.js';
import type { Release } from '../../src/rollout/ports.js';

const D = `sha256:${'d'.repeat(64)}`;
const E = `sha256:${'e'.repeat(64)}`;

describe('adoptedRelease', () => {
  it.each<[string, string, Record<string, string>, string[], { version: string; digest: string }]>([
    ['run by tag: the version label, the digest of that repository', 'reg:5000/team/app:v1.3.0', { 'org.opencontainers.image.version': 'v1.3.0' }, [`other/app@${E}`, `reg:5000/team/app@${D}`], { version: 'v1.3.0', digest: D }],
    ['no label: the tag it was run by', 'reg:5000/team/app:1.2.0', {}, [`reg:5000/team/app@${D}`], { version: '1.2.0', digest: D }],
    ['run by digest', `reg:5000/team/app@${D}`, { 'org.opencontainers.image.version': 'v1.1.0' }, [], { version: 'v1.1.0', digest: D }],
    ['neither names a release: unknown', 'reg:5000/team/app:latest', { 'org.opencontainers.image.version': 'main; rm -rf /' }, [], { version: 'unknown', digest: '' }],
    ['no tag at all', 'app', {}, [], { version: 'unknown', digest: '' }],
  ])('%s', (_case, image, labels, digests, expected) => {
    expect(adoptedRelease(image, labels, digests)).toEqual({ ...expected, ref: image, adopted: true });
  });
});

describe('releaseOf', () => {
  it('reads the history label, dropping what is not an entry', () => {
    const labels = { 'deploy-action.version': 'v1.3.0', 'deploy-action.digest': D, 'deploy-action.history': `v1.2.0@${E} bogus v1.3.0@${D}` };
    expect((releaseOf(labels, `reg/app@${D}`) as { trusted: Release }).trusted.history).toEqual([`v1.2.0@${E}`, `v1.3.0@${D}`]);
  });
});
