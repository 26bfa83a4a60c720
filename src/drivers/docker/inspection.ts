// Read-only views of a host for `check` and `status`: the engine's version and storage, a
// container's state, and what holds a port. None of them changes anything on the host.
import { LABELS } from '../../rollout/ports.js';
import { repositoryOf } from '../../release/trust.js';
import type { Engine } from './engine.js';

export interface ContainerState {
  state: string;
  health?: string;
  since: string;
  deployedAt?: string;
}

/** The engine's version and API version. */
export async function engineVersion(engine: Engine): Promise<{ version: string; apiVersion: string }> {
  const answer = await engine.call('read the engine version', () => engine.docker.version());
  return { version: answer.Version, apiVersion: answer.ApiVersion };
}

/** Where the engine keeps images (DockerRootDir), and the size of the largest image of `repository` it holds. */
export async function storage(engine: Engine, repository: string): Promise<{ root: string; largestImage: number }> {
  const [info, images] = await engine.call('read the engine\'s storage', (abortSignal) =>
    Promise.all([engine.docker.info() as Promise<{ DockerRootDir?: string }>, engine.docker.listImages({ abortSignal })]),
  );
  const ours = images.filter((image) => [...(image.RepoTags ?? []), ...(image.RepoDigests ?? [])].some((ref) => repositoryOf(ref) === repository));
  return { root: info.DockerRootDir ?? '/var/lib/docker', largestImage: Math.max(0, ...ours.map((image) => image.Size)) };
}

/** A container's state as status shows it: running or not, Docker's health verdict, since when. */
export async function containerState(engine: Engine, name: string): Promise<ContainerState | undefined> {
  const info = await engine.inspect(name);
  if (!info) return undefined;
  const deployedAt = info.Config.Labels?.[LABELS.deployedAt];
  return {
    state: info.State.Status,
    ...(info.State.Health?.Status ? { health: info.State.Health.Status } : {}),
    since: info.State.Running ? info.State.StartedAt : info.State.FinishedAt,
    ...(deployedAt ? { deployedAt } : {}),
  };
}

/**
 * What holds a host port: the containers publishing it, and, when none does, whether anything
 * else accepts connections there (a TCP connect from the host itself to `address`).
 */
export async function portUse(engine: Engine, port: number, address: string): Promise<{ containers: string[]; listening: boolean }> {
  const running = await engine.call('list containers', (abortSignal) => engine.docker.listContainers({ abortSignal }));
  const containers = running.filter((c) => c.Ports.some((p) => p.PublicPort === port)).map((c) => (c.Names[0] ?? c.Id).replace(/^\//, ''));
  if (containers.length > 0) return { containers, listening: true };
  const listening = await engine.tunnel.forwardTcp(address, port).then(
    (channel) => {
      channel.destroy();
      return true;
    },
    () => false,
  );
  return { containers, listening };
}
