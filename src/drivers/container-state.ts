// What a container says it runs: the labels deploy-action puts on its own containers, or, for a
// container it did not create (adoption), what its image says. Pure: the Docker driver reads
// the containers and images, these functions read their fields.
import { parseHistoryLabel } from '../release/history.js';
import { isReleaseTag } from '../release/version.js';
import { LABELS, type Release } from '../rollout/ports.js';

/** The OCI label the build stage sets to the release tag. */
export const OCI_VERSION_LABEL = 'org.opencontainers.image.version';

/** `registry:5000/team/app:tag` → `registry:5000/team/app`. */
export function repositoryOf(ref: string): string {
  const at = ref.indexOf('@');
  if (at >= 0) return ref.slice(0, at);
  const colon = ref.lastIndexOf(':');
  return colon > ref.lastIndexOf('/') ? ref.slice(0, colon) : ref;
}

/** The release a container's labels describe; `image` is its Config.Image, kept verbatim by Docker. */
export function releaseOf(labels: Record<string, string>, image: string): Release | undefined {
  const version = labels[LABELS.version];
  const digest = labels[LABELS.digest];
  if (!version || !digest) return undefined;
  const history = parseHistoryLabel(labels[LABELS.history] ?? '');
  return {
    version,
    digest,
    ref: image.includes('@') ? image : `${repositoryOf(image)}@${digest}`,
    ...(history.length > 0 ? { history } : {}),
  };
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
  const tag = image.includes('@') || repository === image ? '' : image.slice(repository.length + 1);
  const version = [imageLabels[OCI_VERSION_LABEL], tag].find((candidate) => candidate && isReleaseTag(candidate)) ?? 'unknown';
  return { version, ref: image, digest: pinned ? pinned.slice(pinned.indexOf('@') + 1) : '', adopted: true };
}
