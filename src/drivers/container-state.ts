// What a container says it runs: the labels deploy-action puts on its own containers, or, for a
// container it did not create (adoption), what its image says. Pure: the Docker driver reads
// the containers and images, these functions read their fields.
import { parseHistoryLabel } from '../release/history.js';
import { checkContainerRelease, digestProblem, repositoryOf, type Checked } from '../release/trust.js';
import { isReleaseTag } from '../release/version.js';
import { LABELS, type Release } from '../rollout/ports.js';

/** The OCI label the build stage sets to the release tag. */
export const OCI_VERSION_LABEL = 'org.opencontainers.image.version';

/**
 * The release a container's labels describe, checked (release/trust.ts) against `repository`,
 * the configured image, when given; `image` is its Config.Image, kept verbatim by Docker.
 * Undefined for a container without release labels.
 */
export function releaseOf(labels: Record<string, string>, image: string, repository?: string): Checked<Release> | undefined {
  const version = labels[LABELS.version];
  const digest = labels[LABELS.digest];
  if (version === undefined && digest === undefined) return undefined;
  const checked = checkContainerRelease({ version, digest }, image, repository);
  if ('untrusted' in checked) return checked;
  const history = parseHistoryLabel(labels[LABELS.history] ?? '');
  return { trusted: { ...checked.trusted, ...(history.length > 0 ? { history } : {}) } };
}

/**
 * The release of a running container that deploy-action did not create, from what it was
 * created with (`image`, its Config.Image) and what its image holds: the version is the image's
 * OCI version label, else the tag it was run by, when either is a release tag (`unknown`
 * otherwise); the digest is the registry digest of that repository the engine recorded ('' when
 * the image was built on the host and never pulled).
 */
export function adoptedRelease(image: string, imageLabels: Record<string, string>, repoDigests: string[]): Release {
  const repository = repositoryOf(image);
  const pinned = image.includes('@') ? image : repoDigests.find((ref) => repositoryOf(ref) === repository);
  const digest = pinned ? pinned.slice(pinned.indexOf('@') + 1) : '';
  const tag = image.includes('@') || repository === image ? '' : image.slice(repository.length + 1);
  const version = [imageLabels[OCI_VERSION_LABEL], tag].find((candidate) => candidate && isReleaseTag(candidate)) ?? 'unknown';
  return { version, ref: image, digest: digestProblem(digest) ? '' : digest, adopted: true };
}
