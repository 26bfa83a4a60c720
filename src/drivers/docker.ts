// The Docker Engine of one application host: dockerode over the host's single SSH connection,
// each API request on its own channel to the engine's unix socket (dockerode's own `ssh`
// protocol would open a new SSH connection per call). Every engine request has a deadline,
// and every failure names the host and the operation.
import http from 'node:http';
import Dockerode from 'dockerode';
import semver from 'semver';
import {
  LABELS,
  type AppContainer,
  type ContainerSpec,
  type DeployLock,
  type HealthCheck,
  type HealthVerdict,
  type HostDriver,
  type LockOwner,
  type RegistryCredentials,
  type Release,
  type Role,
} from '../rollout/ports.js';
import { OCI_VERSION_LABEL, adoptedRelease, releaseOf } from './container-state.js';
import { repositoryOf } from '../release/trust.js';
import { portBinding, probeAddress, publishedOn } from './bind.js';
import { engineMessage, resolveDigest } from './registry.js';
import { SshConnection, httpAgent, type SshOptions } from './ssh.js';

const DOCKER_SOCKET = '/var/run/docker.sock';
const LOG_LINES = 30;
const HEALTH_LOG_ENTRIES = 5;
const PROBE_TIMEOUT_MS = 2_000;
const PROGRESS_EVERY_MS = 5_000;
const FIRST_PROBE_PAUSE_MS = 100;
// Docker's own grammar for container names; names end up in URL paths.
const CONTAINER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

/** Labels of a lock container (never started): who holds the deploy lock of an environment. */
export const LOCK_LABELS = {
  holder: 'deploy-action.lock.holder',
  runUrl: 'deploy-action.lock.run-url',
  runId: 'deploy-action.lock.run-id',
  attempt: 'deploy-action.lock.run-attempt',
  version: 'deploy-action.lock.version',
  since: 'deploy-action.lock.since',
} as const;

export interface DockerTimeouts {
  /** Any single engine request but pulls and stops. */
  apiSeconds: number;
  pullSeconds: number;
}

const DEFAULT_TIMEOUTS: DockerTimeouts = { apiSeconds: 30, pullSeconds: 900 };

/** What DockerHost needs from an SSH connection. */
export type Tunnel = Pick<SshConnection, 'host' | 'failure' | 'forwardStreamLocal' | 'forwardTcp' | 'dispose'>;

export class DockerHostError extends Error {
  override name = 'DockerHostError';
  /** The engine's HTTP status, when the engine answered. */
  readonly statusCode: number | undefined;

  constructor(message: string, options: { cause?: unknown; statusCode?: number | undefined } = {}) {
    super(message, { cause: options.cause });
    this.statusCode = options.statusCode;
  }
}

type Health = NonNullable<Dockerode.ContainerInspectInfo['State']['Health']>;

export class DockerHost implements HostDriver {
  readonly host: string;
  private readonly engine: Dockerode;
  private readonly timeouts: DockerTimeouts;

  constructor(
    private readonly tunnel: Tunnel,
    timeouts: Partial<DockerTimeouts> = {},
  ) {
    this.host = tunnel.host;
    this.timeouts = { ...DEFAULT_TIMEOUTS, ...timeouts };
    // The host name is never used to connect: the agent hands every request a forwarded channel.
    const options: Dockerode.DockerOptions & { agent: http.Agent } = {
      host: 'docker',
      port: 80,
      protocol: 'http',
      agent: httpAgent(() => tunnel.forwardStreamLocal(DOCKER_SOCKET)),
    };
    this.engine = new Dockerode(options);
  }

  dispose(): void {
    this.tunnel.dispose();
  }

  async ping(): Promise<void> {
    await this.call('ping the Docker engine', this.timeouts.apiSeconds, () => this.engine.ping());
  }

  /**
   * The app's master and backup. A release whose labels fail release/trust.ts's checks (against
   * `trust.repository`, the configured image, when given) is left out, as unknown, and reported.
   */
  async containers(app: string, trust?: { repository: string; warn: (line: string) => void }): Promise<Partial<Record<Role, AppContainer>>> {
    const found: Partial<Record<Role, AppContainer>> = {};
    for (const [name, byName] of [[app, 'master'], [`${app}-backup`, 'backup']] as const) {
      const info = await this.inspect(name);
      if (!info) continue;
      const labels = info.Config.Labels ?? {};
      const labelled = labels[LABELS.role];
      const role: Role = labelled === 'master' || labelled === 'backup' ? labelled : byName;
      if (found[role]) {
        throw new DockerHostError(`${this.host}: containers ${found[role].name} and ${name} both claim the ${role} role`);
      }
      const checked = releaseOf(labels, info.Config.Image, trust?.repository);
      if (checked && 'untrusted' in checked) trust?.warn(`${this.host}: the labels of ${name} are not trusted (${checked.untrusted}): it is adopted as a container deploy-action did not create`);
      // A running container without (trusted) labels serves all the same: it is adopted.
      const release = checked && 'trusted' in checked ? checked.trusted : info.State.Running ? await this.adopted(info) : undefined;
      found[role] = { id: info.Id, name, role, running: info.State.Running, ...(release ? { release } : {}) };
    }
    return found;
  }

  /** What a running container that deploy-action did not create runs, read from its image. */
  private async adopted(info: Dockerode.ContainerInspectInfo): Promise<Release> {
    // Image inspect takes no abort signal; the call's deadline still bounds it.
    const image = await this.call(`inspect the image of ${info.Name.slice(1)}`, this.timeouts.apiSeconds, () =>
      tolerate(this.engine.getImage(info.Image).inspect(), 404),
    );
    return adoptedRelease(info.Config.Image, image?.Config?.Labels ?? {}, image?.RepoDigests ?? []);
  }

  resolveDigest(repository: string, tag: string, auth?: RegistryCredentials): Promise<string | null> {
    return this.call(`resolve ${repository}:${tag}`, this.timeouts.apiSeconds, () => resolveDigest(this.engine, repository, tag, auth));
  }

  async pull(ref: string, auth?: RegistryCredentials, onProgress?: (line: string) => void): Promise<void> {
    await this.call(`pull ${ref}`, this.timeouts.pullSeconds, async (abortSignal) => {
      // Resolves once the engine starts streaming; registry errors arrive inside the stream.
      const stream = await this.engine.pull(ref, { ...(auth ? { authconfig: auth } : {}), abortSignal });
      const failure = await new Promise<string | undefined>((resolve, reject) => {
        let error: string | undefined;
        this.engine.modem.followProgress(
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
      if (failure) throw new DockerHostError(`${this.host}: pull ${ref} failed: ${failure}`);
      // followProgress also ends quietly when the stream is cut: check the image really arrived.
      await this.engine.getImage(ref).inspect().catch(() => {
        throw new DockerHostError(`${this.host}: pull ${ref} ended but the image is not on the host`);
      });
    });
  }

  async stopAndRemove(name: string, stopTimeout: number): Promise<void> {
    const info = await this.inspect(name);
    if (!info) return;
    const container = this.engine.getContainer(info.Id);
    await this.stop(name, container, stopTimeout);
    // v: anonymous volumes belong to this container alone; named volumes and binds stay.
    await this.call(`remove ${name}`, this.timeouts.apiSeconds, (abortSignal) =>
      tolerate(container.remove({ v: true, abortSignal }), 404),
    );
  }

  async setAside(name: string, asideName: string, stopTimeout: number): Promise<void> {
    if (await this.inspect(asideName)) {
      throw new DockerHostError(
        `${this.host}: cannot set ${name} aside: a container named ${asideName} exists (an earlier run left it); ` +
          `look at it, then remove it or rename it back to ${name}`,
      );
    }
    const info = await this.inspect(name);
    if (!info) throw new DockerHostError(`${this.host}: cannot set ${name} aside: it does not exist`);
    const container = this.engine.getContainer(info.Id);
    await this.stop(name, container, stopTimeout);
    await this.call(`rename ${name} to ${asideName}`, this.timeouts.apiSeconds, (abortSignal) =>
      container.rename({ _query: { name: asideName }, abortSignal } as object),
    );
  }

  async restore(asideName: string, name: string): Promise<void> {
    const info = await this.inspect(asideName);
    if (!info) throw new DockerHostError(`${this.host}: cannot put ${name} back: ${asideName} does not exist`);
    checkName(name);
    const container = this.engine.getContainer(info.Id);
    await this.call(`rename ${asideName} to ${name}`, this.timeouts.apiSeconds, (abortSignal) =>
      container.rename({ _query: { name }, abortSignal } as object),
    );
    await this.call(`start ${name}`, this.timeouts.apiSeconds, (abortSignal) => tolerate(container.start({ abortSignal }), 304));
  }

  private stop(name: string, container: Dockerode.Container, stopTimeout: number): Promise<unknown> {
    return this.call(`stop ${name}`, stopTimeout + this.timeouts.apiSeconds, (abortSignal) =>
      tolerate(container.stop({ t: stopTimeout, abortSignal }), 304, 404),
    );
  }

  async run(spec: ContainerSpec): Promise<string> {
    const port = `${spec.containerPort}/tcp`;
    const container = await this.create(spec.name, {
      Image: spec.release.ref,
      Env: Object.entries(spec.env).map(([name, value]) => `${name}=${value}`),
      // What containers() reads back always matches the spec, whatever labels the caller passed.
      Labels: {
        ...spec.labels,
        [LABELS.role]: spec.role,
        [LABELS.version]: spec.release.version,
        [LABELS.digest]: spec.release.digest,
      },
      ExposedPorts: { [port]: {} },
      StopTimeout: spec.stopTimeout,
      HostConfig: {
        PortBindings: { [port]: [portBinding(spec.bind, this.host, spec.hostPort)] },
        Binds: spec.volumes,
        RestartPolicy: restartPolicy(spec.restart),
        Init: spec.init,
      },
    });
    try {
      await this.call(`start ${spec.name}`, this.timeouts.apiSeconds, (abortSignal) => container.start({ abortSignal }));
    } catch (error) {
      // A created-but-dead container would hold the name and the port binding: take it away.
      await this.call(`remove ${spec.name}`, this.timeouts.apiSeconds, (abortSignal) =>
        container.remove({ force: true, v: true, abortSignal }),
      ).catch(() => undefined);
      throw error;
    }
    return container.id;
  }

  async waitHealthy(
    name: string,
    hostPort: number,
    check: HealthCheck,
    onProgress?: (line: string) => void,
    signal?: AbortSignal,
  ): Promise<HealthVerdict> {
    const started = Date.now();
    const deadline = started + check.timeoutSeconds * 1000;
    let probing: { address: string; agent: http.Agent } | undefined;
    let reported = { at: 0, summary: '' };
    let pause = Math.min(FIRST_PROBE_PAUSE_MS, check.intervalSeconds * 1000);
    for (;;) {
      if (signal?.aborted) return { healthy: false, detail: 'cancelled', logs: '' };
      const info = await this.inspect(name);
      if (!info) return { healthy: false, detail: `container ${name} does not exist`, logs: '' };
      const state = info.State;
      const health = state.Health;
      const unhealthy = async (why: string): Promise<HealthVerdict> => ({
        healthy: false,
        detail: why,
        logs: await this.diagnostics(name, info.Id, health),
      });
      if (state.Status === 'exited' || state.Status === 'dead') {
        return unhealthy(`exited with code ${state.ExitCode}${state.OOMKilled ? ' (killed: out of memory)' : ''}${state.Error ? `: ${state.Error}` : ''}`);
      }
      // Docker says unhealthy only after the image's own retries: no point waiting further.
      if (health?.Status === 'unhealthy') return unhealthy(`unhealthy by its HEALTHCHECK (${health.FailingStreak} failures in a row)`);
      const running = state.Status === 'running';
      // The probe goes where the port is published (container.bind), fixed at create.
      if (!probing) {
        const address = probeAddress(publishedOn(info.HostConfig?.PortBindings, hostPort));
        probing = { address, agent: httpAgent(() => this.tunnel.forwardTcp(address, hostPort)) };
      }
      const answer = running ? await probe(probing.agent, probing.address, hostPort, check.path) : undefined;
      const parts = [
        running ? undefined : `container ${state.Status}`,
        health ? `docker health ${health.Status}` : undefined,
        answer ? `HTTP ${answer.text}` : undefined,
      ];
      const summary = parts.filter(Boolean).join(', ');
      const elapsed = Math.round((Date.now() - started) / 1000);
      // Docker's HEALTHCHECK vetoes (unhealthy, above) but is not waited for: its first verdict
      // comes an interval after start, and the HTTP answer already proves the app serves.
      if (running && answer?.ok) {
        return { healthy: true, detail: `healthy after ${elapsed}s (${summary})` };
      }
      const now = Date.now();
      if (now >= deadline) return unhealthy(`not healthy after ${check.timeoutSeconds}s (${summary})`);
      if (onProgress && (summary !== reported.summary || now - reported.at >= PROGRESS_EVERY_MS)) {
        onProgress(`waiting for ${name}: ${summary} (${elapsed}s)`);
        reported = { at: now, summary };
      }
      // Quick probes while the app starts, backing off to health.interval.
      await sleep(Math.min(pause, deadline - now), signal);
      pause = Math.min(pause * 2, check.intervalSeconds * 1000);
    }
  }

  async acquireLock(
    name: string,
    lock: DeployLock,
    image: string,
  ): Promise<{ acquired: true } | { acquired: false; current: DeployLock }> {
    const labels = {
      [LOCK_LABELS.holder]: lock.holder,
      [LOCK_LABELS.runUrl]: lock.runUrl,
      [LOCK_LABELS.runId]: lock.runId,
      [LOCK_LABELS.attempt]: lock.attempt,
      [LOCK_LABELS.version]: lock.version,
      [LOCK_LABELS.since]: lock.since.toISOString(),
    };
    // A lock released between our failed create and our read: try again.
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        // Docker's unique container names make the create atomic. The entrypoint only keeps the
        // create from failing on an image without a command; nothing ever starts a lock.
        await this.create(name, { Image: image, Entrypoint: ['deploy-action-lock'], Labels: labels, NetworkDisabled: true });
        return { acquired: true };
      } catch (error) {
        if (statusOf(error) !== 409) throw error;
      }
      const current = await this.inspect(name);
      if (current) return { acquired: false, current: this.lockOf(name, current.Config.Labels ?? {}) };
    }
    throw new DockerHostError(`${this.host}: the lock ${name} keeps changing hands`);
  }

  async releaseLock(name: string, owner: LockOwner): Promise<boolean> {
    const current = await this.inspect(name);
    const labels = current?.Config.Labels ?? {};
    // A lock from before attempts were recorded has no attempt label: its run id decides.
    const attempt = labels[LOCK_LABELS.attempt];
    if (!current || labels[LOCK_LABELS.runId] !== owner.runId || (attempt !== undefined && attempt !== owner.attempt)) return false;
    return this.call(`release the lock ${name}`, this.timeouts.apiSeconds, (abortSignal) =>
      this.engine
        .getContainer(current.Id)
        .remove({ force: true, abortSignal })
        .then(() => true, (error: unknown) => (statusOf(error) === 404 ? false : Promise.reject(error))),
    );
  }

  /** Who holds the deploy lock `name`, or undefined when no one does (read-only: check, status). */
  async readLock(name: string): Promise<DeployLock | undefined> {
    const current = await this.inspect(name);
    return current ? this.lockOf(name, current.Config.Labels ?? {}) : undefined;
  }

  /** The engine's version and API version. */
  async version(): Promise<{ version: string; apiVersion: string }> {
    const answer = await this.call('read the engine version', this.timeouts.apiSeconds, () => this.engine.version());
    return { version: answer.Version, apiVersion: answer.ApiVersion };
  }

  /** Where the engine keeps images (DockerRootDir), and the size of the largest image of `repository` it holds. */
  async storage(repository: string): Promise<{ root: string; largestImage: number }> {
    const [info, images] = await this.call('read the engine\'s storage', this.timeouts.apiSeconds, (abortSignal) =>
      Promise.all([this.engine.info() as Promise<{ DockerRootDir?: string }>, this.engine.listImages({ abortSignal })]),
    );
    const ours = images.filter((image) => [...(image.RepoTags ?? []), ...(image.RepoDigests ?? [])].some((ref) => repositoryOf(ref) === repository));
    return { root: info.DockerRootDir ?? '/var/lib/docker', largestImage: Math.max(0, ...ours.map((image) => image.Size)) };
  }

  /** A container's state as status shows it: running or not, Docker's health verdict, since when. */
  async containerState(name: string): Promise<{ state: string; health?: string; since: string; deployedAt?: string } | undefined> {
    const info = await this.inspect(name);
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
  async portUse(port: number, address: string): Promise<{ containers: string[]; listening: boolean }> {
    const running = await this.call('list containers', this.timeouts.apiSeconds, (abortSignal) => this.engine.listContainers({ abortSignal }));
    const containers = running.filter((c) => c.Ports.some((p) => p.PublicPort === port)).map((c) => (c.Names[0] ?? c.Id).replace(/^\//, ''));
    if (containers.length > 0) return { containers, listening: true };
    const listening = await this.tunnel.forwardTcp(address, port).then(
      (channel) => {
        channel.destroy();
        return true;
      },
      () => false,
    );
    return { containers, listening };
  }

  async pruneImages(repository: string, keep: number, protect: string[]): Promise<string[]> {
    const [images, containers] = await this.call(`list images of ${repository}`, this.timeouts.apiSeconds, (abortSignal) =>
      Promise.all([this.engine.listImages({ abortSignal }), this.engine.listContainers({ all: true, abortSignal })]),
    );
    const inUse = new Set(containers.map((container) => container.ImageID));
    const removed: string[] = [];
    for (const refs of imagesToPrune(images, repository, keep, protect, inUse)) {
      if (await this.removeImage(refs)) removed.push(refs[0]!);
    }
    return removed;
  }

  /** Deletes an image's references in order; false when a container took it meanwhile. */
  private async removeImage(refs: string[]): Promise<boolean> {
    for (const ref of refs) {
      // 404: deleting the image's last tag already took its digest references.
      const status = await this.call(`remove image ${ref}`, this.timeouts.apiSeconds, (abortSignal) =>
        this.engine.getImage(ref).remove({ abortSignal }).then(
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

  /** The container with exactly this name, or undefined. */
  private inspect(name: string): Promise<Dockerode.ContainerInspectInfo | undefined> {
    checkName(name);
    return this.call(`inspect ${name}`, this.timeouts.apiSeconds, async (abortSignal) => {
      const info = await tolerate(this.engine.getContainer(name).inspect({ abortSignal }), 404);
      // With no container of that name Docker falls back to an ID prefix: a hex-like name
      // could otherwise find someone else's container.
      return info?.Name === `/${name}` ? info : undefined;
    });
  }

  private create(name: string, body: Dockerode.ContainerCreateOptions): Promise<Dockerode.Container> {
    checkName(name);
    // dockerode copies every create option into the query string too, Env included: _query and
    // _body keep the environment (secrets) out of the URL, where engine debug logs would show it.
    return this.call(`create ${name}`, this.timeouts.apiSeconds, (abortSignal) =>
      this.engine.createContainer({ _query: { name }, _body: body, abortSignal } as Dockerode.ContainerCreateOptions),
    );
  }

  private lockOf(name: string, labels: Record<string, string>): DeployLock {
    const runId = labels[LOCK_LABELS.runId];
    if (!runId) throw new DockerHostError(`${this.host}: a container named ${name} exists and is not a deploy lock`);
    return {
      holder: labels[LOCK_LABELS.holder] ?? '',
      runUrl: labels[LOCK_LABELS.runUrl] ?? '',
      runId,
      attempt: labels[LOCK_LABELS.attempt] ?? '',
      version: labels[LOCK_LABELS.version] ?? '',
      since: new Date(labels[LOCK_LABELS.since] ?? 0),
    };
  }

  /** The container's last log lines and Docker's last health checks, for a failed verdict. */
  private async diagnostics(name: string, id: string, health: Health | undefined): Promise<string> {
    const sections: string[] = [];
    try {
      const raw = await this.call(`read the logs of ${name}`, this.timeouts.apiSeconds, (abortSignal) =>
        this.engine.getContainer(id).logs({ stdout: true, stderr: true, tail: LOG_LINES, follow: false, abortSignal }),
      );
      sections.push(`--- last ${LOG_LINES} log lines of ${name} ---`, demuxLogs(raw).trimEnd() || '(no output)');
    } catch (error) {
      sections.push(`--- logs of ${name} unavailable: ${engineText(error)} ---`);
    }
    if (health?.Log.length) {
      sections.push(
        `--- Docker health checks of ${name} (status ${health.Status}) ---`,
        ...health.Log.slice(-HEALTH_LOG_ENTRIES).map((entry) => `${entry.End} exit ${entry.ExitCode}: ${entry.Output.trim()}`),
      );
    }
    return sections.join('\n');
  }

  /** Runs one engine operation under a deadline; errors come out naming the host and the operation. */
  private async call<T>(what: string, seconds: number, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const controller = new AbortController();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new DockerHostError(`${this.host}: ${what} timed out after ${seconds}s`));
        controller.abort();
      }, seconds * 1000);
    });
    try {
      return await Promise.race([run(controller.signal), timeout]);
    } catch (error) {
      const lost = this.tunnel.failure;
      if (lost) throw new DockerHostError(`${this.host}: ${what} failed: ${lost.message}`, { cause: error });
      if (error instanceof DockerHostError) throw error;
      const message = `${this.host}: ${what} failed: ${engineText(error)}`;
      throw new DockerHostError(message, { cause: error, statusCode: statusOf(error) });
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Opens the host's SSH connection and drives its Docker engine over it. */
export async function connectHost(options: SshOptions, timeouts?: Partial<DockerTimeouts>): Promise<DockerHost> {
  return new DockerHost(await SshConnection.connect(options), timeouts);
}

interface PullProgress {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * The engine's message. For streamed endpoints (pull) docker-modem has no JSON body to take it
 * from and leaves it inside its own "(HTTP code 404) unexpected - " wrapping: unwrap that too.
 */
function engineText(error: unknown): string {
  return engineMessage(error).replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

function checkName(name: string): void {
  if (!CONTAINER_NAME.test(name)) throw new DockerHostError(`not a container name: ${JSON.stringify(name)}`);
}

function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number } | undefined)?.statusCode;
}

/** The operation's result, or undefined when the engine answered one of the given statuses. */
async function tolerate<T>(operation: Promise<T>, ...statuses: number[]): Promise<T | undefined> {
  try {
    return await operation;
  } catch (error) {
    const status = statusOf(error);
    if (status !== undefined && statuses.includes(status)) return undefined;
    throw error;
  }
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

/**
 * The text of a non-TTY container's logs: Docker frames each chunk with an 8-byte header
 * (stream, 0, 0, 0, length). Anything else (a TTY container) is returned as it is.
 */
export function demuxLogs(raw: Buffer): string {
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset < raw.length) {
    const framed = offset + 8 <= raw.length && raw[offset]! <= 2 && raw.readUIntBE(offset + 1, 3) === 0;
    if (!framed) return offset === 0 ? raw.toString('utf8') : Buffer.concat([...chunks, raw.subarray(offset)]).toString('utf8');
    const size = raw.readUInt32BE(offset + 4);
    chunks.push(raw.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(chunks).toString('utf8');
}

export interface PrunableImage {
  Id: string;
  Created: number;
  RepoTags?: string[] | undefined;
  RepoDigests?: string[] | undefined;
  Labels?: Record<string, string> | undefined;
}


/** The semver an image's OCI version label holds (v1.4.0 → 1.4.0), or null. */
function labelledVersion(image: PrunableImage): string | null {
  const label = image.Labels?.[OCI_VERSION_LABEL] ?? '';
  return semver.valid(label.startsWith('v') ? label.slice(1) : label);
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

type ProbeResult = { ok: boolean; text: string };

/** One GET through the SSH connection to the published port on the host itself. */
function probe(agent: http.Agent, host: string, port: number, path: string): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const request = http.get(
      { agent, host, port, path, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) },
      (response) => {
        response.resume();
        const status = response.statusCode ?? 0;
        resolve({ ok: status >= 200 && status < 300, text: String(status) });
      },
    );
    request.on('error', (error) =>
      resolve({ ok: false, text: `no answer (${error.name === 'AbortError' ? `none within ${PROBE_TIMEOUT_MS / 1000}s` : error.message})` }),
    );
  });
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
