// A container's life on a host: run it from a spec, stop and remove it, set it aside under
// another name (whole, to be put back) and restore it.
import type Dockerode from 'dockerode';
import { LABELS, type ContainerSpec, type RoleSpec } from '../../rollout/ports.js';
import { portBinding } from '../bind.js';
import { DockerHostError, checkName, tolerate, type Engine } from './engine.js';

export async function runContainer(engine: Engine, spec: ContainerSpec): Promise<string> {
  const port = `${spec.containerPort}/tcp`;
  const container = await engine.create(spec.name, {
    Image: spec.release.ref,
    Env: Object.entries(spec.env).map(([name, value]) => `${name}=${value}`),
    // What appContainers() reads back always matches the spec, whatever labels the caller passed.
    Labels: {
      ...spec.labels,
      [LABELS.role]: spec.role,
      [LABELS.version]: spec.release.version,
      [LABELS.digest]: spec.release.digest,
    },
    ExposedPorts: { [port]: {} },
    StopTimeout: spec.stopTimeout,
    HostConfig: {
      PortBindings: { [port]: [portBinding(spec.bind, engine.host, spec.hostPort)] },
      Binds: spec.volumes,
      RestartPolicy: restartPolicy(spec.restart),
      Init: spec.init,
    },
  });
  return startOrRemove(engine, spec.name, container);
}

/** A role's container beside the web role: its own command, no port; { running: N } turns the image's HEALTHCHECK off. */
export async function runRoleContainer(engine: Engine, spec: RoleSpec): Promise<string> {
  const container = await engine.create(spec.name, {
    Image: spec.release.ref,
    // The image's entrypoint stays: the command is its arguments, as `docker run IMAGE CMD...` does.
    Cmd: spec.command,
    Env: Object.entries(spec.env).map(([name, value]) => `${name}=${value}`),
    Labels: { ...spec.labels, [LABELS.role]: spec.role, [LABELS.version]: spec.release.version, [LABELS.digest]: spec.release.digest },
    StopTimeout: spec.stopTimeout,
    ...('running' in spec.ready ? { Healthcheck: { Test: ['NONE'] } } : {}),
    HostConfig: { Binds: spec.volumes, RestartPolicy: restartPolicy(spec.restart), Init: spec.init },
  });
  return startOrRemove(engine, spec.name, container);
}

async function startOrRemove(engine: Engine, name: string, container: Dockerode.Container): Promise<string> {
  try {
    await engine.call(`start ${name}`, (abortSignal) => container.start({ abortSignal }));
  } catch (error) {
    // A created-but-dead container would hold the name and the port binding: take it away.
    await engine.call(`remove ${name}`, (abortSignal) => container.remove({ force: true, v: true, abortSignal })).catch(() => undefined);
    throw error;
  }
  return container.id;
}

export async function stopAndRemove(engine: Engine, name: string, stopTimeout: number): Promise<void> {
  const info = await engine.inspect(name);
  if (!info) return;
  const container = engine.docker.getContainer(info.Id);
  await stop(engine, name, container, stopTimeout);
  // v: anonymous volumes belong to this container alone; named volumes and binds stay.
  await engine.call(`remove ${name}`, (abortSignal) => tolerate(container.remove({ v: true, abortSignal }), 404));
}

export async function setAside(engine: Engine, name: string, asideName: string, stopTimeout: number): Promise<void> {
  const container = await toSetAside(engine, name, asideName);
  await stop(engine, name, container, stopTimeout);
  await rename(engine, container, name, asideName);
}

/** A role's container: renamed first, then stopped, so that a cut in between leaves it running, set aside. */
export async function moveAside(engine: Engine, name: string, asideName: string, stopTimeout: number): Promise<void> {
  const container = await toSetAside(engine, name, asideName);
  await rename(engine, container, name, asideName);
  await stop(engine, asideName, container, stopTimeout);
}

/** The container `name`, once `asideName` is known to be free. */
async function toSetAside(engine: Engine, name: string, asideName: string): Promise<Dockerode.Container> {
  if (await engine.inspect(asideName)) {
    throw new DockerHostError(
      `${engine.host}: cannot set ${name} aside: a container named ${asideName} exists (an earlier run left it); ` +
        `look at it, then remove it or rename it back to ${name}`,
    );
  }
  const info = await engine.inspect(name);
  if (!info) throw new DockerHostError(`${engine.host}: cannot set ${name} aside: it does not exist`);
  return engine.docker.getContainer(info.Id);
}

export async function restore(engine: Engine, asideName: string, name: string): Promise<void> {
  const container = await setAsideOne(engine, asideName, name);
  await rename(engine, container, asideName, name);
  await engine.call(`start ${name}`, (abortSignal) => tolerate(container.start({ abortSignal }), 304));
}

/**
 * A role's container: stopped (a stop in flight waited out, so it cannot end the container once
 * started), started, then renamed back, so that a cut in between leaves it set aside.
 */
export async function moveBack(engine: Engine, asideName: string, name: string, stopTimeout: number): Promise<void> {
  const container = await setAsideOne(engine, asideName, name);
  await stop(engine, asideName, container, stopTimeout);
  await engine.call(`start ${asideName}`, (abortSignal) => tolerate(container.start({ abortSignal }), 304));
  await rename(engine, container, asideName, name);
}

/** The container set aside as `asideName`, to be put back as `name`. */
async function setAsideOne(engine: Engine, asideName: string, name: string): Promise<Dockerode.Container> {
  const info = await engine.inspect(asideName);
  if (!info) throw new DockerHostError(`${engine.host}: cannot put ${name} back: ${asideName} does not exist`);
  checkName(name);
  return engine.docker.getContainer(info.Id);
}

/** Renames a container as it is (running or not): no-gap's old container stepping aside, and back. */
export async function renameContainer(engine: Engine, name: string, newName: string): Promise<void> {
  checkName(newName);
  if (await engine.inspect(newName)) {
    throw new DockerHostError(`${engine.host}: cannot rename ${name} to ${newName}: a container named ${newName} exists (an earlier run left it); look at it, then remove it`);
  }
  const info = await engine.inspect(name);
  if (!info) throw new DockerHostError(`${engine.host}: cannot rename ${name}: it does not exist`);
  await rename(engine, engine.docker.getContainer(info.Id), name, newName);
}

function stop(engine: Engine, name: string, container: Dockerode.Container, stopTimeout: number): Promise<unknown> {
  return engine.call(`stop ${name}`, (abortSignal) => tolerate(container.stop({ t: stopTimeout, abortSignal }), 304, 404), stopTimeout + engine.timeouts.apiSeconds);
}

function rename(engine: Engine, container: Dockerode.Container, from: string, to: string): Promise<unknown> {
  return engine.call(`rename ${from} to ${to}`, (abortSignal) => container.rename({ _query: { name: to }, abortSignal } as object));
}

/** Docker's RestartPolicy for `no`, `always`, `unless-stopped`, `on-failure[:N]`. */
export function restartPolicy(text: string): { Name: string; MaximumRetryCount?: number } {
  const match = /^(no|always|unless-stopped|on-failure)(?::(\d+))?$/.exec(text.trim());
  if (!match || (match[2] !== undefined && match[1] !== 'on-failure')) {
    throw new DockerHostError(`not a Docker restart policy: ${JSON.stringify(text)} (no, always, unless-stopped, on-failure[:N])`);
  }
  if (match[1] === 'on-failure') return { Name: 'on-failure', MaximumRetryCount: Number(match[2] ?? 0) };
  return { Name: match[1]! };
}
