// The SSH, Docker and HAProxy drivers against the real estate (test/estate/estate.sh up):
// verified host keys, one SSH connection per host for every engine call, real pulls from the
// registry, real containers and health checks, real HAProxy runtime state.
// Everything here uses its own repository, container names and ports (not the demo app's), and
// removes what it created.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DockerHost, connectHost } from '../../src/drivers/docker/host.js';
import { HaproxyRuntime, connectLoadBalancer } from '../../src/drivers/haproxy.js';
import { SshConnection, fingerprint } from '../../src/drivers/ssh.js';
import { LABELS, type ContainerSpec, type DeployLock, type Release, type Role } from '../../src/rollout/ports.js';
import { execIn, loadEstate, nodeOf, registryAuth, sshOptions } from './support/estate.js';
import { pushTestApp, type TestAppRelease } from './support/images.js';

const estate = loadEstate();
const staging = estate.environments.staging;
const [hostA, hostB] = staging.hosts;
if (!hostA || !hostB) throw new Error('these tests need two staging hosts (estate.sh up --staging 2)');
const REPOSITORY = `${estate.registry.address}/clay/drivers-test`;
const APP = 'drivers-test';
const LOCK = `${APP}-lock`;
const auth = registryAuth(estate);
const health = { path: '/healthcheck', timeoutSeconds: 30, intervalSeconds: 1 };

let good: TestAppRelease;
let newer: TestAppRelease;
let broken: TestAppRelease;

beforeAll(async () => {
  // Versions no other test builds: an identical build is the same image under every repository
  // name, and a container of another test using it would (rightly) keep it from being pruned.
  good = await pushTestApp(estate, { repository: REPOSITORY, version: 'v0.1.0-drivers', fresh: true });
  newer = await pushTestApp(estate, { repository: REPOSITORY, version: 'v0.2.0-drivers', fresh: true });
  broken = await pushTestApp(estate, { repository: REPOSITORY, version: 'v0.3.0-drivers', broken: true, fresh: true });
}, 600_000);

const release = ({ version, ref, digest }: TestAppRelease): Release => ({ version, ref, digest });

function spec(from: TestAppRelease, name: string, role: Role, hostPort: number): ContainerSpec {
  return {
    name,
    role,
    release: release(from),
    hostPort,
    containerPort: 3000,
    env: { GREETING: 'hello world', API_TOKEN: 'not-really-secret' },
    volumes: ['/tmp:/host-tmp:ro'],
    restart: 'on-failure:3',
    stopTimeout: 5,
    init: true,
    labels: { [LABELS.app]: APP, [LABELS.environment]: 'staging' },
  };
}

/** The base64 key known_hosts has for a host. */
function knownKey(host: string): string {
  const line = sshOptions(estate, host)
    .knownHosts.split('\n')
    .find((entry) => entry.split(' ')[0] === host);
  if (!line) throw new Error(`no known_hosts line for ${host}`);
  return line.split(' ')[2]!;
}

const keyFingerprint = (host: string) => fingerprint(Buffer.from(knownKey(host), 'base64'));
const opened = (host: string) => SshConnection.opened.get(host) ?? 0;

/** A TCP relay to host:port that the test can cut, as a network failure would. */
async function relayTo(host: string, port: number) {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(port, host);
    for (const socket of [client, upstream]) {
      sockets.add(socket);
      socket.on('error', () => socket.destroy());
      socket.on('close', () => sockets.delete(socket));
    }
    client.pipe(upstream).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    cut: () => sockets.forEach((socket) => socket.resetAndDestroy()),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('SshConnection', () => {
  it('connects with a verified host key and reaches the engine over it', async () => {
    const host = await connectHost(sshOptions(estate, hostA));
    try {
      await host.ping();
    } finally {
      host.dispose();
    }
  });

  it('refuses a host whose key is not the one known_hosts has, naming the key it saw', async () => {
    const knownHosts = `${hostA} ssh-ed25519 ${knownKey(hostB)}\n`;
    const attempt = SshConnection.connect(sshOptions(estate, hostA, { knownHosts }));
    await expect(attempt).rejects.toThrow(`${hostA}: the host key has CHANGED; it offered ssh-ed25519 ${keyFingerprint(hostA)}`);
  });

  it('refuses a host known_hosts does not list, naming the key it saw', async () => {
    const knownHosts = `${hostB} ssh-ed25519 ${knownKey(hostB)}\n`;
    const attempt = SshConnection.connect(sshOptions(estate, hostA, { knownHosts }));
    await expect(attempt).rejects.toThrow(
      `SSH host key verification failed for ${hostA}: the host is not in known_hosts; it offered ssh-ed25519 ${keyFingerprint(hostA)}`,
    );
  });

  it('reaches a host through a jump host, verifying both keys', async () => {
    const before = [opened(hostA), opened(hostB)];
    const jump = { host: hostA, port: 22, username: estate.sshUser };
    const host = await connectHost(sshOptions(estate, hostB, { proxyJump: jump }));
    try {
      await host.ping();
      expect([opened(hostA), opened(hostB)]).toEqual([before[0]! + 1, before[1]! + 1]);
    } finally {
      host.dispose();
    }
    const knownHosts = `${hostA} ssh-ed25519 ${knownKey(hostA)}\n`;
    await expect(SshConnection.connect(sshOptions(estate, hostB, { proxyJump: jump, knownHosts }))).rejects.toThrow(
      `for ${hostB}: the host is not in known_hosts; it offered ssh-ed25519 ${keyFingerprint(hostB)}`,
    );
  });

  it('turns a dropped connection into rejected operations, not a crash', async () => {
    const relay = await relayTo(hostA, 22);
    // The same host seen as [127.0.0.1]:port, which known_hosts must then name that way.
    const knownHosts = `[127.0.0.1]:${relay.port} ssh-ed25519 ${knownKey(hostA)}\n`;
    const host = await connectHost(sshOptions(estate, '127.0.0.1', { port: relay.port, knownHosts }));
    try {
      await host.ping();
      const inFlight = host.ping();
      relay.cut();
      await expect(inFlight).rejects.toThrow(/^127\.0\.0\.1: ping the Docker engine failed: SSH connection to 127\.0\.0\.1 lost/);
      await expect(host.containers(APP)).rejects.toThrow(/SSH connection to 127\.0\.0\.1 lost/);
    } finally {
      host.dispose();
      await relay.close();
    }
  });
});

describe('DockerHost', () => {
  let host: DockerHost;
  let connectionsBefore: number;
  const node = nodeOf(estate, hostA);
  const inspect = async (name: string) => JSON.parse(await execIn(node, 'docker', 'inspect', name))[0];
  const hasImage = (ref: string) => execIn(node, 'docker', 'image', 'inspect', ref).then(() => true, () => false);
  const runId = `drivers-test-${process.pid}`;
  const lock = (holder: string, id: string, attempt = '1'): DeployLock => ({
    holder,
    runUrl: `https://github.example/clay/demo/actions/runs/${id}`,
    runId: id,
    attempt,
    version: good.version,
    since: new Date('2026-01-02T03:04:05Z'),
  });

  beforeAll(async () => {
    // Leftovers of a killed earlier run, removed without the drivers under test.
    await execIn(node, 'sh', '-c', `docker rm -f ${APP} ${APP}-backup ${LOCK} >/dev/null 2>&1; true`);
    connectionsBefore = opened(hostA);
    host = await connectHost(sshOptions(estate, hostA));
    await host.pruneImages(REPOSITORY, 0, []);
  });

  afterAll(async () => {
    await host.stopAndRemove(APP, 1);
    await host.stopAndRemove(`${APP}-backup`, 1);
    await host.releaseLock(LOCK, { runId, attempt: '1' });
    await host.pruneImages(REPOSITORY, 0, []);
    host.dispose();
  });

  it('pings the engine', async () => {
    await host.ping();
  });

  it('resolves a tag to its digest through the engine; a missing tag is null', async () => {
    expect(await host.resolveDigest(REPOSITORY, good.version, auth)).toBe(good.digest);
    expect(await host.resolveDigest(REPOSITORY, 'v0.0.0-missing', auth)).toBeNull();
  });

  it('says why the registry refused, with the host', async () => {
    const wrong = { ...auth, password: 'wrong' };
    await expect(host.resolveDigest(REPOSITORY, good.version, wrong)).rejects.toThrow(
      new RegExp(`^${hostA}: resolve ${REPOSITORY}:${good.version} failed: cannot read .*unauthorized`),
    );
  });

  it('pulls by digest, reporting progress', async () => {
    const lines: string[] = [];
    await host.pull(good.ref, auth, (line) => lines.push(line));
    expect(lines.at(-1)).toMatch(/^Status: (Downloaded newer image|Image is up to date)/);
    expect(await hasImage(good.ref)).toBe(true);
  }, 60_000);

  it('fails a pull with the registry reason: missing tag, wrong credentials', async () => {
    const missing = `${REPOSITORY}:v0.0.0-missing`;
    await expect(host.pull(missing, auth)).rejects.toThrow(
      `${hostA}: pull ${missing} failed: manifest for ${missing} not found: manifest unknown`,
    );
    await expect(host.pull(good.tag, { ...auth, password: 'wrong' })).rejects.toThrow(
      `${hostA}: pull ${good.tag} failed: unauthorized: authentication required`,
    );
  });

  it('runs a container with port binding, init, env, volumes, restart policy and labels', async () => {
    const id = await host.run(spec(good, APP, 'master', 50100));
    const info = await inspect(APP);
    expect(info.Id).toBe(id);
    expect(info.Config.Image).toBe(good.ref);
    expect(info.Config.Env).toEqual(expect.arrayContaining(['GREETING=hello world', 'API_TOKEN=not-really-secret']));
    expect(info.Config.Labels).toMatchObject({
      [LABELS.app]: APP,
      [LABELS.environment]: 'staging',
      [LABELS.role]: 'master',
      [LABELS.version]: good.version,
      [LABELS.digest]: good.digest,
    });
    expect(info.Config.StopTimeout).toBe(5);
    expect(info.HostConfig).toMatchObject({
      Init: true,
      PortBindings: { '3000/tcp': [{ HostIp: '', HostPort: '50100' }] },
      Binds: ['/tmp:/host-tmp:ro'],
      RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 3 },
    });
  });

  it('finds the container by name with its release', async () => {
    const { Id } = await inspect(APP);
    expect(await host.containers(APP)).toEqual({
      master: { id: Id, name: APP, role: 'master', running: true, release: release(good) },
    });
  });

  it('waits for a good release to be healthy: HEALTHCHECK and HTTP through SSH', async () => {
    const verdict = await host.waitHealthy(APP, 50100, health);
    expect(verdict).toMatchObject({ healthy: true });
    // HTTP 2xx decides; Docker's HEALTHCHECK may still be starting (it only vetoes, when unhealthy).
    expect(verdict.detail).toMatch(/^healthy after \d+s \(docker health (starting|healthy), HTTP 200\)$/);
  }, 40_000);

  it('reports a broken release unhealthy, with its health log', async () => {
    await host.pull(broken.ref, auth);
    await host.run(spec(broken, `${APP}-backup`, 'backup', 50101));
    const progress: string[] = [];
    const verdict = await host.waitHealthy(`${APP}-backup`, 50101, health, (line) => progress.push(line));
    expect(verdict.healthy).toBe(false);
    expect(verdict.detail).toMatch(/^unhealthy by its HEALTHCHECK/);
    expect(progress).toContainEqual(expect.stringMatching(new RegExp(`^waiting for ${APP}-backup: docker health starting, HTTP 404`)));
    if (verdict.healthy) return;
    expect(verdict.logs).toContain(`--- last 30 log lines of ${APP}-backup ---`);
    expect(verdict.logs).toMatch(/--- Docker health checks of drivers-test-backup \(status unhealthy\) ---\n.* exit 1: .*404/);
    expect(Object.keys(await host.containers(APP)).sort()).toEqual(['backup', 'master']);
  }, 40_000);

  it('stops (quickly, with init) and removes; absent containers are fine', async () => {
    const started = Date.now();
    await host.stopAndRemove(APP, 5);
    expect(Date.now() - started).toBeLessThan(4_000);
    await host.stopAndRemove(`${APP}-backup`, 5);
    await host.stopAndRemove(`${APP}-backup`, 5);
    expect(await host.containers(APP)).toEqual({});
  }, 30_000);

  it('holds the deploy lock for one run at a time', async () => {
    const mine = lock('octocat', runId);
    expect(await host.acquireLock(LOCK, mine, good.ref)).toEqual({ acquired: true });
    expect(await host.acquireLock(LOCK, lock('hubot', 'other-run'), good.ref)).toEqual({ acquired: false, current: mine });
    expect(await host.releaseLock(LOCK, { runId: 'other-run', attempt: '1' })).toBe(false);
    // Another attempt of the same run is another holder.
    expect(await host.releaseLock(LOCK, { runId, attempt: '2' })).toBe(false);
    expect(await host.acquireLock(LOCK, lock('hubot', 'other-run'), good.ref)).toMatchObject({ acquired: false });
    expect(await host.releaseLock(LOCK, { runId, attempt: '1' })).toBe(true);
    expect(await host.releaseLock(LOCK, { runId, attempt: '1' })).toBe(false);
    expect(await host.acquireLock(LOCK, lock('hubot', 'other-run'), good.ref)).toEqual({ acquired: true });
    expect(await host.releaseLock(LOCK, { runId: 'other-run', attempt: '1' })).toBe(true);
  });

  it('prunes old images of the repository, never protected or used ones', async () => {
    await host.pull(newer.ref, auth);
    // Built in this order within a second or two: the engine lists whole seconds, so times may
    // tie, and the prune then orders by the version label. Build and version order agree here.
    const [newest, middle, oldest] = [broken, newer, good];
    // A container (a lock, never started) keeps the oldest image in use.
    await host.acquireLock(LOCK, lock('octocat', runId), oldest.ref);
    expect(await host.pruneImages(REPOSITORY, 0, [middle.digest])).toEqual([newest.ref]);
    expect([await hasImage(oldest.ref), await hasImage(middle.ref), await hasImage(newest.ref)]).toEqual([true, true, false]);
    await host.releaseLock(LOCK, { runId, attempt: '1' });
    expect(await host.pruneImages(REPOSITORY, 1, [])).toEqual([oldest.ref]);
    expect(await host.pruneImages(REPOSITORY, 0, [])).toEqual([middle.ref]);
    expect(await host.pruneImages(REPOSITORY, 0, [])).toEqual([]);
  }, 60_000);

  it('made every engine call above over one SSH connection', () => {
    expect(opened(hostA) - connectionsBefore).toBe(1);
  });
});

describe('HaproxyRuntime', () => {
  const environments = Object.entries(estate.environments);
  const balancers = new Map<string, HaproxyRuntime>();

  beforeAll(async () => {
    for (const [name, { lb }] of environments) {
      balancers.set(name, await connectLoadBalancer(sshOptions(estate, lb.address), { socket: lb.socket, backend: lb.backend }));
    }
  });
  afterAll(() => balancers.forEach((balancer) => balancer.dispose()));

  it.each(environments)('%s: finds each host master and backup, and their spare slots, by address and port', async (name, { hosts }) => {
    const balancer = balancers.get(name)!;
    for (const [i, address] of hosts.entries()) {
      expect(await balancer.findServer(address, 50000)).toBe(`h${i + 1}-master`);
      expect(await balancer.findServer(address, 50001)).toBe(`h${i + 1}-backup`);
      // The spare slots of the no-gap procedure (declared disabled in the estate's backends).
      expect(await balancer.findServer(address, 50002)).toBe(`h${i + 1}-master-spare`);
      expect(await balancer.findServer(address, 50003)).toBe(`h${i + 1}-backup-spare`);
      expect(await balancer.findServer(address, 50004)).toBeUndefined();
    }
    expect(await balancer.findServer('10.231.0.99', 50000)).toBeUndefined();
  });

  it('shows HAProxy refusals and never sends names it cannot trust', async () => {
    const balancer = balancers.get('staging')!;
    await expect(balancer.setState('h99-master', 'drain')).rejects.toThrow(
      `HAProxy backend app on ${staging.lb.address}: "set server app/h99-master state drain" was answered: No such server.`,
    );
    await expect(balancer.status('h99-master')).rejects.toThrow('there is no server h99-master');
    await expect(balancer.setState('h1-master state ready\nshutdown', 'drain')).rejects.toThrow('not an HAProxy server name');
  });

  describe('drain, maint and ready on a served port', () => {
    const name = `${APP}-lb`;
    let served: { host: DockerHost; balancer: HaproxyRuntime; server: string; initial: string };
    const balancer = () => served.balancer;
    const server = () => served.server;

    /** Runs the good release on the first HAProxy server port no container holds (others may be deploying). */
    async function serveOnAFreePort(): Promise<typeof served> {
      for (const [environment, { hosts }] of environments) {
        for (const address of [...hosts].reverse()) {
          const host = await connectHost(sshOptions(estate, address));
          await host.stopAndRemove(name, 1);
          await host.pull(good.ref, auth);
          for (const port of [50001, 50000]) {
            const balancer = balancers.get(environment)!;
            const server = (await balancer.findServer(address, port))!;
            const initial = (await balancer.status(server)).status;
            try {
              await host.run(spec(good, name, 'backup', port));
            } catch (error) {
              if (/port is already allocated/.test(String(error))) continue;
              throw error;
            }
            expect((await host.waitHealthy(name, port, health)).healthy).toBe(true);
            return { host, balancer, server, initial };
          }
          await host.pruneImages(REPOSITORY, 0, []);
          host.dispose();
        }
      }
      throw new Error('every HAProxy server port of the estate is taken: is another test deploying?');
    }

    beforeAll(async () => {
      served = await serveOnAFreePort();
    }, 120_000);

    afterAll(async () => {
      if (!served) return;
      // Leave the server as we found it: a port nobody served, in or out of maintenance.
      await balancer().setState(server(), served.initial.startsWith('MAINT') ? 'maint' : 'ready');
      await served.host.stopAndRemove(name, 1);
      await served.host.pruneImages(REPOSITORY, 0, []);
      served.host.dispose();
    }, 30_000);

    async function statusBecomes(expected: RegExp, seconds = 10): Promise<string> {
      const deadline = Date.now() + seconds * 1000;
      for (;;) {
        const { status, sessions, queued } = await balancer().status(server());
        expect(Number.isInteger(sessions) && Number.isInteger(queued)).toBe(true);
        if (expected.test(status) || Date.now() > deadline) return status;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }

    it('is visible in status() at each step', async () => {
      await balancer().setState(server(), 'ready');
      expect(await statusBecomes(/^UP$/)).toBe('UP');
      await balancer().setState(server(), 'drain');
      expect((await balancer().status(server())).status).toBe('DRAIN');
      await balancer().setState(server(), 'maint');
      expect((await balancer().status(server())).status).toBe('MAINT');
      await balancer().setState(server(), 'ready');
      // HAProxy 2.6 marks a server leaving MAINT up at once, as "UP 1/3" until its next check passes.
      expect((await balancer().status(server())).status).toMatch(/^UP/);
      expect(await statusBecomes(/^UP$/)).toBe('UP');
    }, 30_000);
  });
});
