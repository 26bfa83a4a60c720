// The Docker Engine of one application host: dockerode over the host's single SSH connection,
// each API request on its own channel to the engine's unix socket (dockerode's own `ssh`
// protocol would open a new SSH connection per call). Every engine request has a deadline,
// and every failure names the host and the operation. The other modules of this folder drive
// the engine through this one.
import http from 'node:http';
import Dockerode from 'dockerode';
import { engineMessage } from '../registry.js';
import { httpAgent, type SshConnection } from '../ssh.js';

const DOCKER_SOCKET = '/var/run/docker.sock';
// Docker's own grammar for container names; names end up in URL paths.
const CONTAINER_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export interface DockerTimeouts {
  /** Any single engine request but pulls and stops. */
  apiSeconds: number;
  pullSeconds: number;
}

const DEFAULT_TIMEOUTS: DockerTimeouts = { apiSeconds: 30, pullSeconds: 900 };

/** What the engine connection needs from an SSH connection. */
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

export class Engine {
  readonly host: string;
  readonly docker: Dockerode;
  readonly timeouts: DockerTimeouts;

  constructor(
    readonly tunnel: Tunnel,
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
    this.docker = new Dockerode(options);
  }

  /**
   * Runs one engine operation under a deadline (an API request's unless `seconds` says
   * otherwise); errors come out naming the host and the operation.
   */
  async call<T>(what: string, run: (signal: AbortSignal) => Promise<T>, seconds = this.timeouts.apiSeconds): Promise<T> {
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

  /** The container with exactly this name, or undefined. */
  inspect(name: string): Promise<Dockerode.ContainerInspectInfo | undefined> {
    checkName(name);
    return this.call(`inspect ${name}`, async (abortSignal) => {
      const info = await tolerate(this.docker.getContainer(name).inspect({ abortSignal }), 404);
      // With no container of that name Docker falls back to an ID prefix: a hex-like name
      // could otherwise find someone else's container.
      return info?.Name === `/${name}` ? info : undefined;
    });
  }

  create(name: string, body: Dockerode.ContainerCreateOptions): Promise<Dockerode.Container> {
    checkName(name);
    // dockerode copies every create option into the query string too, Env included: _query and
    // _body keep the environment (secrets) out of the URL, where engine debug logs would show it.
    return this.call(`create ${name}`, (abortSignal) =>
      this.docker.createContainer({ _query: { name }, _body: body, abortSignal } as Dockerode.ContainerCreateOptions),
    );
  }
}

/**
 * The engine's message. For streamed endpoints (pull) docker-modem has no JSON body to take it
 * from and leaves it inside its own "(HTTP code 404) unexpected - " wrapping: unwrap that too.
 */
export function engineText(error: unknown): string {
  return engineMessage(error).replace(/^\(HTTP code \d+\) [^-]*- /, '').trim();
}

export function checkName(name: string): void {
  if (!CONTAINER_NAME.test(name)) throw new DockerHostError(`not a container name: ${JSON.stringify(name)}`);
}

export function statusOf(error: unknown): number | undefined {
  return (error as { statusCode?: number } | undefined)?.statusCode;
}

/** The operation's result, or undefined when the engine answered one of the given statuses. */
export async function tolerate<T>(operation: Promise<T>, ...statuses: number[]): Promise<T | undefined> {
  try {
    return await operation;
  } catch (error) {
    const status = statusOf(error);
    if (status !== undefined && statuses.includes(status)) return undefined;
    throw error;
  }
}
