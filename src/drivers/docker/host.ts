// One application host as the rollout, `check` and `status` see it: the HostDriver of
// rollout/ports.ts and the read-only views, each delegated to the module of its concern over
// the host's one engine connection (engine.ts).
import type {
  AppContainer,
  ContainerSpec,
  DeployLock,
  HealthCheck,
  HealthVerdict,
  HostDriver,
  LockOwner,
  OneOffSpec,
  ReadyRule,
  RegistryCredentials,
  Role,
  RoleContainer,
  RoleSpec,
} from '../../rollout/ports.js';
import { SshConnection, type SshOptions } from '../ssh.js';
import { appContainers, type LabelTrust } from './containers.js';
import { Engine, type DockerTimeouts, type Tunnel } from './engine.js';
import { waitHealthy } from './health.js';
import { containerState, engineVersion, portUse, storage, type ContainerState } from './inspection.js';
import { moveAside, moveBack, renameContainer, runContainer, runRoleContainer, restore, setAside, stopAndRemove } from './lifecycle.js';
import { roleContainers, waitReady } from './roles.js';
import { acquireLock, readLock, readLockJournal, releaseLock, writeLockJournal } from './lock.js';
import { tailLogs } from './logs.js';
import { removeLeftover, runOneOff, type OneOffEnd, type OneOffOptions } from './oneoff.js';
import { pruneImages } from './prune.js';
import { pull, resolveDigest } from './pull.js';

export class DockerHost implements HostDriver {
  readonly host: string;
  private readonly engine: Engine;

  constructor(tunnel: Tunnel, timeouts: Partial<DockerTimeouts> = {}) {
    this.host = tunnel.host;
    this.engine = new Engine(tunnel, timeouts);
  }

  dispose(): void {
    this.engine.tunnel.dispose();
  }

  async ping(): Promise<void> {
    await this.engine.call('ping the Docker engine', () => this.engine.docker.ping());
  }

  containers(app: string, trust?: LabelTrust): Promise<Partial<Record<Role, AppContainer>>> {
    return appContainers(this.engine, app, trust);
  }

  resolveDigest(repository: string, tag: string, auth?: RegistryCredentials): Promise<string | null> {
    return resolveDigest(this.engine, repository, tag, auth);
  }

  pull(ref: string, auth?: RegistryCredentials, onProgress?: (line: string) => void): Promise<void> {
    return pull(this.engine, ref, auth, onProgress);
  }

  stopAndRemove(name: string, stopTimeout: number): Promise<void> {
    return stopAndRemove(this.engine, name, stopTimeout);
  }

  setAside(name: string, asideName: string, stopTimeout: number): Promise<void> {
    return setAside(this.engine, name, asideName, stopTimeout);
  }

  moveAside(name: string, asideName: string, stopTimeout: number): Promise<void> {
    return moveAside(this.engine, name, asideName, stopTimeout);
  }

  moveBack(asideName: string, name: string, stopTimeout: number): Promise<void> {
    return moveBack(this.engine, asideName, name, stopTimeout);
  }

  rename(name: string, newName: string): Promise<void> {
    return renameContainer(this.engine, name, newName);
  }

  restore(asideName: string, name: string): Promise<void> {
    return restore(this.engine, asideName, name);
  }

  async hasContainer(name: string): Promise<boolean> {
    return (await this.engine.inspect(name)) !== undefined;
  }

  run(spec: ContainerSpec): Promise<string> {
    return runContainer(this.engine, spec);
  }

  waitHealthy(name: string, hostPort: number, check: HealthCheck, onProgress?: (line: string) => void, signal?: AbortSignal): Promise<HealthVerdict> {
    return waitHealthy(this.engine, name, hostPort, check, onProgress, signal);
  }

  roleContainers(app: string, trust?: LabelTrust): Promise<RoleContainer[]> {
    return roleContainers(this.engine, app, trust);
  }

  runRole(spec: RoleSpec): Promise<string> {
    return runRoleContainer(this.engine, spec);
  }

  waitReady(name: string, rule: ReadyRule, timeoutSeconds: number, onProgress?: (line: string) => void, signal?: AbortSignal): Promise<HealthVerdict> {
    return waitReady(this.engine, name, rule, timeoutSeconds, onProgress, signal);
  }

  acquireLock(name: string, lock: DeployLock, image: string): Promise<{ acquired: true } | { acquired: false; current: DeployLock }> {
    return acquireLock(this.engine, name, lock, image);
  }

  releaseLock(name: string, owner: LockOwner): Promise<boolean> {
    return releaseLock(this.engine, name, owner);
  }

  writeLockJournal(name: string, slot: 0 | 1, text: string): Promise<void> {
    return writeLockJournal(this.engine, name, slot, text);
  }

  readLockJournal(name: string): Promise<string[]> {
    return readLockJournal(this.engine, name);
  }

  /** Who holds the deploy lock `name`, or undefined when no one does (read-only: check, status). */
  readLock(name: string): Promise<DeployLock | undefined> {
    return readLock(this.engine, name);
  }

  /** Runs a one-off container to its end (exit, timeout or cancel) and removes it. */
  runOneOff(spec: OneOffSpec, options: OneOffOptions): Promise<OneOffEnd> {
    return runOneOff(this.engine, spec, options);
  }

  /** Kills and removes a one-off container that the run `runUrl` started and left; whether there was one. */
  removeOneOff(name: string, runUrl: string): Promise<boolean> {
    return removeLeftover(this.engine, name, { refuseRunning: false, runUrl });
  }

  /** The last `lines` lines of a container's output. */
  tailLogs(id: string, name: string, lines: number): Promise<string> {
    return tailLogs(this.engine, id, name, lines);
  }

  pruneImages(repository: string, keep: number, protect: string[]): Promise<string[]> {
    return pruneImages(this.engine, repository, keep, protect);
  }

  version(): Promise<{ version: string; apiVersion: string }> {
    return engineVersion(this.engine);
  }

  storage(repository: string): Promise<{ root: string; largestImage: number }> {
    return storage(this.engine, repository);
  }

  containerState(name: string): Promise<ContainerState | undefined> {
    return containerState(this.engine, name);
  }

  portUse(port: number, address: string): Promise<{ containers: string[]; listening: boolean }> {
    return portUse(this.engine, port, address);
  }
}

/** Opens the host's SSH connection and drives its Docker engine over it. */
export async function connectHost(options: SshOptions, timeouts?: Partial<DockerTimeouts>): Promise<DockerHost> {
  return new DockerHost(await SshConnection.connect(options), timeouts);
}
