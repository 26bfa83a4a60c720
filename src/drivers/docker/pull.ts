// Bringing a release's image onto a host: the digest the registry holds, and the pull itself.
import type { RegistryCredentials } from '../../rollout/ports.js';
import { resolveDigest as resolveWithEngine } from '../registry.js';
import { DockerHostError, type Engine } from './engine.js';

interface PullProgress {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

export function resolveDigest(engine: Engine, repository: string, tag: string, auth?: RegistryCredentials): Promise<string | null> {
  return engine.call(`resolve ${repository}:${tag}`, () => resolveWithEngine(engine.docker, repository, tag, auth));
}

/** Reports each layer's status change through `onProgress`, not its byte counts. */
export async function pull(engine: Engine, ref: string, auth?: RegistryCredentials, onProgress?: (line: string) => void): Promise<void> {
  await engine.call(
    `pull ${ref}`,
    async (abortSignal) => {
      // Resolves once the engine starts streaming; registry errors arrive inside the stream.
      const stream = await engine.docker.pull(ref, { ...(auth ? { authconfig: auth } : {}), abortSignal });
      const failure = await new Promise<string | undefined>((resolve, reject) => {
        let error: string | undefined;
        engine.docker.modem.followProgress(
          stream,
          (streamError: Error | null) => (streamError ? reject(streamError) : resolve(error)),
          (item: PullProgress) => {
            if (item.error || item.errorDetail) error ??= item.errorDetail?.message ?? item.error;
            else if (onProgress && item.status && item.progressDetail?.current === undefined) {
              onProgress(item.id ? `${item.id}: ${item.status}` : item.status);
            }
          },
        );
      });
      if (failure) throw new DockerHostError(`${engine.host}: pull ${ref} failed: ${failure}`);
      // followProgress also ends quietly when the stream is cut: check the image really arrived.
      await engine.docker.getImage(ref).inspect().catch(() => {
        throw new DockerHostError(`${engine.host}: pull ${ref} ended but the image is not on the host`);
      });
    },
    engine.timeouts.pullSeconds,
  );
}
