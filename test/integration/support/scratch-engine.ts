// A Docker engine with nothing in it (test/estate/scratch-engine.sh): no image, no build cache,
// as on a fresh runner. For the build cache's test and bench.
import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from './estate.js';

const run = promisify(execFile);
const SCRIPT = join(REPO_ROOT, 'test/estate/scratch-engine.sh');

export interface ScratchEngine {
  /** unix:///... for DOCKER_HOST. */
  dockerHost: string;
  stop(): Promise<void>;
}

export async function startScratchEngine(): Promise<ScratchEngine> {
  const dir = await mkdtemp(join(tmpdir(), 'scratch-engine-'));
  const { stdout } = await run('bash', [SCRIPT, 'start', dir]);
  return { dockerHost: stdout.trim(), stop: async () => void (await run('bash', [SCRIPT, 'stop', dir])) };
}

/** Runs `work` against a new empty engine, stopped (and its files removed) afterwards. */
export async function withScratchEngine<T>(work: (dockerHost: string) => Promise<T>): Promise<T> {
  const engine = await startScratchEngine();
  try {
    return await work(engine.dockerHost);
  } finally {
    await engine.stop();
  }
}

/**
 * The registry at `address` (host:port), reached on a loopback port of this process. dockerd
 * 20.10's BuildKit ignores --insecure-registry (moby parses the entry as a URL and an address
 * without a scheme fails to parse), so it speaks HTTPS to the estate's plain-HTTP registry and
 * fails; a loopback registry it speaks HTTP to, as every engine does.
 */
export async function loopbackRegistry(address: string): Promise<{ address: string; close(): Promise<void> }> {
  const [host, port] = [address.slice(0, address.lastIndexOf(':')), Number(address.slice(address.lastIndexOf(':') + 1))];
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    const upstream = connect(port, host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('close', () => sockets.delete(socket));
    }
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((listening) => server.listen(0, '127.0.0.1', listening));
  return {
    address: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () =>
      new Promise<void>((closed) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => closed());
      }),
  };
}
