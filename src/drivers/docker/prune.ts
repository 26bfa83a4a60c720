// Removing a repository's old images from a host: which to remove is decided by pure functions
// (newest kept, none a container uses, none protected); the engine only lists and deletes.
import semver from 'semver';
import { repositoryOf } from '../../release/trust.js';
import { OCI_VERSION_LABEL } from '../container-state.js';
import { statusOf, type Engine } from './engine.js';

export interface PrunableImage {
  Id: string;
  Created: number;
  RepoTags?: string[] | undefined;
  RepoDigests?: string[] | undefined;
  Labels?: Record<string, string> | undefined;
}

/** Removes unused images of `repository` beyond the newest `keep`; returns the first reference of each removed. */
export async function pruneImages(engine: Engine, repository: string, keep: number, protect: string[]): Promise<string[]> {
  const [images, containers] = await engine.call(`list images of ${repository}`, (abortSignal) =>
    Promise.all([engine.docker.listImages({ abortSignal }), engine.docker.listContainers({ all: true, abortSignal })]),
  );
  const inUse = new Set(containers.map((container) => container.ImageID));
  const removed: string[] = [];
  for (const refs of imagesToPrune(images, repository, keep, protect, inUse)) {
    if (await removeImage(engine, refs)) removed.push(refs[0]!);
  }
  return removed;
}

/** Deletes an image's references in order; false when a container took it meanwhile. */
async function removeImage(engine: Engine, refs: string[]): Promise<boolean> {
  for (const ref of refs) {
    // 404: deleting the image's last tag already took its digest references.
    const status = await engine.call(`remove image ${ref}`, (abortSignal) =>
      engine.docker.getImage(ref).remove({ abortSignal }).then(
        () => 200,
        (error: unknown) => {
          const status = statusOf(error);
          if (status === 404 || status === 409) return status;
          throw error;
        },
      ),
    );
    if (status === 409) return false;
  }
  return true;
}

/**
 * The images of `repository` to remove, each as the references to delete (tags first: deleting
 * an image's last tag also deletes its digests). The newest `keep` stay, and so does any image
 * a container uses (inUse holds image IDs) or that `protect` names by ID, digest or reference.
 */
export function imagesToPrune(
  images: PrunableImage[],
  repository: string,
  keep: number,
  protect: string[],
  inUse: Set<string>,
): string[][] {
  const ours = images
    .map((image) => ({
      image,
      refs: [...(image.RepoTags ?? []), ...(image.RepoDigests ?? [])].filter((ref) => repositoryOf(ref) === repository),
    }))
    .filter(({ refs }) => refs.length > 0)
    .sort((a, b) => newestFirst(a.image, b.image));
  const isProtected = ({ image, refs }: (typeof ours)[number]) => {
    const names = [image.Id, ...refs, ...(image.RepoDigests ?? []).map((ref) => ref.slice(ref.indexOf('@') + 1))];
    return inUse.has(image.Id) || names.some((name) => protect.includes(name));
  };
  return ours.slice(keep).filter((entry) => !isProtected(entry)).map(({ refs }) => refs);
}

/**
 * Newest first. The engine lists creation times in whole seconds, so images built within one
 * second tie: the higher release (OCI version label, semver order; an image without one is the
 * older) wins the tie, then the image ID, so the order never depends on the engine's listing.
 */
export function newestFirst(a: PrunableImage, b: PrunableImage): number {
  if (a.Created !== b.Created) return b.Created - a.Created;
  const [va, vb] = [labelledVersion(a), labelledVersion(b)];
  if (va !== vb) return va === null ? 1 : vb === null ? -1 : semver.rcompare(va, vb);
  return a.Id < b.Id ? -1 : a.Id > b.Id ? 1 : 0;
}

/** The semver an image's OCI version label holds (v1.4.0 → 1.4.0), or null. */
function labelledVersion(image: PrunableImage): string | null {
  const label = image.Labels?.[OCI_VERSION_LABEL] ?? '';
  return semver.valid(label.startsWith('v') ? label.slice(1) : label);
}
