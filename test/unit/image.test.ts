import { describe, expect, it } from 'vitest';
import { imageMetadata, splitRepository } from '../../src/release/image.js';
import { parseRelease } from '../../src/release/version.js';

const provenance = { revision: 'abc123', sourceUrl: 'https://github.com/clay/mobile', created: new Date('2026-01-02T03:04:05Z') };

describe('imageMetadata', () => {
  it.each([
    ['v1.0.0', true, ['r/app:v1.0.0', 'r/app:latest']],
    ['v1.0.0', false, ['r/app:v1.0.0']],
    ['v1.1.0-rc.1', true, ['r/app:v1.1.0-rc.1']],
    ['2.0.0-beta', true, ['r/app:2.0.0-beta']],
  ])('%s with latest=%s pushes %j', (tag, latest, tags) => {
    expect(imageMetadata('r/app', parseRelease(tag, 'version'), latest, provenance).tags).toEqual(tags);
  });

  it('labels the image with version, revision, source and creation time', () => {
    expect(imageMetadata('r/app', parseRelease('v1.0.0', 'version'), true, provenance).labels).toEqual({
      'org.opencontainers.image.version': 'v1.0.0',
      'org.opencontainers.image.revision': 'abc123',
      'org.opencontainers.image.source': 'https://github.com/clay/mobile',
      'org.opencontainers.image.created': '2026-01-02T03:04:05.000Z',
    });
  });
});

describe('splitRepository', () => {
  it.each([
    ['registry.example.com/clay/mobile', 'registry.example.com', 'clay/mobile'],
    ['10.231.0.2:5000/clay/demo', '10.231.0.2:5000', 'clay/demo'],
    ['localhost/app', 'localhost', 'app'],
    ['clay/mobile', 'docker.io', 'clay/mobile'],
    ['nginx', 'docker.io', 'library/nginx'],
    ['docker.io/clay/mobile', 'docker.io', 'clay/mobile'],
  ])('%s', (repository, registry, path) => {
    expect(splitRepository(repository)).toEqual({ registry, path });
  });
});
