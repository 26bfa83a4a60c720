// Which release a run is about: the tag as the user wrote it (the image tag, exactly) and its
// semver reading (for `latest` and for ordering releases). Pure.
import semver from 'semver';

export interface Release {
  /** The tag exactly as pushed, e.g. v1.4.0; also the image tag. */
  tag: string;
  /** Normalised semver, e.g. 1.4.0. */
  version: string;
  prerelease: boolean;
}

export class VersionError extends Error {
  override name = 'VersionError';
}

const EXPECTED = 'expected a semver tag like v1.4.0, 1.4.0 or v2.0.0-rc.1';

/** Reads a release from an explicit tag. `source` names where it came from for the error. */
export function parseRelease(tag: string, source: string): Release {
  // semver.valid would also take "=1.2.3" or " 1.2.3"; a tag must read exactly as pushed.
  const bare = tag.startsWith('v') ? tag.slice(1) : tag;
  const parsed = /^[0-9]/.test(bare) ? semver.parse(bare) : null;
  if (!parsed || parsed.version !== bare.split('+')[0]) {
    throw new VersionError(`${source}: ${JSON.stringify(tag)} is not a release tag; ${EXPECTED}`);
  }
  if (parsed.build.length > 0) {
    throw new VersionError(
      `${source}: ${JSON.stringify(tag)} has build metadata (+...), which a Docker tag cannot hold; ${EXPECTED}`,
    );
  }
  return { tag, version: parsed.version, prerelease: parsed.prerelease.length > 0 };
}

/** The release of this run: the `version` input when given, else the tag of GITHUB_REF. */
export function releaseFromRun(versionInput: string, ref: string): Release {
  if (versionInput !== '') return parseRelease(versionInput, 'version');
  if (!ref.startsWith('refs/tags/')) {
    throw new VersionError(
      `GITHUB_REF ${JSON.stringify(ref)} is not a tag: run on a tag push (${EXPECTED}) or set the version input`,
    );
  }
  return parseRelease(ref.slice('refs/tags/'.length), `tag of GITHUB_REF`);
}

/** Whether `text` is a release tag parseRelease accepts. */
export function isReleaseTag(text: string): boolean {
  try {
    parseRelease(text, 'tag');
    return true;
  } catch {
    return false;
  }
}
