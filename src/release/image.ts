// Image names and OCI labels for a release. Pure.
import type { Release } from './version.js';

export interface ImageMetadata {
  /** Tags to push, version first. */
  tags: string[];
  labels: Record<string, string>;
}

export interface Provenance {
  revision: string;
  sourceUrl: string;
  created: Date;
}

export function imageMetadata(
  repository: string,
  release: Release,
  pushLatest: boolean,
  provenance: Provenance,
): ImageMetadata {
  const tags = [`${repository}:${release.tag}`];
  // A prerelease never moves latest: users pulling latest expect a stable release.
  if (pushLatest && !release.prerelease) tags.push(`${repository}:latest`);
  const labels: Record<string, string> = {
    'org.opencontainers.image.version': release.tag,
    'org.opencontainers.image.created': provenance.created.toISOString(),
  };
  if (provenance.revision) labels['org.opencontainers.image.revision'] = provenance.revision;
  if (provenance.sourceUrl) labels['org.opencontainers.image.source'] = provenance.sourceUrl;
  return { tags, labels };
}

/**
 * Splits a repository as Docker does: the first component is a registry host when it has a dot,
 * a port or is localhost (`registry.example.com:5000/team/app`); otherwise it is Docker Hub.
 */
export function splitRepository(repository: string): { registry: string; path: string } {
  const slash = repository.indexOf('/');
  const first = slash < 0 ? '' : repository.slice(0, slash);
  if (first && (first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase())) {
    return { registry: first, path: repository.slice(slash + 1) };
  }
  return { registry: 'docker.io', path: slash < 0 ? `library/${repository}` : repository };
}
