// The deploy lock of an environment as a container on one host: created (atomically, Docker's
// container names being unique), never started, its labels saying who holds it.
import type { Readable } from 'node:stream';
import type { DeployLock, LockOwner } from '../../rollout/ports.js';
import { firstFileOf, oneFileTar } from './archive.js';
import { DockerHostError, statusOf, tolerate, type Engine } from './engine.js';

/** Labels of a lock container (never started): who holds the deploy lock of an environment. */
export const LOCK_LABELS = {
  holder: 'deploy-action.lock.holder',
  runUrl: 'deploy-action.lock.run-url',
  runId: 'deploy-action.lock.run-id',
  attempt: 'deploy-action.lock.run-attempt',
  version: 'deploy-action.lock.version',
  since: 'deploy-action.lock.since',
} as const;

const LOCK_ATTEMPTS = 8;

export async function acquireLock(
  engine: Engine,
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
  // A lock released between our failed create and our read: try again. A removal under way
  // holds the name while inspect no longer finds it: the retries wait a little longer each time.
  for (let attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
    if (attempt > 0) await new Promise((done) => setTimeout(done, 100 * attempt));
    try {
      // Docker's unique container names make the create atomic. The entrypoint only keeps the
      // create from failing on an image without a command; nothing ever starts a lock.
      await engine.create(name, { Image: image, Entrypoint: ['deploy-action-lock'], Labels: labels, NetworkDisabled: true });
      return { acquired: true };
    } catch (error) {
      if (statusOf(error) !== 409) throw error;
    }
    const current = await engine.inspect(name);
    if (current) return { acquired: false, current: lockOf(engine.host, name, current.Config.Labels ?? {}) };
  }
  throw new DockerHostError(`${engine.host}: the lock ${name} keeps changing hands`);
}

export async function releaseLock(engine: Engine, name: string, owner: LockOwner): Promise<boolean> {
  const current = await engine.inspect(name);
  const labels = current?.Config.Labels ?? {};
  // A lock from before attempts were recorded has no attempt label: its run id decides.
  const attempt = labels[LOCK_LABELS.attempt];
  if (!current || labels[LOCK_LABELS.runId] !== owner.runId || (attempt !== undefined && attempt !== owner.attempt)) return false;
  return engine.call(`release the lock ${name}`, (abortSignal) =>
    engine.docker
      .getContainer(current.Id)
      .remove({ force: true, abortSignal })
      .then(() => true, (error: unknown) => (statusOf(error) === 404 ? false : Promise.reject(error))),
  );
}

/** Who holds the deploy lock `name`, or undefined when no one does (read-only: check, status). */
export async function readLock(engine: Engine, name: string): Promise<DeployLock | undefined> {
  const current = await engine.inspect(name);
  return current ? lockOf(engine.host, name, current.Config.Labels ?? {}) : undefined;
}

function lockOf(host: string, name: string, labels: Record<string, string>): DeployLock {
  const runId = labels[LOCK_LABELS.runId];
  if (!runId) throw new DockerHostError(`${host}: a container named ${name} exists and is not a deploy lock`);
  return {
    holder: labels[LOCK_LABELS.holder] ?? '',
    runUrl: labels[LOCK_LABELS.runUrl] ?? '',
    runId,
    attempt: labels[LOCK_LABELS.attempt] ?? '',
    version: labels[LOCK_LABELS.version] ?? '',
    since: new Date(labels[LOCK_LABELS.since] ?? 0),
  };
}

/** The two files of the journal kept in a lock container: written in turn, so a write cut off mid-way leaves the other whole. */
const journalFile = (slot: 0 | 1) => `deploy-action-journal-${slot}.json`;

/**
 * Writes `text` into the lock container `name` (created, never started: its filesystem takes
 * files all the same), as one of its two journal files. It goes with the lock when the lock is
 * removed. Fails when there is no such container.
 */
export async function writeLockJournal(engine: Engine, name: string, slot: 0 | 1, text: string): Promise<void> {
  const archive = oneFileTar(journalFile(slot), Buffer.from(text, 'utf8'));
  await engine.call(`write the journal into the lock ${name}`, (abortSignal) =>
    engine.docker.getContainer(name).putArchive(archive, { path: '/', abortSignal } as object),
  );
}

/** The journal files the lock container `name` holds (none when there is no lock or no journal). */
export async function readLockJournal(engine: Engine, name: string): Promise<string[]> {
  const texts: string[] = [];
  for (const slot of [0, 1] as const) {
    const text = await engine.call(`read the journal of the lock ${name}`, async (abortSignal) => {
      const stream = (await tolerate(engine.docker.getContainer(name).getArchive({ path: `/${journalFile(slot)}`, abortSignal }), 404)) as Readable | undefined;
      if (!stream) return undefined;
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      return firstFileOf(Buffer.concat(chunks))?.toString('utf8');
    });
    if (text !== undefined) texts.push(text);
  }
  return texts;
}
