// Roles beside the web role (workers): the plan (pure), and the rollout against the in-memory
// estate: workers move after every web container is proven, a worker that is not ready puts
// every role back (workers, then the web role), a web failure leaves the workers alone, a cancel
// puts back only the worker whose move was unproven, and what a run cut short set aside is put
// back before anything moves.
import { describe, expect, it } from 'vitest';
import { repairInterrupted } from '../../src/pipeline/interrupted.js';
import { executeRollout } from '../../src/rollout/execute.js';
import type { RoleContainer } from '../../src/rollout/ports.js';
import { checkRoles } from '../../src/commands/check.js';
import type { EnvironmentConfig } from '../../src/config/schema.js';
import { rolloutSummary } from '../../src/report/summary.js';
import { describeRolePlan, planRoles, type RolePolicy } from '../../src/rollout/roles.js';
import { memoryEstate, release } from '../support/memory-estate.js';

const v1 = release('v1.0.0');
const v2 = release('v2.0.0');
const broken = release('v3.0.0-broken');
const worker = (more: Partial<RolePolicy> = {}): RolePolicy => ({ name: 'worker', hosts: ['h1', 'h2'], count: 2, stopTimeout: 30, ready: { running: 5 }, ...more });
const container = (name: string, version: string, running = true): RoleContainer => ({ id: name, name, role: name.split('-')[1]!, release: release(version), running });

describe('planRoles', () => {
  const steps = (current: Record<string, RoleContainer[]>, roles = [worker()]) =>
    planRoles('app', v2, roles, new Map(Object.entries(current))).map((p) => `${p.host}: ${p.steps.map((s) => `${s.kind} ${s.name}${s.kind === 'move' ? (s.existing ? ` ${s.from?.version}` : ' new') : ''}`).join(', ')}`);

  it('moves each container of each host, keeps those already on the release, retires the rest', () => {
    expect(
      steps({
        h1: [container('app-worker-1', 'v1.0.0'), container('app-worker-2', 'v2.0.0'), container('app-worker-3', 'v1.0.0')],
        h2: [],
      }),
    ).toEqual(['h1: move app-worker-1 v1.0.0, keep app-worker-2, retire app-worker-3', 'h2: move app-worker-1 new, move app-worker-2 new']);
  });

  it('reads as text for command: plan', () => {
    const plans = planRoles('app', v2, [worker({ count: 1 })], new Map([['h1', [container('app-worker-1', 'v1.0.0')]], ['h2', []]]));
    expect(describeRolePlan(plans)).toEqual(['Roles, once every web batch is proven:', '  h1', '    - app-worker-1: v1.0.0 → v2.0.0', '  h2', '    - app-worker-1: nothing → v2.0.0']);
    expect(describeRolePlan([])).toEqual([]);
  });

  it('replaces a stopped container even on the release, retires a host no longer listed, leaves unknown roles alone', () => {
    expect(
      steps(
        { h1: [container('app-worker-1', 'v2.0.0', false), container('app-mailer-1', 'v1.0.0')], h2: [container('app-worker-1', 'v1.0.0')] },
        [worker({ hosts: ['h1'], count: 1 })],
      ),
    ).toEqual(['h1: move app-worker-1 v2.0.0', 'h2: retire app-worker-1']);
  });
});

describe('executeRollout with a worker role', () => {
  const setup = (start = v1, roles = [worker()]) => memoryEstate(['h1', 'h2'], { master: start, backup: start }, { roles });

  it('moves the workers after every web container is proven, each one stopped, set aside, replaced; then discards the old ones', async () => {
    const { world, deps, plan } = setup();
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(true);
    expect(world.violations).toEqual([]);
    expect(world.roleServed()).toEqual({ 'h1/app-worker-1': 'v2.0.0', 'h1/app-worker-2': 'v2.0.0', 'h2/app-worker-1': 'v2.0.0', 'h2/app-worker-2': 'v2.0.0' });
    const firstAside = world.events.indexOf('aside h1/app-worker-1');
    expect(firstAside).toBeGreaterThan(world.events.lastIndexOf('ready h2-backup'));
    expect(world.events.filter((e) => e.includes('h1/app-worker-1'))).toEqual(['aside h1/app-worker-1', 'run h1/app-worker-1 v2.0.0', 'ready? h1/app-worker-1', 'remove h1/app-worker-1-previous']);
    expect(result.roles?.containers.map((c) => `${c.host} ${c.name} ${c.before?.version}→${c.after?.version}`)).toEqual([
      'h1 app-worker-1 v1.0.0→v2.0.0',
      'h1 app-worker-2 v1.0.0→v2.0.0',
      'h2 app-worker-1 v1.0.0→v2.0.0',
      'h2 app-worker-2 v1.0.0→v2.0.0',
    ]);
  });

  it('a worker that does not become ready puts every worker back, then rolls the web role back', async () => {
    const { world, deps, plan } = setup();
    world.rolesNotReady.add('v2.0.0');
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(false);
    expect(result.failure?.message).toBe('h1: worker v2.0.0 app-worker-1 did not become ready: exited with code 1');
    expect(world.roleServed()).toEqual({ 'h1/app-worker-1': 'v1.0.0', 'h1/app-worker-2': 'v1.0.0', 'h2/app-worker-1': 'v1.0.0', 'h2/app-worker-2': 'v1.0.0' });
    expect(world.served()).toEqual({ 'h1/master': 'v1.0.0', 'h1/backup': 'v1.0.0', 'h2/master': 'v1.0.0', 'h2/backup': 'v1.0.0' });
    expect(result.hosts.every((h) => h.rolledBack)).toBe(true);
    expect(result.rollbackErrors).toEqual([]);
    expect(world.violations).toEqual([]);
    // The workers go back before the web role does.
    expect(world.events.indexOf('restore h1/app-worker-1 v1.0.0')).toBeLessThan(world.events.indexOf('run h2/master v1.0.0'));
    expect(result.roles?.containers.find((c) => c.name === 'app-worker-1' && c.host === 'h1')).toMatchObject({ undone: true, after: v1 });
    // The job summary has a row per role container: the one that failed was put back, the others never moved.
    const rows: string[][] = [];
    const summary = { addHeading: () => summary, addRaw: () => summary, addDetails: () => summary, addTable: (t: unknown[][]) => (rows.push(...(t.slice(1) as string[][])), summary) };
    rolloutSummary(summary as never, { environment: 'production', target: v2, result });
    expect(rows.filter((r) => r.length === 4)).toEqual([
      ['h1', 'worker', 'app-worker-1', 'v1.0.0 → v1.0.0 (put back)'],
      ['h1', 'worker', 'app-worker-2', 'v1.0.0 → v1.0.0'],
      ['h2', 'worker', 'app-worker-1', 'v1.0.0 → v1.0.0'],
      ['h2', 'worker', 'app-worker-2', 'v1.0.0 → v1.0.0'],
    ]);
  });

  it('a web role that fails leaves the workers as they were: nothing of them moved', async () => {
    const { world, deps, plan } = setup();
    const result = await executeRollout(await plan(broken), deps);
    expect(result.ok).toBe(false);
    expect(result.roles).toBeUndefined();
    expect(world.events.some((e) => e.includes('app-worker'))).toBe(false);
    expect(world.roleServed()).toEqual({ 'h1/app-worker-1': 'v1.0.0', 'h1/app-worker-2': 'v1.0.0', 'h2/app-worker-1': 'v1.0.0', 'h2/app-worker-2': 'v1.0.0' });
  });

  it('a first deploy starts the workers; one that fails removes them and the web role', async () => {
    const { world, deps, plan } = memoryEstate(['h1'], {}, { roles: [worker({ hosts: ['h1'], count: 1 })] });
    world.rolesNotReady.add('v2.0.0');
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(false);
    expect(world.roleServed()).toEqual({});
    expect(world.served()).toEqual({});
  });

  it('a cancel while a worker starts puts back that worker only, keeps those proven, leaves nothing set aside', async () => {
    const { world, deps, plan } = setup();
    const controller = new AbortController();
    world.intercept = (call) => {
      if (call.op === 'health' && call.subject === 'app-worker-2' && call.at === 'h1') controller.abort();
    };
    const result = await executeRollout(await plan(v2), { ...deps, signal: controller.signal });
    expect(result.ok).toBe(false);
    expect(result.cancelled).toEqual({ settled: true, unsettled: [] });
    expect(world.roleServed()).toEqual({ 'h1/app-worker-1': 'v2.0.0', 'h1/app-worker-2': 'v1.0.0', 'h2/app-worker-1': 'v1.0.0', 'h2/app-worker-2': 'v1.0.0' });
    expect(world.served()).toEqual({ 'h1/master': 'v2.0.0', 'h1/backup': 'v2.0.0', 'h2/master': 'v2.0.0', 'h2/backup': 'v2.0.0' });
  });

  it('settles what a run cut short set aside before it plans: a new container not ready goes, the old one is put back and moved', async () => {
    const { world, deps, plan } = setup(v2);
    // Killed mid-move: the old worker set aside, the new one started and crashed.
    world.roleBoxes.set('h1/app-worker-1-previous', { ...world.roleBoxes.get('h1/app-worker-1')!, release: v1, running: false });
    world.roleBoxes.set('h1/app-worker-1', { role: 'worker', release: v2, running: false });
    // And one whose new container runs: kept, the old one removed.
    world.roleBoxes.set('h2/app-worker-2-previous', { role: 'worker', release: v1, running: false });
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(true);
    expect(world.events.filter((e) => e.includes('h1/app-worker-1')).slice(0, 3)).toEqual(['ready? h1/app-worker-1', 'remove h1/app-worker-1', 'restore h1/app-worker-1 v1.0.0']);
    expect(world.events.filter((e) => e.includes('h2/app-worker-2'))).toEqual(['ready? h2/app-worker-2', 'remove h2/app-worker-2-previous']);
    expect(world.roleServed()).toEqual({ 'h1/app-worker-1': 'v2.0.0', 'h1/app-worker-2': 'v2.0.0', 'h2/app-worker-1': 'v2.0.0', 'h2/app-worker-2': 'v2.0.0' });
  });

  it('the post step puts back a worker a killed run had set aside, and moves nothing', async () => {
    const { world, deps } = setup(v2);
    world.roleBoxes.set('h2/app-worker-2-previous', { ...world.roleBoxes.get('h2/app-worker-2')!, release: v1, running: false });
    world.roleBoxes.delete('h2/app-worker-2');
    await repairInterrupted({ environment: 'staging', version: 'v3.0.0', touched: ['h1'], outOfService: [], heldOn: [] }, new Map([['h1', { master: v2, backup: v2 }]]), deps);
    expect(world.roleServed()).toEqual({ 'h1/app-worker-1': 'v2.0.0', 'h1/app-worker-2': 'v2.0.0', 'h2/app-worker-1': 'v2.0.0', 'h2/app-worker-2': 'v1.0.0' });
    expect(world.events.filter((e) => e.includes('app-worker'))).toEqual(['restore h2/app-worker-2 v1.0.0']);
  });

  it('retires containers beyond the count, and a worker failure brings them back', async () => {
    const { world, deps, plan } = setup(v1, [worker({ count: 2 })]);
    deps.roles = { ...deps.roles!, roles: [worker({ count: 1 }), worker({ name: 'mailer', hosts: ['h2'], count: 1 })] };
    world.rolesNotReady.add('v2.0.0');
    const result = await executeRollout(await plan(v2), deps);
    expect(result.ok).toBe(false);
    expect(world.roleServed()).toEqual({ 'h1/app-worker-1': 'v1.0.0', 'h1/app-worker-2': 'v1.0.0', 'h2/app-worker-1': 'v1.0.0', 'h2/app-worker-2': 'v1.0.0' });
    world.rolesNotReady.clear();
    const again = await executeRollout(await plan(v2), deps);
    expect(again.ok).toBe(true);
    expect(world.roleServed()).toEqual({ 'h1/app-worker-1': 'v2.0.0', 'h2/app-worker-1': 'v2.0.0', 'h2/app-mailer-1': 'v2.0.0' });
  });
});

describe('command: check, on roles', () => {
  it('says what runs of each role on the host, and warns of containers set aside and of roles no longer configured', () => {
    const env = { roles: [{ ...worker(), command: ['work'], env: {}, secrets: [] }] } as unknown as EnvironmentConfig;
    const rows = checkRoles('h1', 'app', env, [container('app-worker-1', 'v1.0.0'), container('app-worker-2-previous', 'v1.0.0', false), container('app-mailer-1', 'v1.0.0')]);
    expect(rows.map((r) => `${r.verdict} ${r.check}: ${r.detail}`)).toEqual([
      'pass role worker: 2 wanted; running: app-worker-1 v1.0.0',
      'warn role containers set aside: app-worker-2-previous: left by a run cut short',
      'warn roles not configured: containers of mailer run here, a role no longer in roles',
    ]);
    expect(checkRoles('h3', 'app', env, [])).toEqual([]);
  });
});
