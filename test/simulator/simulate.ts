// The deterministic rollout simulator (issue 19): the action's own deploy, rollback, post step,
// journal and lock code, run over the in-memory estate (test/support/memory-estate.ts) on
// virtual time, while a seeded schedule injects faults at any await point: every call to a host,
// a load balancer or GitHub is one. fast-check draws the schedule (scenario, faults and the
// order in which concurrent calls proceed), shrinks a failing one, and prints its seed and path.
//
// One schedule is: the main step (with its faults), then the post step, or after a runner that
// died the next run (which takes the lock over), then one more deploy with every fault gone.
// The invariants (invariants.ts) are checked after the second and after the third.
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseConfig } from '../../src/config/parse.js';
import type { Config } from '../../src/config/schema.js';
import { readInputs } from '../../src/inputs.js';
import { post } from '../../src/main.js';
import type { Release, Role } from '../../src/rollout/ports.js';
import { type Box, type Call, Estate, MemoryHost, MemoryLoadBalancer, ROLES, roleOf, serverOf } from '../support/memory-estate.js';
import { entryPoints } from './entry.js';
import { configFiles, FakeGitHub, gitHubDown, newProc, procs, type Proc, useRuntime } from './runtime.js';
import { realPause, settle, VirtualTime } from './virtual-time.js';

export const IMAGE = 'registry.test/team/app';
const ENVIRONMENT = 'production';

const digestOf = (version: string) => `sha256:${createHash('sha256').update(version).digest('hex')}`;
export const releaseOf = (version: string, history?: string[]): Release => ({
  version,
  digest: digestOf(version),
  ref: `${IMAGE}@${digestOf(version)}`,
  ...(history ? { history } : {}),
});
const entry = (version: string) => `${version}@${digestOf(version)}`;

/** Release tags in the scenarios; `broken` never becomes healthy, `failing` answers 5xx. */
export const V1 = 'v1.0.0';
export const V2 = 'v2.0.0';
export const BROKEN = 'v2.1.0-broken';
export const NEXT = 'v3.0.0';
export const HAND_RUN = 'v0.9.0';

export interface Scenario {
  name: string;
  hosts: string[];
  /** Load balancers; none: no haproxy section. */
  lbs: string[];
  start: 'empty' | 'v1' | 'hand-run' | 'v2-after-v1';
  task: { deploy: string } | { rollback: string };
  /** The target answers 5xx (its health check passes): a canary must catch it. */
  failingPages?: boolean;
  canaryHold?: number;
  /** Servers an operator holds out of service before the deploy (on every load balancer). */
  held?: [server: string, state: 'maint' | 'drain'][];
  maxParallel?: number;
  /** A second run deploys the same release at the same time: one of them gets the lock. */
  racing?: boolean;
  /** The second run starts this many virtual ms after the first (0: at once). */
  rivalAfterMs?: number;
  /** lock.stale-after in seconds (300 unless given). */
  staleAfter?: number;
  /** Every operation takes this share of its usual time (a fast engine on a near host). */
  speed?: number;
  /** A worker role (two containers a host) beside the web role; `not-ready`: the target's workers never become ready. */
  roles?: 'ready' | 'not-ready';
}

export const SCENARIOS: Scenario[] = [
  { name: 'first deploy', hosts: ['h1', 'h2'], lbs: ['lb1'], start: 'empty', task: { deploy: V2 } },
  { name: 'upgrade', hosts: ['h1', 'h2'], lbs: ['lb1'], start: 'v1', task: { deploy: V2 } },
  { name: 'upgrade, two at once', hosts: ['h1', 'h2', 'h3'], lbs: ['lb1'], start: 'v1', task: { deploy: V2 }, maxParallel: 2 },
  { name: 'upgrade, two at once, fast hosts', hosts: ['h1', 'h2', 'h3'], lbs: ['lb1'], start: 'v1', task: { deploy: V2 }, maxParallel: 2, speed: 0.1 },
  { name: 'broken release', hosts: ['h1', 'h2'], lbs: ['lb1'], start: 'v1', task: { deploy: BROKEN } },
  { name: 'hand-run containers', hosts: ['h1', 'h2'], lbs: ['lb1'], start: 'hand-run', task: { deploy: V2 } },
  { name: 'hand-run containers, broken release', hosts: ['h1', 'h2'], lbs: ['lb1'], start: 'hand-run', task: { deploy: BROKEN } },
  { name: 'canary passes', hosts: ['h1', 'h2'], lbs: ['lb1'], start: 'v1', task: { deploy: V2 }, canaryHold: 20 },
  { name: 'canary fails', hosts: ['h1', 'h2'], lbs: ['lb1'], start: 'v1', task: { deploy: V2 }, canaryHold: 20, failingPages: true },
  { name: 'no haproxy section', hosts: ['h1', 'h2'], lbs: [], start: 'v1', task: { deploy: V2 } },
  { name: 'no haproxy section, broken release', hosts: ['h1'], lbs: [], start: 'v1', task: { deploy: BROKEN } },
  { name: 'two load balancers', hosts: ['h1', 'h2'], lbs: ['lb1', 'lb2'], start: 'v1', task: { deploy: V2 } },
  { name: 'operator-held servers', hosts: ['h1', 'h2'], lbs: ['lb1'], start: 'v1', task: { deploy: V2 }, held: [['h2-backup', 'maint'], ['h1-master', 'drain']] },
  { name: 'rollback to previous', hosts: ['h1', 'h2'], lbs: ['lb1'], start: 'v2-after-v1', task: { rollback: 'previous' } },
  { name: 'two runs racing for the lock', hosts: ['h1', 'h2'], lbs: ['lb1'], start: 'v1', task: { deploy: V2 }, racing: true },
  {
    name: 'a second run during a rollout longer than lock.stale-after',
    hosts: ['h1', 'h2'], lbs: ['lb1'], start: 'v1', task: { deploy: V2 }, racing: true, rivalAfterMs: 20_000, staleAfter: 15,
  },
];

/**
 * Scenarios with a worker role beside the web role (docs/roles.md). Kept out of SCENARIOS, whose
 * fixed budget and seeded bugs are measured over those: simulator.test.ts runs these on a budget
 * of their own, with the roles' invariant (invariants.ts checkRoles) on top of the others.
 */
export const ROLE_SCENARIOS: Scenario[] = [
  { name: 'worker role', hosts: ['h1', 'h2'], lbs: ['lb1'], start: 'v1', task: { deploy: V2 }, roles: 'ready' },
  { name: 'worker role, workers never ready', hosts: ['h1', 'h2'], lbs: ['lb1'], start: 'v1', task: { deploy: V2 }, roles: 'not-ready' },
];
export const WORKERS = ['app-worker-1', 'app-worker-2'];

export const FAULTS = [
  'sigint',
  'sigterm',
  'sigkill',
  'runner-death',
  'lost-host',
  'lost-lb',
  'reload',
  'counters-fail',
  'counters-slow',
  'stop-timeout',
  'rename-fails',
  'remove-fails',
  'github-5xx',
] as const;
export type FaultKind = (typeof FAULTS)[number];

/**
 * A fault and the main step's call it lands on: the n-th (counted from 0), or the first whose
 * description (`op host subject`, as the trace prints it) starts with `on`.
 */
export interface Fault {
  kind: FaultKind;
  at: number;
  on?: string;
  /** With `on`: the nth such call (1: the first). */
  nth?: number;
}

/** Virtual milliseconds each operation takes (issue 24's scale simulation takes the same hook). */
const LATENCY: Record<string, number> = {
  connect: 200, ping: 50, containers: 100, resolve: 300, pull: 3000, stop: 1000, remove: 200, rename: 100, start: 500, run: 1500,
  health: 3000, lock: 200, unlock: 200, prune: 500, 'lb-find': 50, 'lb-set': 50, 'lb-status': 50, 'lb-counters': 50,
};
const GITHUB_MS = 300;

/** The estate at one moment (the containers are the very objects). */
export interface Snapshot {
  /** host/role → the container there, and whether it ran healthy then. */
  boxes: Map<string, { box: Box; serving: boolean }>;
  /** host/role → an adopted container set aside (stopped, whole). */
  asides: Map<string, Box>;
  lbs: Map<string, Map<string, string>>;
  locks: Map<string, { runId: string }>;
  /** Hosts holding a journal (what a run is doing, kept next to its lock). */
  journals: Set<string>;
  /** host/name → what a role container (a worker) runs, and whether it runs. */
  roles: Map<string, { version: string; running: boolean }>;
}

function snapshot(world: Estate): Snapshot {
  return {
    boxes: new Map([...world.boxes].map(([k, box]) => [k, { box, serving: box.running !== false && box.healthy }])),
    asides: new Map(world.asides),
    lbs: new Map([...world.lbs].map(([lb, states]) => [lb, new Map(states)])),
    locks: new Map(world.locks),
    journals: new Set([...world.lockJournals].filter(([k, files]) => files.length > 0 && world.locks.has(k)).map(([k]) => k.split('/')[0]!)),
    roles: new Map([...world.roleBoxes].map(([k, b]) => [k, { version: b.release.version, running: b.running }])),
  };
}

class Stuck extends Error {
  override name = 'Stuck';
}

/** What happened in one schedule, for the invariants. */
export interface Run {
  scenario: Scenario;
  faults: Fault[];
  world: Estate;
  github: FakeGitHub;
  /** Each host's containers before the main step (the very objects). */
  before: Map<string, Partial<Record<Role, Box>>>;
  /** Each host's releases right after the main step. */
  afterMain: Map<string, Partial<Record<Role, string>>>;
  main: Proc;
  rival?: Proc;
  second?: Proc;
  final?: Proc;
  target?: string;
  /** The world at the end of the second phase, as the invariants read it. */
  phase2: Snapshot;
  unreachableInPhase2: Set<string>;
  /** Hosts and load balancers cut off when the main step ended: what it could not know. */
  unreachableAfterMain: Set<string>;
  violationsBeforeFinal: number;
  /** Faults that fired. */
  fired: Fault[];
  /** Calls the main step made (the points a fault may land on). */
  mainCalls: number;
  trace: string[];
  stuck?: string;
  /** Locks a run took over while the run holding them was alive. */
  locksTakenFromLive: string[];
}

const time = new VirtualTime();
/** Where virtual time starts: the trace counts from it. */
const EPOCH = Date.UTC(2026, 0, 1);
let installed = 0;

/** Virtual time replaces the real timers while a test runs schedules. */
export function installTime(): () => void {
  if (installed++ === 0) time.install();
  return () => {
    if (--installed === 0) time.uninstall();
  };
}

const configs = new Map<string, { config: Config; path: string }>();
const configDir = mkdtempSync(join(tmpdir(), 'deploy-sim-'));

function configFor(scenario: Scenario): { config: Config; path: string } {
  const known = configs.get(scenario.name);
  if (known) return known;
  const lines = [
    'app: app',
    `image: ${IMAGE}`,
    'container: { port: 3000, stop-timeout: 30 }',
    'health: { timeout: 20, interval: 1 }',
    'environments:',
    `  ${ENVIRONMENT}:`,
    `    hosts: [${scenario.hosts.join(', ')}]`,
    `    max-parallel: ${scenario.maxParallel ?? 1}`,
    `    lock: { takeover: true, stale-after: ${scenario.staleAfter ?? 300} }`,
    ...(scenario.lbs.length ? [`    haproxy: { hosts: [${scenario.lbs.join(', ')}], backend: app, drain-timeout: 5 }`] : []),
    ...(scenario.canaryHold ? [`    canary: { hold: ${scenario.canaryHold}, min-requests: 20 }`] : []),
    ...(scenario.roles ? [`roles: { worker: { command: work, count: ${WORKERS.length}, stop-timeout: 10 } }`] : []),
  ];
  const text = lines.join('\n') + '\n';
  const path = join(configDir, `${scenario.name.replace(/[^a-z0-9]+/g, '-')}.yml`);
  writeFileSync(path, text);
  configFiles.set(path, text);
  const made = { config: parseConfig('deploy.yml', text), path };
  configs.set(scenario.name, made);
  return made;
}

/** What the runner gives the step as inputs and GITHUB_* variables. */
function inputsFor(path: string, task: Scenario['task']): Record<string, string> {
  return {
    command: 'deploy' in task ? 'deploy' : 'rollback',
    config: path,
    environment: ENVIRONMENT,
    version: 'deploy' in task ? task.deploy : task.rollback,
    'ssh-private-key': 'simulated key',
    'ssh-known-hosts': 'h1 ssh-ed25519 AAAA',
    'github-token': 'simulated token',
  };
}

function runnerEnv(proc: Proc): void {
  process.env.GITHUB_REPOSITORY = 'clay/app';
  process.env.GITHUB_RUN_ID = proc.runId;
  process.env.GITHUB_RUN_ATTEMPT = proc.attempt;
  process.env.GITHUB_REF = '';
  process.env.GITHUB_STEP_SUMMARY = '/dev/null';
}

/** A deliberate defect in the code under test, for showing that an invariant catches it. */
export type Sabotage = (world: Estate) => void;

interface Armed {
  op: string;
  effect: 'fail' | 'slow' | 'whole-timeout' | 'github-down';
  left: number;
}

export class Simulation {
  readonly world: Estate;
  readonly github = new FakeGitHub();
  private readonly armed: Armed[] = [];
  private mainCalls = 0;
  private main?: Proc;
  private readonly fired: Fault[] = [];
  private readonly trace: string[] = [];
  private readonly locksTakenFromLive: string[] = [];
  private readonly runs = new Map<string, Proc>();

  constructor(
    readonly scenario: Scenario,
    readonly faults: Fault[],
    private readonly scheduler?: fc.Scheduler,
    sabotage?: Sabotage,
  ) {
    time.reset();
    const world = new Estate(scenario.hosts, scenario.lbs);
    this.world = world;
    world.clock = { now: () => time.now(), sleep: (ms, signal) => time.sleep(ms, signal) };
    world.latency = (call) => (LATENCY[call.op] ?? 0) * (scenario.speed ?? 1);
    world.intercept = (call) => this.gate(call);
    for (const v of [V1, V2, BROKEN, NEXT]) world.registry.set(v, digestOf(v));
    if (scenario.failingPages) world.failingPages.add(V2);
    if (scenario.roles === 'not-ready') world.rolesNotReady.add(V2);
    for (const host of scenario.roles ? scenario.hosts : []) {
      for (const name of WORKERS) world.roleBoxes.set(`${host}/${name}`, { role: 'worker', release: releaseOf(V1, [entry(V1)]), running: true });
    }
    for (const host of scenario.hosts) for (const role of ROLES) {
      const box = startBox(scenario.start, role);
      if (box) world.boxes.set(world.key(host, role), box);
    }
    for (const [server, state] of scenario.held ?? []) {
      for (const lb of scenario.lbs) {
        world.lbs.get(lb)!.set(server, state);
        world.lbConfig.get(lb)!.set(server, state);
      }
    }
    sabotage?.(world);
    world.check('start');
  }

  /** Every outside call of every run passes here: faults land, the schedule picks who goes on. */
  async gate(call: Call): Promise<void> {
    const proc = procs.getStore();
    if (proc?.dead) return new Promise<void>(() => undefined);
    if (call.at === 'github') await time.sleep(GITHUB_MS);
    const label = `${call.op} ${call.at}${call.subject ? ` ${call.subject}` : ''}`;
    const who = `${proc?.name ?? '?'} ${label}`;
    if (proc && proc === this.main) {
      const n = this.mainCalls++;
      for (const fault of this.faults) {
        if (fault.on === undefined ? fault.at === n : this.nthMatch(fault, label)) this.inject(fault, call, proc);
      }
    }
    if (call.op === 'unlock' && proc) {
      const held = this.world.locks.get(`${call.at}/${call.subject}`);
      const holder = held && this.runs.get(held.runId);
      if (held && held.runId !== proc.runId && holder && !holder.dead && !holder.done) {
        this.locksTakenFromLive.push(`${proc.name} took the lock of ${holder.name} (run ${held.runId}), which was still running`);
      }
    }
    this.trace.push(`${time.now() - EPOCH} ${who}`);
    if (this.scheduler) await this.scheduler.schedule(Promise.resolve(), who);
    if (procs.getStore()?.dead) return new Promise<void>(() => undefined);
    await this.applyArmed(call);
    if (call.at === 'github' && this.world.unreachable.has('github')) throw gitHubDown(call.op);
  }

  private readonly seen = new Map<Fault, number>();
  private nthMatch(fault: Fault, label: string): boolean {
    if (label !== fault.on && !label.startsWith(`${fault.on} `)) return false;
    const count = (this.seen.get(fault) ?? 0) + 1;
    this.seen.set(fault, count);
    return count === (fault.nth ?? 1);
  }

  private inject(fault: Fault, call: Call, main: Proc): void {
    this.fired.push(fault);
    const { world } = this;
    const host = this.scenario.hosts.includes(call.at) ? call.at : this.scenario.hosts[0]!;
    const lb = this.scenario.lbs.includes(call.at) ? call.at : this.scenario.lbs[0];
    const kill = (afterMs: number) => void time.sleep(afterMs).then(() => (main.dead = true));
    switch (fault.kind) {
      case 'sigint':
        main.controller.abort();
        kill(10_000);
        break;
      case 'sigterm':
        main.controller.abort();
        kill(2_500);
        break;
      case 'sigkill':
      case 'runner-death':
        main.dead = true;
        break;
      case 'lost-host':
        world.unreachable.add(host);
        break;
      case 'lost-lb':
        if (lb) world.unreachable.add(lb);
        break;
      case 'reload':
        if (lb) world.reload(lb);
        break;
      case 'counters-fail':
        this.armed.push({ op: 'lb-counters', effect: 'fail', left: 1 });
        break;
      case 'counters-slow':
        this.armed.push({ op: 'lb-counters', effect: 'slow', left: 1 });
        break;
      case 'stop-timeout':
        this.armed.push({ op: 'stop', effect: 'whole-timeout', left: 1 });
        break;
      case 'rename-fails':
        this.armed.push({ op: 'rename', effect: 'fail', left: 1 });
        break;
      case 'remove-fails':
        this.armed.push({ op: 'remove', effect: 'fail', left: 1 });
        break;
      case 'github-5xx':
        this.armed.push({ op: 'github', effect: 'github-down', left: 3 });
        break;
    }
  }

  private async applyArmed(call: Call): Promise<void> {
    for (const armed of this.armed) {
      const matches = armed.op === 'github' ? call.at === 'github' : armed.op === call.op;
      if (!matches || armed.left === 0) continue;
      armed.left--;
      switch (armed.effect) {
        case 'fail':
          throw new Error(`${call.at}: ${call.op}${call.subject ? ` ${call.subject}` : ''} failed (simulated)`);
        case 'github-down':
          throw gitHubDown(call.op);
        case 'slow':
          await time.sleep(1_500);
          break;
        case 'whole-timeout': {
          const box = this.world.boxes.get(this.world.key(call.at, roleOf(call.subject ?? 'app')));
          if (box) box.ignoresSigterm = true;
          break;
        }
      }
    }
  }

  /** Runs until `done`, moving virtual time only when no call can go on. */
  private async drive(done: () => boolean, what: string): Promise<void> {
    const limit = time.now() + 4 * 3600_000;
    let waits = 0;
    for (;;) {
      await settle();
      if (done()) return;
      if (this.scheduler && this.scheduler.count() > 0) {
        // settle() let every chain that could move do so: the calls waiting are all there, and
        // one is picked at once (waitNext(1) would first spin 50 microtask ticks per call, for the
        // same picks: the traces of 1,500 schedules hashed the same; the budget used 15 % more CPU).
        await this.scheduler.waitOne();
        continue;
      }
      if (time.now() > limit) throw new Stuck(`${what} still running after 4 hours of virtual time`);
      if (time.fire()) continue;
      // Nothing virtual can move: real I/O (a file read) may still be under way.
      if (++waits > 50) throw new Stuck(`${what} waits for something that never comes (no call pending, no timer)`);
      await realPause(1);
      continue;
    }
  }

  private async step(proc: Proc, body: () => Promise<void>): Promise<void> {
    this.github.ended.set(proc.runId, false);
    if (!proc.name.startsWith('post')) this.runs.set(proc.runId, proc);
    void procs.run(proc, async () => {
      try {
        await body();
      } catch (error) {
        proc.failed = error instanceof Error ? error.message : String(error);
      } finally {
        proc.done = true;
      }
    });
  }

  private mainStep(proc: Proc, config: Config, path: string, task: Scenario['task']): Promise<void> {
    proc.inputs = inputsFor(path, task);
    return this.step(proc, async () => {
      runnerEnv(proc);
      const inputs = readInputs();
      const handler = 'deploy' in task ? entryPoints.deploy : entryPoints.rollback;
      const outputs = await handler(inputs, config, proc.controller.signal);
      for (const [name, value] of Object.entries(outputs)) proc.outputs.set(name, value);
    });
  }

  private postStep(of: Proc, path: string, task: Scenario['task']): Proc {
    const proc = newProc(`post of ${of.name}`, of.runId, inputsFor(path, task), of.attempt);
    proc.state = new Map(of.state);
    void this.step(proc, async () => {
      runnerEnv(proc);
      await post();
    });
    return proc;
  }

  async run(): Promise<Run> {
    const { scenario, world } = this;
    const { config, path } = configFor(scenario);
    useRuntime({
      gate: (call) => this.gate(call),
      github: this.github,
      host: async (name) => {
        await world.enter({ at: name, op: 'connect' });
        return new MemoryHost(name, world);
      },
      loadBalancer: async (name) => {
        await world.enter({ at: name, op: 'connect' });
        return new MemoryLoadBalancer(name, world);
      },
    });
    const before = new Map(scenario.hosts.map((h) => [h, Object.fromEntries(ROLES.flatMap((r) => (world.boxes.get(world.key(h, r)) ? [[r, world.boxes.get(world.key(h, r))!]] : [])))]));
    const main = newProc('main', '1001');
    this.main = main;
    const result: Run = {
      scenario,
      faults: this.faults,
      world,
      github: this.github,
      before,
      afterMain: new Map(),
      main,
      phase2: snapshot(world),
      unreachableInPhase2: new Set(),
      unreachableAfterMain: new Set(),
      violationsBeforeFinal: 0,
      fired: this.fired,
      mainCalls: 0,
      trace: this.trace,
      locksTakenFromLive: this.locksTakenFromLive,
    };
    try {
      // 1. The main step, faults landing on its calls; a rival run at the same time.
      await this.mainStep(main, config, path, scenario.task);
      if (scenario.racing) {
        const rival = newProc('rival', '1002');
        result.rival = rival;
        if (scenario.rivalAfterMs) void time.sleep(scenario.rivalAfterMs).then(() => this.mainStep(rival, config, path, scenario.task));
        else await this.mainStep(rival, config, path, scenario.task);
      }
      const over = (p?: Proc) => !p || p.done || p.dead;
      await this.drive(() => over(main) && over(result.rival), 'the main step');
      result.mainCalls = this.mainCalls;
      result.afterMain = this.releases();
      result.unreachableAfterMain = new Set(world.unreachable);
      // 2. The post step; after a runner that died, there is none: the next run takes over.
      const runnerDied = main.dead && this.fired.some((f) => f.kind === 'runner-death');
      this.github.ended.set(main.runId, main.dead);
      if (result.rival) this.github.ended.set(result.rival.runId, true);
      if (runnerDied) {
        this.github.ended.set(main.runId, true);
        result.second = newProc('next run', '1003');
        // `previous` after a rollback half done names another release (see the README's
        // simulator findings): the next run asks for the release the dead one was rolling back to.
        const dead = [...world.locks.values()].find((l) => l.runId === main.runId);
        const task = 'rollback' in scenario.task && dead ? { rollback: dead.version } : scenario.task;
        await this.mainStep(result.second, config, path, task);
      } else {
        result.second = this.postStep(main, path, scenario.task);
      }
      const rivalPost = result.rival ? this.postStep(result.rival, path, scenario.task) : undefined;
      await this.drive(() => over(result.second) && over(rivalPost), runnerDied ? 'the next run' : 'the post step');
      this.github.ended.set(main.runId, true);
      // A stop the engine carries on without its caller (a killed runner's) ends when it ends.
      const stopping = () => [...world.boxes.values(), ...world.asides.values()].some((b) => b.stopping);
      await this.drive(() => !stopping(), 'the engines\' stops');
      result.unreachableInPhase2 = new Set(world.unreachable);
      result.phase2 = snapshot(world);
      result.violationsBeforeFinal = world.violations.length;
      result.target = this.target(main, result.second);
      // 3. Every fault gone, one more deploy.
      world.unreachable.clear();
      this.armed.length = 0;
      this.github.ended.set('1003', true);
      result.final = newProc('final', '1004');
      await this.mainStep(result.final, config, path, { deploy: NEXT });
      await this.drive(() => over(result.final), 'the next deploy');
    } catch (error) {
      if (!(error instanceof Stuck)) throw error;
      result.stuck = error.message;
    } finally {
      // A run killed mid-call never takes another step: let its promises go.
      for (const proc of [main, result.rival, result.second, result.final]) if (proc && !proc.done) proc.dead = true;
      useRuntime(undefined);
    }
    return result;
  }

  /** The release a run deployed (its output, or what its log names). */
  private target(...runs: (Proc | undefined)[]): string | undefined {
    const { task } = this.scenario;
    if ('deploy' in task) return task.deploy;
    for (const run of runs) {
      const version = run?.outputs.get('version');
      if (version) return version;
    }
    return V1;
  }

  private releases(): Map<string, Partial<Record<Role, string>>> {
    const { world } = this;
    return new Map(
      this.scenario.hosts.map((h) => [
        h,
        Object.fromEntries(ROLES.flatMap((r) => {
          const box = world.boxes.get(world.key(h, r));
          return box && box.running !== false ? [[r, box.release.version]] : [];
        })),
      ]),
    );
  }
}

function startBox(start: Scenario['start'], role: Role): Box | undefined {
  switch (start) {
    case 'empty':
      return undefined;
    case 'v1':
      return { release: releaseOf(V1, [entry(V1)]), healthy: true };
    case 'v2-after-v1':
      return { release: releaseOf(V2, [entry(V1), entry(V2)]), healthy: true };
    case 'hand-run':
      // Started by hand (docker run), no labels; its app ignores SIGTERM.
      return { release: { version: HAND_RUN, ref: `${IMAGE}:${HAND_RUN}`, digest: digestOf(HAND_RUN), adopted: true }, healthy: true, ignoresSigterm: role === 'master' };
  }
}

export { serverOf };
