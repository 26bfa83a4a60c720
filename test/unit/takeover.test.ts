// A run that takes over the lock of a run whose runner died, through the deploy pipeline itself
// (runPipeline: pre-flight, the lock, the interrupted-run repair) over the shared in-memory
// estate: the connections to hosts and load balancers are answered by it, @actions/core keeps
// the step state in memory.
import { createHash } from 'node:crypto';
import { describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config/parse.js';
import type { Inputs } from '../../src/inputs.js';
import { runPipeline } from '../../src/pipeline/index.js';
import { JOURNAL_STATE, newestJournal, type Journal } from '../../src/pipeline/journal.js';
import type { Release } from '../../src/rollout/ports.js';
import { lockOf } from '../support/deploy-lock.js';
import { Estate, MemoryHost, MemoryLoadBalancer } from '../support/memory-estate.js';

const shared = vi.hoisted(() => ({ world: undefined as unknown, state: new Map<string, string>(), logs: [] as string[] }));
vi.mock('@actions/core', async (original) => ({
  ...(await original<object>()),
  info: (line: string) => void shared.logs.push(line),
  warning: (line: string) => void shared.logs.push(`warning: ${line}`),
  saveState: (name: string, value: string) => void shared.state.set(name, value),
  setOutput: () => undefined,
  group: <T>(_title: string, run: () => Promise<T>) => run(),
}));
vi.mock('../../src/drivers/docker/host.js', async (original) => ({
  ...(await original<object>()),
  connectHost: async ({ host }: { host: string }) => new MemoryHost(host, shared.world as Estate),
}));
vi.mock('../../src/drivers/haproxy.js', async (original) => ({
  ...(await original<object>()),
  connectLoadBalancer: async ({ host }: { host: string }) => new MemoryLoadBalancer(host, shared.world as Estate),
}));

const IMAGE = 'registry.test/team/app';
const digestOf = (version: string) => `sha256:${createHash('sha256').update(version).digest('hex')}`;
const releaseOf = (version: string): Release => ({ version, digest: digestOf(version), ref: `${IMAGE}@${digestOf(version)}`, history: [`${version}@${digestOf(version)}`] });
const v1 = releaseOf('v1.0.0');

const config = parseConfig(
  'deploy.yml',
  [
    'app: app',
    `image: ${IMAGE}`,
    'container: { port: 3000, stop-timeout: 30 }',
    'environments:',
    '  production:',
    '    hosts: [h1, h2]',
    '    lock: { takeover: true, stale-after: 300 }',
    '    haproxy: { hosts: [lb1], backend: app, drain-timeout: 5 }',
  ].join('\n'),
);

/** The next run, as the runner starts it: run 1003, no GitHub token (the lock's age decides). */
const inputs = {
  command: 'deploy',
  configFile: 'deploy.yml',
  configPath: 'deploy.yml',
  environment: 'production',
  version: 'v2.0.0',
  digest: '',
  allowNeverDeployed: false,
  reason: '',
  lines: 0,
  task: [],
  timeoutSeconds: 0,
  registry: { username: '', password: '' },
  ssh: { privateKey: 'key', knownHosts: 'h1 ssh-ed25519 AAAA' },
  githubToken: '',
  run: { ref: '', sha: '', repository: 'clay/app', serverUrl: 'https://github.com', apiUrl: 'https://api.github.com', runId: '1003', runAttempt: '1', actor: 'octocat', workflow: 'release', workflowRef: '', workspace: '/tmp', tempDir: '/tmp' },
} as Inputs;

describe('a run that takes over the lock of a run whose runner died', () => {
  it('keeps the lock and the journal when its repair fails, and its error says what is left', async () => {
    const world = (shared.world = new Estate(['h1', 'h2'], ['lb1']));
    world.registry.set('v2.0.0', digestOf('v2.0.0'));
    for (const key of ['h1/master', 'h1/backup', 'h2/master', 'h2/backup']) world.boxes.set(key, { release: v1, healthy: true });
    // Run 1001's runner died while host 1's master was out of service, before it stopped it.
    world.lbs.get('lb1')!.set('h1-master', 'maint');
    world.locks.set('h1/app-deploy-lock', { ...lockOf('1001'), version: 'v2.0.0' });
    const left: Journal = {
      environment: 'production',
      version: 'v2.0.0',
      touched: ['h1'],
      before: { h1: { master: v1, backup: v1 } },
      outOfService: ['h1:50000'],
      changing: ['h1/master'],
      heldOn: [],
      seq: 3,
    };
    world.lockJournals.set('h1/app-deploy-lock', [JSON.stringify(left)]);
    // The repair stops that master for good; removing it fails.
    world.intercept = (call) => {
      if (call.op === 'remove') throw new Error(`${call.at}: remove ${call.subject} failed`);
    };

    const failed = await runPipeline(inputs, config, config.environments.production!, { task: 'deploy', tag: 'v2.0.0', digest: '' }).then(
      () => undefined,
      (error: Error) => error.message,
    );
    // The host half-repaired (its master stopped, its server in MAINT) stays explained: by the
    // lock, now this run's, and the journal in it, for the post step or the next run to finish.
    expect(world.locks.get('h1/app-deploy-lock')?.runId).toBe('1003');
    expect(newestJournal(world.lockJournals.get('h1/app-deploy-lock') ?? [])).toMatchObject({ outOfService: ['h1:50000'], changing: ['h1/master'], touched: ['h1'] });
    expect(JSON.parse(shared.state.get(JOURNAL_STATE) || '{}')).toMatchObject({ outOfService: ['h1:50000'] });
    expect(failed).toBe(
      'could not finish what the run whose lock was taken over left: h1: remove app failed. Left on h1: out of service: h1:50000; mid-change: h1/master. ' +
        'The deploy lock stays on h1 with its journal: this job\'s post step tries again, and the next deploy (lock.takeover: true) finishes it first',
    );
    expect(world.lbs.get('lb1')!.get('h1-master')).toBe('maint');
  });
});
