// The rollOut stage: the plan for the hosts as read under the lock, executed (with its automatic
// rollback, or settled when cancelled) with the receipt's recorder watching and the canary (when
// configured) judging; then the receipt from the last reading.
import * as core from '@actions/core';
import type { Config, EnvironmentConfig } from '../config/schema.js';
import type { Inputs } from '../inputs.js';
import { Canary } from '../receipt/canary.js';
import { buildReceipt, receiptLine, type Receipt } from '../receipt/document.js';
import type { ReleaseCommandReport } from './release-command.js';
import type { ReceiptRecorder } from '../receipt/recorder.js';
import { executeRollout, type LoadBalancing, type RolloutDeps, type RolloutResult } from '../rollout/execute.js';
import { describePlan, planRollout } from '../rollout/plan.js';
import type { Release } from '../rollout/ports.js';
import { asideName, containerName, containerSpec, oldName, roleSpec, slotPort } from '../rollout/spec.js';
import { readSecretValues } from '../inputs.js';
import { runUrl } from './gates.js';
import { coreLogger, type Connected } from './preflight.js';
import type { EnvironmentState } from './target.js';

const sleep = (ms: number) => new Promise<void>((done) => setTimeout(done, ms));

/** What the rollOut stage hands on: what became of each host, and the load balancers' account. */
export interface RolledOut {
  result: RolloutResult;
  receipt?: Receipt;
}

export async function rollOut(
  env: EnvironmentConfig,
  { state, target }: { state: EnvironmentState; target: Release },
  deps: RolloutDeps,
  recorder: ReceiptRecorder | undefined,
  releaseCommand?: ReleaseCommandReport,
): Promise<RolledOut> {
  const policy = env.canary && { holdSeconds: env.canary.hold, maxErrorRate: env.canary['max-error-rate'], minRequests: env.canary['min-requests'] };
  const canary = recorder && policy && new Canary(recorder, policy, target, deps.log);
  // A canary section needs a haproxy section (config): the hold always has counters to judge.
  const plan = planRollout(target, env.hosts.map((host) => ({ host, current: state.current.get(host) ?? {} })), env.maxParallel, env.canary?.hold);
  core.info(describePlan(plan).join('\n'));
  await recorder?.start();
  const result = await executeRollout(plan, { ...deps, ...(recorder ? { observer: recorder } : {}), ...(canary ? { canary } : {}) });
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

/** Where a role's secrets are named, for the error that says one is missing from the step's env. */
export const roleSecretsKey = (env: EnvironmentConfig, role: string) => `roles.${role}.secrets (with environments.${env.name}.container.secrets)`;

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
  const context = { app: config.app, environment: env, runUrl: runUrl(inputs), now };
  const roleSecrets = new Map(env.roles.map((role) => [role.name, readSecretValues(role.secrets, roleSecretsKey(env, role.name))]));
  return {
    hosts: connected.hosts,
    ...(lb ? { lb } : {}),
    ...(env.roles.length > 0
      ? {
          roles: {
            app: config.app,
            roles: env.roles,
            spec: (name, container, release) => roleSpec({ ...context, secrets: roleSecrets.get(name)! }, env.roles.find((r) => r.name === name)!, container, release),
            readyTimeoutSeconds: env.health.timeout,
          },
        }
      : {}),
    containerName: (role) => containerName(config.app, role),
    asideName: (role) => asideName(config.app, role),
    procedure: env.rollout.procedure,
    oldName: (role) => oldName(config.app, role),
    hostPort: (role, slot) => slotPort(env.ports, role, slot),
    spec: (role, release, slot) => containerSpec({ ...context, secrets }, role, release, slot),
    health: { path: env.health.path, timeoutSeconds: env.health.timeout, intervalSeconds: env.health.interval },
    stopTimeoutSeconds: env.container['stop-timeout'],
    log: coreLogger(env.maxParallel === 1),
    sleep,
    pollMs: 100,
  };
}
