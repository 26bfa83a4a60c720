// The only reader of the step's inputs and environment. Everything the action is told arrives
// here, is checked, and leaves as one typed Inputs value; secrets are masked before anything
// else runs, so no later log line can show them.
import * as core from '@actions/core';
import { readFile } from 'node:fs/promises';
import { isAbsolute, resolve } from 'node:path';
import { parseConfig } from './config/parse.js';
import type { Config } from './config/schema.js';
import { DIGEST } from './release/trust.js';
import { maskSecret } from './report/secrets.js';

export const COMMANDS = ['build', 'deploy', 'rollback', 'plan', 'haproxy-config', 'check', 'status', 'unlock', 'logs', 'run'] as const;
export type Command = (typeof COMMANDS)[number];

export class InputError extends Error {
  override name = 'InputError';
}

/** What the runner tells every step about the run (GITHUB_* variables). */
export interface RunContext {
  ref: string;
  sha: string;
  repository: string;
  serverUrl: string;
  apiUrl: string;
  runId: string;
  runAttempt: string;
  actor: string;
  workflow: string;
  /** GITHUB_WORKFLOW_REF: `owner/repo/<workflow file>@<ref>`, what promote-from holds records' runs to. */
  workflowRef: string;
  workspace: string;
  /** Where temporary files go: RUNNER_TEMP on a runner. */
  tempDir: string;
}

export interface Inputs {
  command: Command;
  /** The config file as the user named it (for messages and annotations) and its full path. */
  configFile: string;
  configPath: string;
  environment: string;
  /** Raw `version` input; empty means "the tag of GITHUB_REF". */
  version: string;
  digest: string;
  /** Rollback only: a release the environment never ran may be rolled back to. */
  allowNeverDeployed: boolean;
  /** unlock: why the lock is cleared (recorded with who cleared it). */
  reason: string;
  /** logs: how many of each container's last lines. */
  lines: number;
  /** run: the command of the one-off task, as arguments (never shell text); empty for other commands. */
  task: string[];
  /** run: seconds the task may take before it is stopped. */
  timeoutSeconds: number;
  registry: { username: string; password: string };
  ssh: { privateKey: string; knownHosts: string };
  githubToken: string;
  run: RunContext;
}

function env(name: string, fallback = ''): string {
  return process.env[name] ?? fallback;
}

function secretInput(name: string): string {
  const value = core.getInput(name);
  maskSecret(value);
  return value;
}

/**
 * The registry login. `docker login` stores it in the private DOCKER_CONFIG as base64 of
 * `user:password`, a form of the password the runner would not mask on its own.
 */
function registryInputs(): Inputs['registry'] {
  const username = core.getInput('registry-username');
  const password = secretInput('registry-password');
  if (username && password) maskSecret(Buffer.from(`${username}:${password}`).toString('base64'));
  return { username, password };
}

function booleanInput(name: string): boolean {
  const value = core.getInput(name);
  if (value === '' || value === 'false') return false;
  if (value === 'true') return true;
  throw new InputError(`${name}: expected true or false, got ${JSON.stringify(value)}`);
}

function integerInput(name: string, fallback: number, min: number, max: number): number {
  const value = core.getInput(name);
  if (value === '') return fallback;
  if (!/^\d+$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new InputError(`${name}: expected a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  }
  return Number(value);
}

/**
 * A command as arguments: a JSON list of strings (`["bin/rails", "db:migrate"]`), or words
 * separated by spaces (`bin/rails db:migrate`). It never goes through a shell: a command that
 * needs one says so itself (`["sh", "-c", "..."]`).
 */
export function commandWords(value: string, key: string): string[] {
  const text = value.trim();
  let words: unknown;
  if (text.startsWith('[')) {
    try {
      words = JSON.parse(text);
    } catch {
      throw new InputError(`${key}: not a JSON list of strings: ${JSON.stringify(value)}`);
    }
  } else {
    words = text.split(/\s+/).filter(Boolean);
  }
  if (!Array.isArray(words) || words.length === 0 || !words.every((w) => typeof w === 'string' && w !== '' && !w.includes('\0'))) {
    throw new InputError(`${key}: expected a command, as words (bin/rails db:migrate) or a JSON list of non-empty strings (["bin/rails", "db:migrate"])`);
  }
  return words as string[];
}

export function readInputs(): Inputs {
  const command = core.getInput('command', { required: true }) as Command;
  if (!COMMANDS.includes(command)) {
    throw new InputError(`command: ${JSON.stringify(command)} is not one of ${COMMANDS.join(', ')}`);
  }
  const digest = core.getInput('digest');
  if (digest && !DIGEST.test(digest)) {
    throw new InputError(`digest: expected sha256:<64 hex digits> (the build job's digest output), got ${JSON.stringify(digest)}`);
  }
  const workspace = env('GITHUB_WORKSPACE', process.cwd());
  const configInput = core.getInput('config') || '.github/deploy.yml';
  return {
    command,
    configFile: configInput,
    configPath: isAbsolute(configInput) ? configInput : resolve(workspace, configInput),
    environment: core.getInput('environment'),
    version: core.getInput('version'),
    digest,
    allowNeverDeployed: booleanInput('allow-never-deployed'),
    reason: core.getInput('reason'),
    lines: integerInput('lines', 100, 1, 10_000),
    task: command === 'run' ? commandWords(core.getInput('task'), 'task') : [],
    timeoutSeconds: integerInput('timeout', 3600, 1, 86_400),
    registry: registryInputs(),
    ssh: { privateKey: secretInput('ssh-private-key'), knownHosts: core.getInput('ssh-known-hosts') },
    githubToken: secretInput('github-token'),
    run: {
      ref: env('GITHUB_REF'),
      sha: env('GITHUB_SHA'),
      repository: env('GITHUB_REPOSITORY'),
      serverUrl: env('GITHUB_SERVER_URL', 'https://github.com'),
      apiUrl: env('GITHUB_API_URL', 'https://api.github.com'),
      runId: env('GITHUB_RUN_ID'),
      runAttempt: env('GITHUB_RUN_ATTEMPT', '1'),
      actor: env('GITHUB_ACTOR'),
      workflow: env('GITHUB_WORKFLOW'),
      workflowRef: env('GITHUB_WORKFLOW_REF'),
      workspace,
      tempDir: env('RUNNER_TEMP') || '/tmp',
    },
  };
}

export async function readConfig(inputs: Inputs): Promise<Config> {
  let text: string;
  try {
    text = await readFile(inputs.configPath, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? String(error);
    throw new InputError(`config: cannot read ${inputs.configFile} (${reason}); the deploy config goes there, or set the config input`);
  }
  return parseConfig(inputs.configFile, text);
}

/**
 * Values of the variables that `key` (e.g. `build.secrets`) names, from the step's environment.
 * Every missing one is reported at once; each value is masked.
 */
export function readSecretValues(names: string[], key: string): Record<string, string> {
  const missing = names.filter((name) => !process.env[name]);
  if (missing.length > 0) {
    throw new InputError(`${key}: ${missing.join(', ')} ${missing.length > 1 ? 'are' : 'is'} not set in the step's env (add it under env: from secrets)`);
  }
  const values: Record<string, string> = {};
  for (const name of names) {
    const value = process.env[name] as string;
    maskSecret(value);
    values[name] = value;
  }
  return values;
}

/** The runner hands a step's saved state back to its post step as STATE_* variables. */
export function readState(name: string): string {
  return core.getState(name);
}

export function isPostStep(): boolean {
  return readState('post') === 'true';
}
