import { describe, expect, it } from 'vitest';
import { parseRelease, releaseFromRun } from '../../src/release/version.js';

describe('releaseFromRun', () => {
  it.each([
    ['', 'refs/tags/v1.2.3', { tag: 'v1.2.3', version: '1.2.3', prerelease: false }],
    ['', 'refs/tags/1.2.3', { tag: '1.2.3', version: '1.2.3', prerelease: false }],
    ['', 'refs/tags/v1.2.3-rc.1', { tag: 'v1.2.3-rc.1', version: '1.2.3-rc.1', prerelease: true }],
    ['', 'refs/tags/v0.0.1-alpha', { tag: 'v0.0.1-alpha', version: '0.0.1-alpha', prerelease: true }],
    ['v2.0.0', 'refs/heads/main', { tag: 'v2.0.0', version: '2.0.0', prerelease: false }],
    ['v2.0.0', 'refs/tags/v1.0.0', { tag: 'v2.0.0', version: '2.0.0', prerelease: false }],
  ])('version %j, ref %j', (input, ref, expected) => {
    expect(releaseFromRun(input, ref)).toEqual(expected);
  });

  it.each([
    ['', 'refs/heads/main', /GITHUB_REF "refs\/heads\/main" is not a tag: run on a tag push \(expected a semver tag like v1\.4\.0.*\) or set the version input/],
    ['', 'refs/pull/7/merge', /is not a tag/],
    ['', '', /GITHUB_REF "" is not a tag/],
    ['', 'refs/tags/release-7', /tag of GITHUB_REF: "release-7" is not a release tag; expected a semver tag like v1\.4\.0/],
    ['', 'refs/tags/v1.2', /"v1\.2" is not a release tag/],
    ['', 'refs/tags/v01.2.3', /"v01\.2\.3" is not a release tag/],
    ['', 'refs/tags/V1.2.3', /"V1\.2\.3" is not a release tag/],
    ['', 'refs/tags/=1.2.3', /"=1\.2\.3" is not a release tag/],
    ['', 'refs/tags/vv1.2.3', /"vv1\.2\.3" is not a release tag/],
    ['', 'refs/tags/v1.2.3+build.5', /has build metadata/],
    [' v1.2.3', 'refs/tags/v1.2.3', /version: " v1\.2\.3" is not a release tag/],
    ['latest', '', /version: "latest" is not a release tag/],
    ['1.2.3 ', '', /version: "1\.2\.3 " is not a release tag/],
  ])('rejects version %j, ref %j', (input, ref, message) => {
    expect(() => releaseFromRun(input, ref)).toThrow(message);
  });

  it('keeps the tag exactly as written', () => {
    expect(parseRelease('v1.0.0-RC.1', 'version').tag).toBe('v1.0.0-RC.1');
  });
});
