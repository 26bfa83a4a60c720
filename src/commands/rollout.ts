// One release onto one environment, deploy and rollback alike (so a rollback drops no request
// either), in phases: connect; choose and pull the release; take the lock; read, under the lock,
// everything the plan depends on; plan; execute (with its automatic rollback); record and tidy
// up. Every check that can refuse runs before the first container changes.
import * as core from '@actions/core';
import type { Config, EnvironmentConfig } from '../config/schema.js';
import type { GitHubApi } from '../drivers/github.js';
import type { HeldSnapshot } from '../drivers/load-balancers.js';
import { readSecretValues, type Inputs } from '../inputs.js';
import { Canary } from '../receipt/canary.js';
import { buildReceipt, receiptLine, type Receipt } from '../receipt/document.js';
import { ReceiptRecorder } from '../receipt/recorder.js';
import { renderReceipt } from '../receipt/render.js';
import { parseHistoryLabel } from '../release/history.js';
import { rolloutSummary, writeSummary } from '../report/summary.js';
import { infoUntrusted } from '../report/untrusted.js';
import { executeRollout, type LoadBalancing, type RolloutDeps, type RolloutResult } from '../rollout/execute.js';
import { JournalWriter } from './journal.js';
import { runReleaseCommand, type ReleaseCommandReport } from '../pipeline/release-command.js';
import { describePlan, planRollout } from '../rollout/plan.js';
import type { Release } from '../rollout/ports.js';
import { asideName, containerName, containerSpec } from '../rollout/spec.js';
import { releaseLock, takeLock, type HeldLock } from './deploy-lock.js';
import { GitHubDeployment, checkApproval, checkPromotionGate, gitHub, runUrl, trustedHistory } from './gates.js';
import { connect, coreLogger, findServers, onEveryHost, pinRelease, readHosts, type Connected } from './preflight.js';
import { historyFor, runningVersion, wantedRelease, type EnvironmentState, type RolloutRequest, type WantedRelease } from './target.js';

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));
const RECORD_ATTEMPTS = 3;

export class DeployFailed extends Error {
  override name = 'DeployFailed';
}

/** What this run holds: the failure path and the end of the run must see it, however far pre-flight got. */
interface Held {
  lock?: HeldLock;
  record?: GitHubDeployment;
  /**
   * The load balancers' counters for the receipt, read from pre-flight on (with a haproxy
   * section); every second once the rollout starts, until stopped, whatever happens.
   */
  recorder?: ReceiptRecorder;
}

interface Prepared {
  state: EnvironmentState;
  wanted: WantedRelease;
  target: Release;
  /** heldOn: what the operator had out of service before this run, for the journal to leave so. */
  lb?: LoadBalancing & { heldOn: HeldSnapshot };
}

export async function rollOut(
  inputs: Inputs,
  config: Config,
  env: EnvironmentConfig,
  request: RolloutRequest,
  signal?: AbortSignal,
): Promise<Record<string, string>> {
  const secrets = readSecretValues(env.container.secrets, `environments.${env.name}.container.secrets`);
  const github = gitHub(inputs);
  await checkApproval(github, env, inputs.run.runId);
  const balancers = env.haproxy?.hosts ?? [];
  const connected = await core.group(`Connect to ${env.name} (${env.hosts.length} hosts${balancers.length ? ` and ${balancers.join(', ')}` : ''})`, () =>
    connect(inputs, config, env),
  );
  const held: Held = {};
  let succeeded = false;
  // Until the hosts are known to be settled, the post step must finish what this run started.
  let leftForPostStep = false;
  try {
    const prepared = await core.group('Pre-flight', () => preFlight(inputs, config, connected, request, github, held, signal));
    // After the pull and the gates, before any traffic moves; a failure here changes no container.
    const releaseCommand = await runReleaseCommand({ inputs, config, connected, target: prepared.target, task: request.task, secrets }, signal);
    const { record } = held;
    const journal = new JournalWriter({ environment: env.name, touched: [], outOfService: [], heldOn: prepared.lb?.heldOn ?? [], ...(record ? { deploymentId: record.id } : {}) });
    leftForPostStep = true;
    const deps = { ...rolloutDeps(inputs, config, env, connected, prepared.lb, secrets), ...(signal ? { signal } : {}), journal };
    const { result, receipt } = await execute(env, prepared, deps, held.recorder, releaseCommand);
    // A cancel not settled in time, or a rollback that could not put every server back.
    leftForPostStep = (result.cancelled !== undefined && !result.cancelled.settled) || journal.pending();
    if (!leftForPostStep) journal.clear();
    await writeSummary((s) => {
      rolloutSummary(s, { environment: env.name, target: prepared.target, result });
      if (receipt) s.addRaw(renderReceipt(receipt), true);
    });
    if (result.cancelled) throw new DeployFailed(cancelledMessage(env, result));
    if (!result.ok) throw new DeployFailed(failureMessage(env, prepared.target, result));
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
    // A lock over hosts left unsettled is the post step's to release, once it has settled them.
    if (held.lock && !leftForPostStep) await releaseLock(connected, held.lock);
    connected.dispose();
  }
}

/**
 * Everything before the first container changes: the release, pulled everywhere, the lock, the
 * gates, the servers to drive, the receipt's first reading and the deployment record. What it
 * takes (lock, recorder, record) goes into `held` as soon as it is taken, so that a refusal
 * half-way still releases, stops and records it.
 */
async function preFlight(
  inputs: Inputs,
  config: Config,
  connected: Connected,
  request: RolloutRequest,
  github: GitHubApi | undefined,
  held: Held,
  signal?: AbortSignal,
): Promise<Prepared> {
  const env = connected.env;
  const stopIfCancelled = () => {
    if (signal?.aborted) throw new DeployFailed(`cancelled before any container changed in ${env.name}`);
  };
  // A first reading picks what to pull: the lock is a container created from that image,
  // which must be on the host first, and pulls change no container.
  const guess = await choose(inputs, config, connected, request);
  await pullEverywhere(connected, guess.target);
  stopIfCancelled();
  held.lock = await takeLock(inputs, config, connected, guess.target);
  // Another run may have finished in between: everything the plan depends on is read again.
  const chosen = await choose(inputs, config, connected, request);
  if (chosen.target.digest !== guess.target.digest) await pullEverywhere(connected, chosen.target);
  if (request.task === 'deploy' || chosen.wanted.neverRan) await checkPromotionGate(github, env, chosen.target);
  const lb = await findServers(connected, { tookOverLock: held.lock.tookOver, running: chosen.state.current });
  // The receipt's baseline runs from here to the first change.
  if (lb) {
    held.recorder = new ReceiptRecorder(lb.driver, lb.servers, (host, role) => chosen.state.current.get(host)?.[role]?.version);
    await held.recorder.open();
  }
  held.record = await GitHubDeployment.open(github, inputs, env, { ...chosen.target, image: config.image }, request.task, chosen.wanted.neverRan);
  stopIfCancelled();
  return { ...chosen, ...(lb ? { lb } : {}) };
}

/** What runs and ran (under the lock, the second time), and the release that follows from it. */
async function choose(inputs: Inputs, config: Config, connected: Connected, request: RolloutRequest): Promise<Omit<Prepared, 'lb'>> {
  const github = gitHub(inputs);
  const env = connected.env;
  const state: EnvironmentState = {
    environment: env.name,
    current: await readHosts(connected, config.app),
    // Only a rollback looks back; a deploy's target is its tag.
    ...(request.task === 'rollback' && github ? { records: await trustedHistory(github, env.name, config.image) } : {}),
  };
  const wanted = wantedRelease(request, state);
  core.info(`Target: ${wanted.reason}`);
  const pinned = await pinRelease(connected, config.image, wanted.tag, wanted.digest, wanted.pinnedBy);
  const target: Release = { ...pinned, history: historyFor(state, pinned, request.task) };
  return { state, wanted, target };
}

async function pullEverywhere(connected: Connected, target: Release): Promise<void> {
  await onEveryHost(connected.hosts, `Pulling ${target.ref}`, async (host) => {
    await host.pull(target.ref, connected.auth, (line) => infoUntrusted(`[${host.host}] ${line}`));
    core.info(`[${host.host}] has ${target.ref}`);
  });
}

/**
 * The plan, run with the receipt's recorder watching and the canary (when configured) judging;
 * then the receipt from the last reading.
 */
async function execute(
  env: EnvironmentConfig,
  prepared: Prepared,
  deps: RolloutDeps,
  recorder: ReceiptRecorder | undefined,
  releaseCommand: ReleaseCommandReport | undefined,
): Promise<{ result: RolloutResult; receipt?: Receipt }> {
  const { target } = prepared;
  const policy = env.canary && { holdSeconds: env.canary.hold, maxErrorRate: env.canary['max-error-rate'], minRequests: env.canary['min-requests'] };
  const canary = recorder && policy && new Canary(recorder, policy, target, deps.log);
  await recorder?.start();
  const result = await executeRollout(planFor(env, prepared), { ...deps, ...(recorder ? { observer: recorder } : {}), ...(canary ? { canary } : {}) });
  if (!recorder) return { result };
  await recorder.finish();
  const receipt = buildReceipt({
    environment: env.name,
    version: target.version,
    outcome: result.ok ? 'success' : result.cancelled ? 'cancelled' : 'failure',
    baseline: recorder.baseline,
    deploy: recorder.deploy,
    hosts: result.hosts,
    ...(policy && canary ? { canary: { ...policy, verdicts: canary.verdicts } } : {}),
    ...(releaseCommand ? { releaseCommand } : {}),
    cost: recorder.cost,
  });
  core.info(`Receipt: ${receiptLine(receipt, env.hosts.length)} (baseline: ${receipt.baseline.totals.errors} errors in ${receipt.baseline.totals.requests} requests over ${receipt.baseline.seconds} s)`);
  core.setOutput('receipt', JSON.stringify(receipt));
  return { result, receipt };
}

function planFor(env: EnvironmentConfig, { state, target }: Prepared) {
  // A canary section needs a haproxy section (config): the hold always has counters to judge.
  const plan = planRollout(target, env.hosts.map((host) => ({ host, current: state.current.get(host) ?? {} })), env.maxParallel, env.canary?.hold);
  core.info(describePlan(plan).join('\n'));
  return plan;
}

/** What the executor needs to drive this environment: shared by a rollout and the post step's repair. */
export function rolloutDeps(
  inputs: Inputs,
  config: Config,
  env: EnvironmentConfig,
  connected: Connected,
  lb: LoadBalancing | undefined,
  secrets: Record<string, string>,
): RolloutDeps {
  const now = () => new Date();
  return {
    hosts: connected.hosts,
    ...(lb ? { lb } : {}),
    containerName: (role) => containerName(config.app, role),
    asideName: (role) => asideName(config.app, role),
    hostPort: (role) => env.ports[role],
    spec: (role, release) => containerSpec({ app: config.app, environment: env, secrets, runUrl: runUrl(inputs), now }, role, release),
    health: { path: env.health.path, timeoutSeconds: env.health.timeout, intervalSeconds: env.health.interval },
    stopTimeoutSeconds: env.container['stop-timeout'],
    log: coreLogger(env.maxParallel === 1),
    sleep,
    pollMs: 100,
  };
}

function cancelledMessage(env: EnvironmentConfig, result: RolloutResult): string {
  const runs = result.hosts.map((h) => `${h.host}: master ${h.after.master?.version ?? 'none'}, backup ${h.after.backup?.version ?? 'none'}`).join('; ');
  const left = result.cancelled!.settled ? 'every host serves, in service' : `the post step settles ${result.cancelled!.unsettled.join(', ')} and releases the lock`;
  return `cancelled in ${env.name}: ${left} (${runs})`;
}

function failureMessage(env: EnvironmentConfig, target: Release, result: RolloutResult): string {
  const failed = result.failures.map((f) => `${f.host}: ${f.role} ${f.reason}`).join('; ');
  const rollback =
    result.rollbackErrors.length === 0
      ? `every host touched was rolled back to the release it ran before (${result.hosts.filter((h) => h.rolledBack).map((h) => h.host).join(', ')})`
      : `ROLLBACK INCOMPLETE:\n  ${result.rollbackErrors.join('\n  ')}`;
  return `${target.version} to ${env.name} failed on ${failed}; ${rollback}`;
}

/**
 * After a rollout that succeeded: the success record and the image prune. Neither may fail the
 * job now: every host runs the release, and a failed job would refuse its promotion.
 */
async function tidyUp(
  config: Config,
  env: EnvironmentConfig,
  connected: Connected,
  prepared: Prepared,
  record: GitHubDeployment | undefined,
  receipt: Receipt | undefined,
): Promise<void> {
  const { target, state } = prepared;
  if (record) {
    const line = receipt ? receiptLine(receipt, env.hosts.length) : `${target.version} on ${env.hosts.length} hosts`;
    await retried(`record the deployment ${record.id} as a success`, () => record.set('success', line));
  }
  await core.group('Prune old images', async () => {
    // Never what ran before this run (the rollback target) nor the release before the target.
    const previous = parseHistoryLabel((target.history ?? []).slice(-2, -1).join(' ')).map((entry) => entry.slice(entry.indexOf('@') + 1));
    const running = [...state.current.values()].flatMap((h) => [h.master?.ref, h.backup?.ref].filter((r): r is string => !!r));
    const protect = [target.ref, ...running, ...previous];
    await onEveryHost(connected.hosts, 'Pruning images', async (host) => {
      const removed = await host.pruneImages(config.image, env.retainImages, protect);
      core.info(`[${host.host}] removed ${removed.length} old image(s)${removed.length ? `: ${removed.join(', ')}` : ''}`);
    }).catch((error: Error) => core.warning(`Could not prune old images (the deploy itself succeeded): ${error.message}`));
  });
}

async function retried(what: string, run: () => Promise<void>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await run();
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      if (attempt >= RECORD_ATTEMPTS) {
        core.warning(`Could not ${what} after ${attempt} attempts (the deploy itself succeeded): ${message}`);
        return;
      }
      core.info(`Could not ${what} (attempt ${attempt}): ${message}; trying again`);
      await sleep(1000 * attempt);
    }
  }
}
