// The deploy pipeline: one release onto one environment, deploy and rollback alike (so a
// rollback drops no request either), stage after stage, each handing the next its typed result:
//
//   gates       approval: may this run touch the environment at all
//   pre-flight  every host and load balancer connected (Connected)
//   target      what runs and ran, and the release that follows (Chosen), pulled on every host
//   lock        the deploy lock (TakenLock) and the journal kept next to it (JournalWriter),
//               refreshed while the run lives; what a run whose stale lock was taken over left
//               is finished first (the interrupted-run repair); then the target chosen again
//   gates       promotion: the very image the other environment runs
//   pre-flight  the servers to drive (Servers), HTTP counters for a canary, the receipt's
//               baseline, the deployment record
//   release     the release command (migrations), once, in a one-off container of the new
//               image (ReleaseCommandReport); a failure here still changes no container
//   rollOut     the plan executed, rolled back or settled (RolledOut)
//   finish      summary; the job's failure, or the success record and the image prune; the lock
//
// and the post step's, for a run cut short (finishCutShort): pre-flight → the interrupted-run
// repair → lock → gates (the record). Every check that can refuse runs before the first
// container changes.
import * as core from '@actions/core';
import type { Config, EnvironmentConfig } from '../config/schema.js';
import type { GitHubApi } from '../drivers/github.js';
import { readSecretValues, type Inputs } from '../inputs.js';
import { ReceiptRecorder } from '../receipt/recorder.js';
import { renderReceipt } from '../receipt/render.js';
import { preformatted, rolloutSummary, writeSummary } from '../report/summary.js';
import { sameRelease, type HostTarget } from '../rollout/plan.js';
import type { Release } from '../rollout/ports.js';
import { outcomeFailure, tidyUp } from './finish.js';
import { GitHubDeployment, checkApproval, checkPromotionGate, gitHub, trustedHistory } from './gates.js';
import { hostsToSettle, repairInterrupted, type Settled } from './interrupted.js';
import { JOURNAL_STATE, JournalWriter, unfinished, type Journal } from './journal.js';
import { releaseLeftoverLock, releaseLock, takeLock, type HeldLock } from './lock.js';
import { lockHost } from '../rollout/lock.js';
import { canaryRefusal, connect, findServers, pinRelease, PreflightError, pullEverywhere, readHosts, type Connected, type Servers } from './preflight.js';
import { runReleaseCommand, runsReleaseCommand } from './release-command.js';
import { roleSecretsKey, rollOut, rolloutDeps } from './rollout.js';
import { settleLeftovers } from '../rollout/roles.js';
import { historyFor, runningVersion, targetChanged, wantedRelease, type EnvironmentState, type RolloutRequest, type WantedRelease } from './target.js';

/** Pre-flight's look at whether the canary has HTTP counters to judge: any answer will do. */
const CANARY_CHECK_TIMEOUT_MS = 10_000;

export class DeployFailed extends Error {
  override name = 'DeployFailed';
}

/** What this run holds: the failure path and the end of the run must see it, however far pre-flight got. */
interface Held {
  lock?: HeldLock;
  /** Kept from the moment the lock is held: in the step state and next to the lock. */
  journal?: JournalWriter;
  /** Refreshes the journal's sign of life while the run holds the lock. */
  heartbeat?: NodeJS.Timeout;
  record?: GitHubDeployment;
  /** The repair of what a run whose lock was taken over left failed: its lock and journal stay. */
  repairUnfinished?: boolean;
  /**
   * The load balancers' counters for the receipt, read from pre-flight on (with a haproxy
   * section); every second once the rollout starts, until stopped, whatever happens.
   */
  recorder?: ReceiptRecorder;
}

/** The target stage's result: what runs and ran (read under the lock, the second time), and the release. */
interface Chosen {
  state: EnvironmentState;
  wanted: WantedRelease;
  target: Release;
}

/** Pre-flight's result: all the rollout plans from. */
interface Prepared extends Chosen {
  lb?: Servers;
}

export async function runPipeline(
  inputs: Inputs,
  config: Config,
  env: EnvironmentConfig,
  request: RolloutRequest,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  const secrets = readSecretValues(env.container.secrets, `environments.${env.name}.container.secrets`);
  // A role's secret missing from the step's env fails here, before any host is touched.
  for (const role of env.roles) readSecretValues(role.secrets, roleSecretsKey(env, role.name));
  const github = gitHub(inputs);
  const started = performance.now();
  const balancers = env.haproxy?.hosts ?? [];
  const connected = await core.group(`Connect to ${env.name} (${env.hosts.length} hosts${balancers.length ? ` and ${balancers.join(', ')}` : ''})`, () =>
    connectOnceApproved(inputs, config, env, github),
  );
  const held: Held = {};
  let succeeded = false;
  // Until the hosts are known to be settled, the post step must finish what this run started.
  let leftForPostStep = false;
  try {
    const prepared = await core.group('Pre-flight', () => preFlight(inputs, config, connected, request, github, held, secrets, signal));
    core.info(`Pre-flight took ${((performance.now() - started) / 1000).toFixed(2)} s (connections, gates, reads, pulls, lock): ${runsReleaseCommand(env, request.task) ? 'the release command runs now' : 'the first container changes now'}`);
    const release = await runReleaseCommand({ inputs, config, connected, target: prepared.target, task: request.task, secrets }, signal);
    const { record } = held;
    const journal = held.journal!;
    leftForPostStep = true;
    const deps = { ...rolloutDeps(inputs, config, env, connected, prepared.lb, secrets), ...(signal ? { signal } : {}), journal };
    const { result, receipt } = await rollOut(env, prepared, deps, held.recorder, release);
    // A cancel not settled in time, or a rollback that could not put every server back.
    // ... or a role container that could not be put back (its set-aside one is settled there).
    leftForPostStep = (result.cancelled !== undefined && !result.cancelled.settled) || journal.pending() || (result.roles?.undoErrors.length ?? 0) > 0;
    await writeSummary((s) => {
      rolloutSummary(s, { environment: env.name, target: prepared.target, result });
      if (receipt) s.addRaw(renderReceipt(receipt), true);
    });
    const failure = outcomeFailure(env, prepared.target, result);
    if (failure && leftForPostStep) await journal.ended(result.cancelled ? 'cancelled' : 'failed', failure.split('\n')[0]!);
    if (failure) throw new DeployFailed(failure);
    succeeded = true;
    await tidyUp(config, env, connected, prepared, record, receipt);
    return {
      version: prepared.target.version,
      image: config.image,
      digest: prepared.target.digest,
      'image-ref': prepared.target.ref,
      'previous-version': runningVersion(prepared.state.current),
      ...(record ? { 'deployment-id': String(record.id) } : {}),
    };
  } catch (error) {
    // After a rollout that succeeded nothing may turn the record into a failure.
    if (!succeeded) {
      await held.record?.set('failure', (error instanceof Error ? error.message : String(error)).split('\n')[0]!).catch((e: Error) =>
        core.warning(`Could not mark the deployment failed: ${e.message}`),
      );
    }
    throw error;
  } finally {
    held.recorder?.stop();
    clearInterval(held.heartbeat);
    // A lock over hosts left unsettled is the post step's to release, once it has settled them.
    const unsettled = leftForPostStep || held.repairUnfinished;
    if (!unsettled) held.journal?.clear();
    if (held.lock && !unsettled) await releaseLock(connected, held.lock);
    connected.dispose();
  }
}

/** How often a run holding the lock refreshes its sign of life: well within lock.stale-after. */
const heartbeatMs = (env: EnvironmentConfig) => Math.max(5, Math.min(60, env.lock['stale-after'] / 4)) * 1000;

/**
 * The connections, opened while GitHub is asked whether this run was approved: nothing is read
 * from a host before the answer, and a refusal closes them.
 */
async function connectOnceApproved(inputs: Inputs, config: Config, env: EnvironmentConfig, github: GitHubApi | undefined): Promise<Connected> {
  const [approval, connection] = await Promise.allSettled([checkApproval(github, env, inputs.run.runId, inputs.run.runAttempt), connect(inputs, config, env)]);
  if (approval.status === 'rejected') {
    if (connection.status === 'fulfilled') connection.value.dispose();
    throw approval.reason;
  }
  if (connection.status === 'rejected') throw connection.reason;
  return connection.value;
}

/** Waits for every one of `work` (none is left running), then fails with the first failure. */
async function allOf<T extends unknown[]>(...work: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(work);
  const failed = settled.find((s) => s.status === 'rejected');
  if (failed) throw (failed as PromiseRejectedResult).reason;
  return settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as T;
}

/**
 * Everything before the first container changes: the release, pulled everywhere, the lock, the
 * gates, the servers to drive, the receipt's first reading and the deployment record. What it
 * takes (lock, recorder, record) goes into `held` as soon as it is taken, so that a refusal
 * half-way still releases, stops and records it. What does not wait on another runs alongside
 * it: the lock waits for its own host's pull only; the other pulls, the promotion gate, finding
 * the servers and the receipt's first reading run together; the record comes last, once
 * nothing can refuse.
 */
async function preFlight(
  inputs: Inputs,
  config: Config,
  connected: Connected,
  request: RolloutRequest,
  github: GitHubApi | undefined,
  held: Held,
  secrets: Record<string, string>,
  signal?: AbortSignal,
): Promise<Prepared> {
  const env = connected.env;
  const stopIfCancelled = () => {
    if (signal?.aborted) throw new DeployFailed(`cancelled before any container changed in ${env.name}`);
  };
  // A first reading picks what to pull: the lock is a container created from that image,
  // which must be on its host first, and pulls change no container.
  const guess = await choose(config, connected, request, github);
  await showTarget(env, guess, request);
  const pulls = pullEverywhere(connected, guess.target);
  try {
    // A failed pull on the lock's host: every host's failure, named together.
    await pulls.of(lockHost(env.hosts)).catch(() => pulls.all());
    stopIfCancelled();
    const taken = await takeLock(inputs, config, connected, guess.target, github, signal);
    held.lock = taken.held;
    const fresh = (): Journal => ({ environment: env.name, version: guess.target.version, touched: [], outOfService: [], heldOn: [] });
    const store = { host: connected.hosts.get(taken.held.host)!, lock: taken.held.name, warn: (line: string) => core.warning(line) };
    const journal = (held.journal = new JournalWriter(taken.leftBehind ? { ...taken.leftBehind, environment: env.name } : fresh(), store));
    await journal.save();
    held.heartbeat = setInterval(() => void journal.beat(), heartbeatMs(env));
    held.heartbeat.unref();
    stopIfCancelled();
    if (taken.leftBehind) {
      // The run whose lock this is now died mid-rollout: what it left is finished first, from
      // the journal it kept next to the lock, before anything is planned.
      await core.group('Finish what the run whose lock was taken over left', () =>
        finishLeftBehind(inputs, config, connected, taken.leftBehind!, journal, secrets).catch((error: Error) => {
          // Half-repaired hosts stay explained: the lock stays, with the journal the repair kept
          // true, for this job's post step, the next deploy (taking it over) or `command: unlock`.
          held.repairUnfinished = true;
          const left = journal.snapshot();
          throw new PreflightError(
            `could not finish what the run whose lock was taken over left: ${error.message}. ` +
              `Left on ${hostsToSettle(left).join(', ')}: ${unfinished(left).join('; ') || 'not yet settled'}. ` +
              `The deploy lock stays on ${taken.held.host} with its journal: this job's post step tries again, and the next deploy (lock.takeover: true) finishes it first`,
          );
        }),
      );
      await journal.restart(fresh());
      stopIfCancelled();
    }
    // Another run may have finished in between: everything the plan depends on is read again.
    const chosen = await choose(config, connected, request, github, guess);
    const changed = targetChanged(request, guess.target, chosen.target, env.name);
    if (changed) throw new PreflightError(changed);
    // What a dead run whose lock was taken over left is finished: what is still out is the operator's.
    const tookOverLock = taken.held.tookOver && !taken.leftBehind;
    const [, lb] = await allOf(
      (async () => {
        await pulls.all();
        if (chosen.target.digest !== guess.target.digest) await pullEverywhere(connected, chosen.target).all();
      })(),
      (async () => {
        const lb = await findServers(connected, { tookOverLock, running: chosen.state.current });
        if (lb && env.canary) {
          const refusal = canaryRefusal(env, await lb.driver.counters(CANARY_CHECK_TIMEOUT_MS));
          if (refusal) throw new PreflightError(refusal);
        }
        // The receipt's baseline runs from here to the first change.
        if (lb) {
          held.recorder = new ReceiptRecorder(lb.driver, lb.servers, (host, role) => chosen.state.current.get(host)?.[role], undefined, undefined, lb.slots);
          await held.recorder.open();
        }
        return lb;
      })(),
      request.task === 'deploy' || chosen.wanted.neverRan ? checkPromotionGate(github, env, chosen.target, inputs.run) : Promise.resolve(),
    );
    await journal.note({ version: chosen.target.version, heldOn: lb?.heldOn ?? [] });
    held.record = await GitHubDeployment.open(github, inputs, env, { ...chosen.target, image: config.image }, request.task, chosen.wanted.neverRan);
    if (held.record) await journal.note({ deploymentId: held.record.id });
    stopIfCancelled();
    return { ...chosen, ...(lb ? { lb } : {}) };
  } finally {
    // Nothing may still be pulling when the connections close.
    await pulls.all().catch(() => undefined);
  }
}

/**
 * The target stage: what runs and ran, and the release that follows from it, pinned to its
 * digest. Read again under the lock (`before`: the first reading), the same tag and digest are
 * not asked of the registry twice: the lock guards the hosts, not the registry.
 */
async function choose(config: Config, connected: Connected, request: RolloutRequest, github: GitHubApi | undefined, before?: Chosen): Promise<Chosen> {
  const env = connected.env;
  // Only a rollback looks back; a deploy's target is its tag.
  const [current, records] = await allOf(
    readHosts(connected, config.app),
    request.task === 'rollback' && github ? trustedHistory(github, env.name, config.image) : Promise.resolve(undefined),
  );
  const state: EnvironmentState = { environment: env.name, current, ...(records ? { records } : {}) };
  const wanted = wantedRelease(request, state);
  const same = before && before.wanted.tag === wanted.tag && before.wanted.digest === wanted.digest;
  const pinned = same
    ? { version: before.target.version, digest: before.target.digest, ref: before.target.ref }
    : await pinRelease(connected, config.image, wanted.tag, wanted.digest, wanted.pinnedBy);
  const target: Release = { ...pinned, history: historyFor(state, pinned, request.task) };
  return { state, wanted, target };
}

/**
 * The target, as first resolved: in the log, and for a rollback in the job summary too, with
 * where it comes from and where GitHub's records disagree, before any host changes.
 */
async function showTarget(env: EnvironmentConfig, { wanted, target }: Chosen, request: RolloutRequest): Promise<void> {
  core.info(`Target: ${wanted.reason}`);
  for (const disagreement of wanted.disagreements ?? []) core.warning(disagreement);
  if (request.task !== 'rollback') return;
  const lines = [
    `${request.version} resolved to ${target.version} (${target.digest})`,
    `from: ${wanted.source ?? wanted.reason}`,
    ...(wanted.disagreements?.length ? wanted.disagreements.map((d) => `disagreeing: ${d}`) : ["GitHub's deployment records: no disagreement"]),
  ];
  core.info(`Rollback target, before any host changes:\n  ${lines.join('\n  ')}`);
  await writeSummary((s) => s.addHeading(`Rollback target in ${env.name}`, 3).addRaw(preformatted(lines.join('\n'))));
}

/**
 * A run that took over the stale lock of a run whose runner died: that run's journal, read from
 * the lock, says which hosts it left half-way, which servers it took out (the rest out of
 * service stay the operator's) and which adopted containers it set aside; the interrupted-run
 * repair finishes them, under this run's lock, with `journal` kept true as it goes.
 */
async function finishLeftBehind(inputs: Inputs, config: Config, connected: Connected, left: Journal, journal: JournalWriter, secrets: Record<string, string>): Promise<void> {
  const current = await readHosts(connected, config.app, { repairing: true });
  const lb = await findServers(connected, { tookOverLock: true, leftBy: left });
  await repairInterrupted(left, current, { ...rolloutDeps(inputs, config, connected.env, connected, lb, secrets), journal });
}

/**
 * The post step: a run cut short (the job cancelled, the runner killed) leaves a journal, its
 * lock, or both. From the journal, the interrupted-run repair settles the hosts it names; then
 * the lock goes and the record says what became of each host. A repair that fails leaves the
 * lock, which the next deploy reports as stale (its run has ended) and may take over, finishing
 * from the journal kept in it.
 */
export async function finishCutShort(inputs: Inputs, config: Config, saved: { journal: string; lock: string }): Promise<void> {
  const lock = saved.lock ? (JSON.parse(saved.lock) as HeldLock) : undefined;
  if (!saved.journal) {
    const env = lock && Object.values(config.environments).find((e) => e.hosts.includes(lock.host));
    if (env) await releaseOnly(inputs, config, env, lock, { settleRoles: false });
    return;
  }
  const journal = JSON.parse(saved.journal) as Journal;
  const env = config.environments[journal.environment];
  if (!env) return;
  let settled: Settled = new Map();
  let after: Map<string, HostTarget> = new Map();
  try {
    if (hostsToSettle(journal).length === 0) {
      // The run changed no web container (every change is in the step state before it is
      // made): killed between taking its lock and its first change, perhaps before the journal
      // reached the lock. The lock is left, and, with roles, whatever a role's move (not
      // journalled per host) set aside: no load balancer need answer.
      await releaseOnly(inputs, config, env, lock, { settleRoles: true });
    } else {
      ({ settled, after } = await settleCutShort(inputs, config, env, journal, lock));
    }
  } catch (error) {
    // A post step that cannot finish still closes the run's record, saying what is left (the
    // journal as the repair left it); never in_progress for ever.
    await runRecord(inputs, env, journal)
      .then((record) => record?.closeIfOpen('failure', unfinishedRecord(journal, error, lock !== undefined)))
      .catch((e: Error) => core.warning(`Could not mark the deployment failed: ${e.message}`));
    throw error;
  }
  // The main step's own last word (its failure, its cancel) is the more precise: a record it
  // closed stays. Still open (the runner died mid-step), it is closed here, as a failure
  // whatever the post step kept: the job did not succeed, and a record that says success is
  // what promotion trusts.
  await (await runRecord(inputs, env, journal))?.closeIfOpen('failure', postStepRecord(journal, settled, after));
}

/** The post step's repair of the hosts a cut-short run's journal names, then its lock released: what each settled host runs, and every host after. */
async function settleCutShort(inputs: Inputs, config: Config, env: EnvironmentConfig, journal: Journal, lock: HeldLock | undefined): Promise<{ settled: Settled; after: Map<string, HostTarget> }> {
  const connected = await connect(inputs, config, env);
  try {
    const current = await readHosts(connected, config.app, { repairing: true });
    const lb = await findServers(connected, { tookOverLock: false, leftBy: journal });
    const secrets = readSecretValues(env.container.secrets, `environments.${env.name}.container.secrets`);
    const lockHost = lock && connected.hosts.get(lock.host);
    const writer = new JournalWriter(journal, lockHost ? { host: lockHost, lock: lock.name, warn: (line) => core.warning(line) } : undefined);
    const settled = await repairInterrupted(journal, current, { ...rolloutDeps(inputs, config, env, connected, lb, secrets), journal: writer });
    writer.clear();
    if (lock) await releaseLeftoverLock(connected, lock, inputs.run.runAttempt);
    return { settled, after: new Map([...current, ...settled]) };
  } finally {
    connected.dispose();
  }
}

/** The record of the run whose post step this is, when GitHub is reachable (GitHubDeployment.ofRun). */
async function runRecord(inputs: Inputs, env: EnvironmentConfig, journal: Journal): Promise<GitHubDeployment | undefined> {
  const github = gitHub(inputs);
  return github && GitHubDeployment.ofRun(github, inputs, env, journal.deploymentId);
}

/** How the main step ended, as the post step's record opens. */
const endedAs = (journal: Journal) =>
  journal.ended?.how === 'cancelled' ? 'Cancelled' : journal.ended?.how === 'failed' ? 'Failed, rollback unfinished' : 'Runner stopped mid-rollout';

/** The record of a post step that could not finish: what is left (and the lock kept, when it held one), then why. */
export function unfinishedRecord(journal: Journal, error: unknown, lockKept: boolean): string {
  const left = unfinished(journal);
  // One line (GitHub shows 140 characters): "cannot reach ...:" and the hosts it names.
  const why = (error instanceof Error ? error.message : String(error)).replace(/\s*\n\s*/g, ' ');
  return `${endedAs(journal)}; the post step could not finish${lockKept ? ', its lock stays' : ''}${left.length ? ` (left: ${left.join('; ')})` : ''}: ${why}`;
}

/**
 * The post step's deployment status: how the main step ended, then what the post step did to
 * each host it settled: kept the new release, settled on the old one (after a failure: finished
 * the rollback), or, for a host left on neither, what it runs now.
 */
export function postStepRecord(journal: Journal, settled: Settled, after: Map<string, HostTarget>): string {
  const how = endedAs(journal);
  if (settled.size === 0) return `${how}; nothing had changed`;
  // Hosts that ended alike, named together.
  const groups = new Map<string, { hosts: string[]; say: (hosts: string) => string }>();
  for (const host of settled.keys()) {
    const now = after.get(host) ?? {};
    const runs = describeHost(now);
    const before = journal.before?.[host];
    const onNew = journal.version !== undefined && [now.master, now.backup].every((r) => r !== undefined && !r.adopted && r.version === journal.version);
    const onOld = before !== undefined && sameRelease(now.master, before.master) && sameRelease(now.backup, before.backup);
    const [kind, say] = onNew
      ? ['new', (hosts: string) => `kept the new release ${journal.version} on ${hosts}`]
      : onOld && journal.ended?.how === 'failed'
        ? [`rollback ${runs}`, (hosts: string) => `finished the rollback (${hosts} back on ${runs})`]
        : onOld
          ? [`old ${runs}`, (hosts: string) => `settled ${hosts} on the old release ${runs}`]
          : [`other ${runs}`, (hosts: string) => `settled ${hosts} on ${runs}`];
    const group = groups.get(kind) ?? { hosts: [], say };
    groups.set(kind, { ...group, hosts: [...group.hosts, host] });
  }
  const did = [...groups.values()].map(({ hosts, say }) => say(hosts.join(', '))).join(', and ');
  const everywhere = journal.version && [...after.values()].every((h) => h.master?.version === journal.version && h.backup?.version === journal.version);
  return `${how}; the post step ${did}${everywhere ? ` (every host runs ${journal.version})` : ''}`;
}

const describeHost = (h: HostTarget) => (h.master?.version === h.backup?.version ? (h.master?.version ?? 'nothing') : `${h.master?.version ?? 'nothing'}/${h.backup?.version ?? 'nothing'}`);

/**
 * A cut-short run's lock when no web container needs repair: only the hosts are connected, no
 * load balancer (it plays no part). Without roles to settle, only the lock's host; with them,
 * every host, each role container a move set aside judged as the repair would (settleLeftovers).
 */
async function releaseOnly(inputs: Inputs, config: Config, env: EnvironmentConfig, lock: HeldLock | undefined, { settleRoles }: { settleRoles: boolean }): Promise<void> {
  const roles = settleRoles && env.roles.length > 0;
  const hosts = roles ? env.hosts : lock ? [lock.host] : [];
  if (hosts.length === 0) return;
  const { haproxy: _unused, ...hostOnly } = env;
  const connected = await connect(inputs, config, { ...hostOnly, hosts });
  try {
    if (roles) {
      const deps = rolloutDeps(inputs, config, env, connected, undefined, readSecretValues(env.container.secrets, `environments.${env.name}.container.secrets`));
      for (const [host, driver] of connected.hosts) await settleLeftovers(host, driver, deps.roles!, deps.log);
    }
    if (lock) await releaseLeftoverLock(connected, lock, inputs.run.runAttempt);
  } finally {
    connected.dispose();
  }
}
