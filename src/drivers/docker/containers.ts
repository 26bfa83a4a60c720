// Which containers an app has on a host, and what each runs: read from deploy-action's labels,
// or, for a running container deploy-action did not create, from its image.
import type Dockerode from 'dockerode';
import { LABELS, type AppContainer, type Release, type Role } from '../../rollout/ports.js';
import { adoptedRelease, releaseOf } from '../container-state.js';
import { DockerHostError, tolerate, type Engine } from './engine.js';

/** Where the labels came from is checked against the configured image before they are believed. */
export interface LabelTrust {
  repository: string;
  warn: (line: string) => void;
}

/**
 * The app's master and backup. A release whose labels fail release/trust.ts's checks (against
 * `trust.repository`, the configured image, when given) is left out, as unknown, and reported.
 */
export async function appContainers(engine: Engine, app: string, trust?: LabelTrust): Promise<Partial<Record<Role, AppContainer>>> {
  const found: Partial<Record<Role, AppContainer>> = {};
  for (const [name, byName] of [[app, 'master'], [`${app}-backup`, 'backup']] as const) {
    const info = await engine.inspect(name);
    if (!info) continue;
    const labels = info.Config.Labels ?? {};
    const labelled = labels[LABELS.role];
    const role: Role = labelled === 'master' || labelled === 'backup' ? labelled : byName;
    if (found[role]) {
      throw new DockerHostError(`${engine.host}: containers ${found[role].name} and ${name} both claim the ${role} role`);
    }
    const checked = releaseOf(labels, info.Config.Image, trust?.repository);
    if (checked && 'untrusted' in checked) trust?.warn(`${engine.host}: the labels of ${name} are not trusted (${checked.untrusted}): it is adopted as a container deploy-action did not create`);
    // A running container without (trusted) labels serves all the same: it is adopted.
    const release = checked && 'trusted' in checked ? checked.trusted : info.State.Running ? await adopted(engine, info) : undefined;
    const slot = labels[LABELS.slot] === 'b' && checked && 'trusted' in checked ? { slot: 'b' as const } : {};
    found[role] = { id: info.Id, name, role, running: info.State.Running, ...(release ? { release } : {}), ...slot };
  }
  return found;
}

/** What a running container that deploy-action did not create runs, read from its image. */
async function adopted(engine: Engine, info: Dockerode.ContainerInspectInfo): Promise<Release> {
  // Image inspect takes no abort signal; the call's deadline still bounds it.
  const image = await engine.call(`inspect the image of ${info.Name.slice(1)}`, () => tolerate(engine.docker.getImage(info.Image).inspect(), 404));
  return adoptedRelease(info.Config.Image, image?.Config?.Labels ?? {}, image?.RepoDigests ?? []);
}
