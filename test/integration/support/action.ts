// Runs dist/index.js the way the GitHub runner does: inputs as INPUT_* variables, GITHUB_*
// variables, an event file, and GITHUB_OUTPUT / GITHUB_STEP_SUMMARY / GITHUB_STATE files.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT as ROOT } from './estate.js';


export interface ActionRun {
  code: number | null;
  /**
   * Everything the step printed, stdout and stderr interleaved, without the `::add-mask::`
   * commands the runner consumes (outside stop-commands blocks, where the runner obeys them).
   * Masking is NOT applied: a secret found here was printed.
   */
  log: string;
  /** Values the step asked the runner to mask. */
  masks: string[];
  outputs: Record<string, string>;
  summary: string;
  state: Record<string, string>;
}

export interface ActionOptions {
  inputs: Record<string, string>;
  env?: Record<string, string>;
  workspace: string;
  ref?: string;
  /** Run the post step with the state the main step saved. */
  post?: { state: Record<string, string> };
  /** Called with the child once started, e.g. to kill it mid-way. */
  onStart?: (pid: number) => void;
  /** Called with everything printed so far, each time the step prints: to act at a line. */
  onOutput?: (log: string) => void;
}

/** Reads the runner's `name<<DELIMITER ... DELIMITER` file format. */
export function readCommandFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = readFileSync(path, 'utf8').split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<=]+)<<(.+)$/.exec(lines[i]!);
    if (!match) continue;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== match[2]; i++) value.push(lines[i]!);
    out[match[1]!] = value.join('\n');
  }
  return out;
}

export async function runAction(options: ActionOptions): Promise<ActionRun> {
  const dir = mkdtempSync(join(tmpdir(), 'runner-'));
  const files = { output: join(dir, 'output'), summary: join(dir, 'summary'), state: join(dir, 'state'), event: join(dir, 'event.json') };
  for (const file of [files.output, files.summary, files.state]) writeFileSync(file, '');
  const ref = options.ref ?? 'refs/tags/v0.0.0';
  writeFileSync(files.event, JSON.stringify({ ref, repository: { full_name: 'clay/demo' } }));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? '/root',
    CI: 'true',
    GITHUB_ACTIONS: 'true',
    GITHUB_WORKSPACE: options.workspace,
    GITHUB_REF: ref,
    GITHUB_SHA: '0123456789abcdef0123456789abcdef01234567',
    GITHUB_REPOSITORY: 'clay/demo',
    GITHUB_SERVER_URL: 'https://github.com',
    GITHUB_RUN_ID: '1001',
    GITHUB_RUN_ATTEMPT: '1',
    GITHUB_ACTOR: 'octocat',
    GITHUB_WORKFLOW: 'release',
    // The release workflow's file, as GitHub names it: promote-from holds records' runs to it.
    GITHUB_WORKFLOW_REF: `clay/demo/.github/workflows/release.yml@${ref}`,
    GITHUB_EVENT_NAME: ref.startsWith('refs/tags/') ? 'push' : 'workflow_dispatch',
    GITHUB_EVENT_PATH: files.event,
    GITHUB_OUTPUT: files.output,
    GITHUB_STEP_SUMMARY: files.summary,
    GITHUB_STATE: files.state,
    RUNNER_TEMP: dir,
    ...options.env,
  };
  for (const [name, value] of Object.entries(options.inputs)) env[`INPUT_${name.toUpperCase()}`] = value;
  for (const [name, value] of Object.entries(options.post?.state ?? {})) env[`STATE_${name}`] = value;
  const child = spawn(join(ROOT, 'node_modules/.bin/node'), [join(ROOT, 'dist/index.js')], { cwd: options.workspace, env, stdio: ['ignore', 'pipe', 'pipe'] });
  if (options.onStart && child.pid) options.onStart(child.pid);
  let log = '';
  const printed = (d: Buffer) => {
    log += d.toString();
    options.onOutput?.(log);
  };
  child.stdout.on('data', printed);
  child.stderr.on('data', printed);
  const code = await new Promise<number | null>((done) => child.on('close', (c) => done(c)));
  const masks: string[] = [];
  // As the runner does: no command runs inside a ::stop-commands::TOKEN ... ::TOKEN:: block.
  let stopToken: string | undefined;
  log = log.split('\n').filter((line) => {
    const command = line.trimStart();
    if (stopToken !== undefined) {
      if (command === `::${stopToken}::`) stopToken = undefined;
      return true;
    }
    stopToken = /^::stop-commands::(.+)$/.exec(command)?.[1];
    const mask = /^::add-mask::(.*)$/.exec(command);
    if (mask) masks.push(mask[1]!);
    return !mask;
  }).join('\n');
  return { code, log, masks, outputs: readCommandFile(files.output), summary: readFileSync(files.summary, 'utf8'), state: readCommandFile(files.state) };
}

/** The lines of `log` the runner reads for commands: those outside every stop-commands block. */
export function outsideStopCommands(log: string): string[] {
  const lines: string[] = [];
  let token: string | undefined;
  for (const line of log.split(/\r\n|\r|\n/)) {
    const command = line.trimStart();
    if (token !== undefined) {
      if (command === `::${token}::`) token = undefined;
      continue;
    }
    token = /^::stop-commands::(.+)$/.exec(command)?.[1];
    if (token === undefined) lines.push(line);
  }
  return lines;
}
