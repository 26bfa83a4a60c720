// The build's layer cache (build.cache): which cache flags the builder at hand can take. Pure.
// BuildKit imports a cache before building and exports one after, so a fresh runner (an empty
// local cache) rebuilds only the layers a change touched.
import type { BuildCacheType } from '../config/schema.js';

export interface CacheSetting {
  type: BuildCacheType;
  mode: 'min' | 'max';
  /** The registry or inline cache's image reference (build.cache-ref, default IMAGE:buildcache). */
  ref: string;
  /** The gha cache's scope: one per image, so two images of a repository keep their own. */
  scope: string;
}

/** The BuildKit the docker CLI reaches (DockerCli.open finds it). */
export interface Builder {
  /** `docker buildx build` (hosted runners), or `DOCKER_BUILDKIT=1 docker build` (a client before 23.0). */
  kind: 'buildx' | 'classic';
  /**
   * Whether it exports a cache of its own (registry, gha): every buildx driver but `docker`, and
   * `docker` with the containerd image store. The engine's own builder exports inline only.
   */
  exportsCache: boolean;
}

export interface CachePlan {
  /** Flags for the build command. */
  flags: string[];
  /** Tags pushed with the release's: the inline cache's image, so the next build finds it. */
  tags: string[];
  /** Why the cache is less than asked, for the log. */
  warnings: string[];
}

/** A cache the run's environment cannot have (gha off GitHub): said before anything is built. */
export class BuildCacheError extends Error {
  override name = 'BuildCacheError';
}

const NONE: CachePlan = { flags: [], tags: [], warnings: [] };

/** GitHub gives these to actions (not to `run:` steps); buildx reads them from its environment. */
export function githubCacheService(env: NodeJS.ProcessEnv): boolean {
  return Boolean(env.ACTIONS_RUNTIME_TOKEN && (env.ACTIONS_CACHE_URL || env.ACTIONS_RESULTS_URL));
}

/**
 * The cache flags for `cache` on `builder`. A builder that cannot export what was asked falls back
 * to what it can do (inline through the registry, or no cache), with a warning: a cache only
 * saves time, it never fails a release. Exports ignore errors for the same reason.
 */
export function planCache(cache: CacheSetting, builder: Builder, env: NodeJS.ProcessEnv): CachePlan {
  if (cache.type === 'none') return NONE;
  if (cache.type === 'gha') {
    if (!githubCacheService(env)) {
      throw new BuildCacheError(
        'build.cache: gha needs GitHub\'s cache service (ACTIONS_RUNTIME_TOKEN with ACTIONS_CACHE_URL or ACTIONS_RESULTS_URL), which ' +
          'GitHub gives actions on its runners; elsewhere use registry',
      );
    }
    if (builder.kind === 'buildx' && builder.exportsCache) {
      // The token stays in the environment buildx reads it from, never on the command line.
      const at = `type=gha,scope=${cache.scope}`;
      return { flags: ['--cache-from', at, '--cache-to', `${at},mode=${cache.mode},ignore-error=true`], tags: [], warnings: [] };
    }
    return {
      ...NONE,
      warnings: [
        'build.cache: gha needs a builder that exports a cache (docker/setup-buildx-action\'s docker-container builder); ' +
          'this one cannot, so this build has no cache (registry or inline caches work with it)',
      ],
    };
  }
  if (cache.type === 'registry' && builder.kind === 'buildx' && builder.exportsCache) {
    const at = `type=registry,ref=${cache.ref}`;
    return { flags: ['--cache-from', at, '--cache-to', `${at},mode=${cache.mode},ignore-error=true`], tags: [], warnings: [] };
  }
  const warnings =
    cache.type === 'registry'
      ? [
          'build.cache: registry needs a builder that exports a cache (docker/setup-buildx-action\'s docker-container builder); ' +
            `this one exports inline only: the cache is the pushed image itself, tagged ${cache.ref} (mode min: the final stage's layers)`,
        ]
      : [];
  // Inline: the image carries its own cache metadata and is pushed as `ref` too; the next
  // build imports from that image.
  const flags =
    builder.kind === 'buildx'
      ? ['--cache-from', `type=registry,ref=${cache.ref}`, '--cache-to', 'type=inline']
      : ['--cache-from', cache.ref, '--build-arg', 'BUILDKIT_INLINE_CACHE=1'];
  return { flags, tags: [cache.ref], warnings };
}
