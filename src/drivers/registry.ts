// What a registry holds for a tag, asked through a Docker Engine (GET /distribution/{ref}/json):
// the engine already knows the registry's scheme, mirrors and insecure-registry settings, so
// the action needs no registry client of its own.
import type Dockerode from 'dockerode';
import { digestProblem } from '../release/trust.js';
import type { RegistryCredentials } from '../rollout/ports.js';

export class RegistryError extends Error {
  override name = 'RegistryError';
}

/** The manifest digest the registry serves for `repository:tag`, or null when the tag is absent. */
export async function resolveDigest(
  engine: Dockerode,
  repository: string,
  tag: string,
  auth?: RegistryCredentials,
): Promise<string | null> {
  try {
    const descriptor = (await engine.getImage(`${repository}:${tag}`).distribution(auth ? { authconfig: auth } : {})) as {
      Descriptor?: { digest?: string };
    };
    const digest = descriptor.Descriptor?.digest;
    if (!digest) throw new RegistryError(`the registry gave no digest for ${repository}:${tag}`);
    // It goes into image references, outputs and deployment records: held to the input's rule.
    const problem = digestProblem(digest);
    if (problem) throw new RegistryError(`the registry's answer for ${repository}:${tag} is not trusted: ${problem}`);
    return digest;
  } catch (error) {
    if (error instanceof RegistryError) throw error;
    const message = engineMessage(error);
    if (/manifest unknown|not found|no such/i.test(message)) return null;
    throw new RegistryError(`cannot read ${repository}:${tag} from the registry: ${message}`);
  }
}

/** The engine's own error text (dockerode wraps it as `(HTTP code 401) ... - <message>`). */
export function engineMessage(error: unknown): string {
  const json = (error as { json?: { message?: string } }).json;
  return json?.message ?? (error instanceof Error ? error.message : String(error));
}
