// One-off containers (a release command, a `command: run` task) and log tails. A one-off runs the
// app's image with the app's environment and volumes and no published port, its output followed
// as it comes, bounded by a timeout and a cancellation signal; it is removed however it ends.
import { PassThrough } from 'node:stream';
import type Dockerode from 'dockerode';
import { LABELS, type OneOffSpec } from '../../rollout/ports.js';
import { restartPolicy } from './lifecycle.js';
import { DockerHostError, tolerate, type Engine } from './engine.js';

/** How a one-off ended: its exit code, or stopped by the action at its timeout or on a cancel. */
export type OneOffEnd = { outcome: 'exited'; exitCode: number } | { outcome: 'timeout' } | { outcome: 'cancelled' };

export interface OneOffOptions {
  timeoutSeconds: number;
  /** Each piece of output as it comes (stdout and stderr alike), untrusted text. */
  onOutput: (text: string) => void;
  signal?: AbortSignal;
}

/** Output still arriving after the container exited is read at most this long. */
const OUTPUT_GRACE_MS = 5_000;

export async function runOneOff(engine: Engine, spec: OneOffSpec, options: OneOffOptions): Promise<OneOffEnd> {
  await removeLeftover(engine, spec.name, { refuseRunning: true });
  const container = await engine.create(spec.name, {
    Image: spec.release.ref,
    // The image's entrypoint stays: the command is its arguments, as `docker run IMAGE CMD...` does.
    Cmd: spec.command,
    Env: Object.entries(spec.env).map(([name, value]) => `${name}=${value}`),
    Labels: spec.labels,
    Tty: false,
    HostConfig: { Binds: spec.volumes, Init: spec.init, RestartPolicy: restartPolicy('no') },
  });
  try {
    await engine.call(`start ${spec.name}`, (abortSignal) => container.start({ abortSignal }));
    const { ended: output } = await follow(engine, spec.name, container, options.onOutput);
    const end = await waitForEnd(engine, spec.name, container, options);
    if (end.outcome !== 'exited') {
      await engine.call(`stop ${spec.name}`, (abortSignal) => tolerate(container.kill({ abortSignal }), 404, 409));
    }
    await Promise.race([output, new Promise((done) => setTimeout(done, OUTPUT_GRACE_MS).unref())]);
    return end;
  } finally {
    await engine.call(`remove ${spec.name}`, (abortSignal) => tolerate(container.remove({ force: true, v: true, abortSignal }), 404)).catch(() => undefined);
  }
}

/** Follows the container's output from its start; `ended` resolves when the stream ends (the container stopped). */
async function follow(engine: Engine, name: string, container: Dockerode.Container, onOutput: (text: string) => void): Promise<{ ended: Promise<void> }> {
  const stream = (await engine.call(`follow the output of ${name}`, (abortSignal) =>
    container.logs({ follow: true, stdout: true, stderr: true, abortSignal }),
  )) as unknown as NodeJS.ReadableStream;
  const out = new PassThrough();
  out.on('data', (chunk: Buffer) => onOutput(chunk.toString('utf8')));
  engine.docker.modem.demuxStream(stream, out, out);
  const ended = new Promise<void>((done) => {
    stream.on('end', () => done());
    stream.on('close', () => done());
    stream.on('error', () => done());
  });
  return { ended };
}

async function waitForEnd(engine: Engine, name: string, container: Dockerode.Container, { timeoutSeconds, signal }: OneOffOptions): Promise<OneOffEnd> {
  const stopWaiting = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const timedOut = new Promise<OneOffEnd>((done) => {
    timer = setTimeout(() => done({ outcome: 'timeout' }), timeoutSeconds * 1000);
  });
  const cancelled = new Promise<OneOffEnd>((done) => {
    onAbort = () => done({ outcome: 'cancelled' });
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
  const exited = container
    .wait({ abortSignal: stopWaiting.signal })
    .then((answer: { StatusCode: number }): OneOffEnd => ({ outcome: 'exited', exitCode: answer.StatusCode }))
    .catch((error: unknown) => {
      if (stopWaiting.signal.aborted) return new Promise<OneOffEnd>(() => undefined);
      const lost = engine.tunnel.failure;
      throw new DockerHostError(`${engine.host}: waiting for ${name} failed: ${lost?.message ?? (error as Error).message}`, { cause: error });
    });
  try {
    return await Promise.race([exited, timedOut, cancelled]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
    stopWaiting.abort();
  }
}

/**
 * Removes a one-off container an earlier run left. One still running is refused when
 * `refuseRunning` (an earlier run's release command may be migrating a database), else killed
 * (the post step of the run that started it). Returns whether there was one.
 */
export async function removeLeftover(engine: Engine, name: string, { refuseRunning, runUrl }: { refuseRunning: boolean; runUrl?: string }): Promise<boolean> {
  const info = await engine.inspect(name);
  if (!info) return false;
  // The post step removes only its own run's (another run may have taken over the lock since).
  if (runUrl !== undefined && info.Config.Labels?.[LABELS.runUrl] !== runUrl) return false;
  if (info.State.Running && refuseRunning) {
    throw new DockerHostError(
      `${engine.host}: ${name}, a one-off container started ${info.State.StartedAt} by an earlier run, is still running: ` +
        `wait for it (docker logs -f ${name} on ${engine.host}), or stop it, then try again`,
    );
  }
  await engine.call(`remove ${name}`, (abortSignal) => tolerate(engine.docker.getContainer(info.Id).remove({ force: true, v: true, abortSignal }), 404));
  return true;
}
