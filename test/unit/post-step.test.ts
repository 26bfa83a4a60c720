// The post step's deployment record (finishCutShort), over the shared in-memory estate: the
// connections to hosts are the estate's (connectHost routed to MemoryHost), GitHub's deployment
// records are kept in memory. A job's record must not stay in_progress, whatever the post step
// could do.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import type { Journal } from '../../src/pipeline/journal.js';
import { Estate, MemoryHost, release } from '../support/memory-estate.js';

let world: Estate;

vi.mock('../../src/drivers/docker/host.js', async (original) => ({
  ...(await original<object>()),
  connectHost: async (o: { host: string }) => {
    await world.enter({ at: o.host, op: 'connect' });
    return new MemoryHost(o.host, world);
  },
}));

/** GitHub's deployment records, as the post step reads and writes them. */
interface MemoryRecord {
  id: number;
  runId: string;
  /** The attempt in its payload (absent: written before the action recorded it). */
  attempt?: string;
  statuses: { state: string; description: string }[];
}
const records: MemoryRecord[] = [];
vi.mock('../../src/drivers/github.js', async (original) => ({
  ...(await original<object>()),
  GitHubApi: class {
    async setDeploymentStatus(id: number, state: string, s: { description: string }) {
      records.find((r) => r.id === id)!.statuses.push({ state, description: s.description });
    }
    async deploymentState(id: number) {
      return records.find((r) => r.id === id)?.statuses.at(-1)?.state ?? 'none';
    }
    // Asked without an attempt (as the driver once was), every attempt's record matches.
    async openRecordsOfRun(_environment: string, runId: string, attempt?: string) {
      const ofAttempt = (r: MemoryRecord) => r.runId === runId && (attempt === undefined || r.attempt === attempt);
      return records.filter((r) => ofAttempt(r) && ['in_progress', undefined].includes(r.statuses.at(-1)?.state)).map((r) => r.id);
    }
  },
}));

const { finishCutShort } = await import('../../src/pipeline/index.js');
const { readInputs } = await import('../../src/inputs.js');

const config = parseConfig('deploy.yml', ['app: app', 'image: r/app', 'container: { port: 3000 }', 'environments:', '  production:', '    hosts: [h1, h2]', ''].join('\n'));
const v1 = release('v1.0.0');
const INPUTS = { COMMAND: 'deploy', ENVIRONMENT: 'production', VERSION: 'v2.0.0', 'SSH-PRIVATE-KEY': 'key', 'SSH-KNOWN-HOSTS': 'h1 ssh-ed25519 AAAA', 'GITHUB-TOKEN': 'token' };
const RUNNER = { GITHUB_REPOSITORY: 'clay/app', GITHUB_RUN_ID: '1001', GITHUB_RUN_ATTEMPT: '1', GITHUB_SERVER_URL: 'https://github.com' };
const saved = new Map<string, string | undefined>();

beforeEach(() => {
  for (const [name, value] of [...Object.entries(INPUTS).map(([k, v]) => [`INPUT_${k}`, v] as const), ...Object.entries(RUNNER)]) {
    if (!saved.has(name)) saved.set(name, process.env[name]);
    process.env[name] = value;
  }
  records.splice(0);
  world = new Estate(['h1', 'h2'], []);
  for (const host of world.hosts) {
    world.boxes.set(world.key(host, 'master'), { release: v1, healthy: true });
    world.boxes.set(world.key(host, 'backup'), { release: v1, healthy: true });
  }
});
afterEach(() => {
  for (const [name, value] of saved) {
    if (value === undefined) delete process.env[name];
    else process.env[name] = value;
  }
});

/** The journal of a main step killed while it moved h1's master (its new one never started). */
const killedMidChange = (extra: Partial<Journal> = {}): Journal => ({
  environment: 'production',
  version: 'v2.0.0',
  touched: ['h1'],
  before: { h1: { master: v1, backup: v1 } },
  outOfService: [],
  heldOn: [],
  changing: ['h1/master'],
  ...extra,
});

describe('the post step\'s deployment record', () => {
  it('a post step that cannot finish (a host cut off) still closes the run\'s record, saying what is left', async () => {
    records.push({ id: 1, runId: '1001', statuses: [{ state: 'in_progress', description: 'Deploying v2.0.0' }] });
    world.unreachable.add('h1');
    const lock = { host: 'h1', name: 'app-deploy-lock', runId: '1001', attempt: '1', tookOver: false };
    await expect(finishCutShort(readInputs(), config, { journal: JSON.stringify(killedMidChange({ deploymentId: 1 })), lock: JSON.stringify(lock) })).rejects.toThrow('h1: connection lost');
    expect(records[0]!.statuses.at(-1)).toEqual({
      state: 'failure',
      description: expect.stringMatching(/^Runner stopped mid-rollout; the post step could not finish, its lock stays \(left: mid-change: h1\/master\): .*h1: connection lost/),
    });
  });

  it('a record the main step closed already stays as it said, when the post step cannot finish', async () => {
    records.push({ id: 1, runId: '1001', statuses: [{ state: 'in_progress', description: 'Deploying v2.0.0' }, { state: 'failure', description: 'v2.0.0 failed on h1' }] });
    world.unreachable.add('h1');
    const journal = killedMidChange({ deploymentId: 1, ended: { how: 'failed', message: 'v2.0.0 failed on h1' } });
    await expect(finishCutShort(readInputs(), config, { journal: JSON.stringify(journal), lock: '' })).rejects.toThrow('h1: connection lost');
    expect(records[0]!.statuses.map((s) => s.description)).toEqual(['Deploying v2.0.0', 'v2.0.0 failed on h1']);
  });

  it('a run killed after opening its record and before its journal said so: the post step finds the record by the run id in its payload', async () => {
    // Another run's record, open too: not this run's to close.
    records.push({ id: 6, runId: '999', statuses: [{ state: 'in_progress', description: 'Deploying v1.0.0' }] });
    records.push({ id: 7, runId: '1001', attempt: '1', statuses: [] });
    await finishCutShort(readInputs(), config, { journal: JSON.stringify(killedMidChange()), lock: '' });
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
    expect(records.find((r) => r.id === 7)!.statuses).toEqual([{ state: 'failure', description: 'Runner stopped mid-rollout; the post step settled h1 on the old release v1.0.0' }]);
    expect(records.find((r) => r.id === 6)!.statuses).toHaveLength(1);
  });

  it('a record the main step closed stays as it said, when the post step finishes: the post step posts only to a record still open', async () => {
    const mainStepSaid = 'v2.0.0 to production failed on h1: master unhealthy; ROLLBACK INCOMPLETE:';
    records.push({ id: 1, runId: '1001', attempt: '1', statuses: [{ state: 'in_progress', description: 'Deploying v2.0.0' }, { state: 'failure', description: mainStepSaid }] });
    const journal = killedMidChange({ deploymentId: 1, ended: { how: 'failed', message: mainStepSaid } });
    await finishCutShort(readInputs(), config, { journal: JSON.stringify(journal), lock: '' });
    // The post step did finish the rollback...
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
    // ... and the main step's precise word stays the record's last.
    expect(records[0]!.statuses.map((s) => s.description)).toEqual(['Deploying v2.0.0', mainStepSaid]);
  });

  it("a re-run attempt's post step never closes an earlier attempt's open record of the same run", async () => {
    process.env.GITHUB_RUN_ATTEMPT = '2';
    // Attempt 1 left its record open (its runner died, no post step); a record from before the
    // action recorded attempts is no attempt's either.
    records.push({ id: 4, runId: '1001', statuses: [{ state: 'in_progress', description: 'Deploying v1.5.0' }] });
    records.push({ id: 5, runId: '1001', attempt: '1', statuses: [{ state: 'in_progress', description: 'Deploying v2.0.0' }] });
    records.push({ id: 8, runId: '1001', attempt: '2', statuses: [] });
    await finishCutShort(readInputs(), config, { journal: JSON.stringify(killedMidChange()), lock: '' });
    expect(records.find((r) => r.id === 8)!.statuses).toEqual([{ state: 'failure', description: 'Runner stopped mid-rollout; the post step settled h1 on the old release v1.0.0' }]);
    expect(records.find((r) => r.id === 5)!.statuses).toEqual([{ state: 'in_progress', description: 'Deploying v2.0.0' }]);
    expect(records.find((r) => r.id === 4)!.statuses).toHaveLength(1);
  });
});

describe('the post step of a run that changed nothing', () => {
  it('releases the lock of a run killed before its first change (its journal never reached the lock), with another host cut off', async () => {
    // Killed between taking the lock and writing its first journal next to it: the step state
    // has the journal (nothing touched), the lock container has none.
    const lock = { host: 'h1', name: 'app-deploy-lock', runId: '1001', attempt: '1', tookOver: false };
    world.locks.set('h1/app-deploy-lock', { holder: 'run 1001', runUrl: '', runId: '1001', attempt: '1', version: 'v2.0.0', since: new Date() });
    world.unreachable.add('h2');
    const journal: Journal = { environment: 'production', version: 'v2.0.0', touched: [], outOfService: [], heldOn: [] };
    await finishCutShort(readInputs(), config, { journal: JSON.stringify(journal), lock: JSON.stringify(lock) });
    expect([...world.locks.keys()]).toEqual([]);
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
  });
});
