// What the action's code meets outside itself when the simulator runs it: @actions/core, GitHub's
// API, and the SSH connections to hosts and load balancers, each answered in memory, each call
// on behalf of one run (a main step, a post step) known by the async context it was made in.
// The simulator's test files route the real modules here with vi.mock (mocks.ts).
import { AsyncLocalStorage } from 'node:async_hooks';
import type { DeploymentRecord } from '../../src/release/history.js';
import type { Call } from '../support/memory-estate.js';

/** One process of the runner: a main step or a post step of one run. */
export interface Proc {
  name: string;
  runId: string;
  attempt: string;
  /** Killed (SIGKILL, the runner dying): it never takes another step. */
  dead: boolean;
  done: boolean;
  controller: AbortController;
  inputs: Record<string, string>;
  state: Map<string, string>;
  outputs: Map<string, string>;
  logs: string[];
  summary: string[];
  /** Rows of the summary's tables, as the code built them. */
  tables: string[][][];
  failed?: string;
}

export const procs = new AsyncLocalStorage<Proc>();

/**
 * The config files the runs read, by path: the test file answers the post step's readFile from
 * here, as real I/O takes real time, which the virtual clock cannot wait for.
 */
export const configFiles = new Map<string, string>();

export function newProc(name: string, runId: string, inputs: Record<string, string> = {}, attempt = '1'): Proc {
  return {
    name,
    runId,
    attempt,
    dead: false,
    done: false,
    controller: new AbortController(),
    inputs,
    state: new Map(),
    outputs: new Map(),
    logs: [],
    summary: [],
    tables: [],
  };
}

/** The hooks the simulator sets: every outside call passes `gate` first. */
export interface Runtime {
  gate(call: Call): Promise<void>;
  github: FakeGitHub;
  host(name: string): Promise<unknown>;
  loadBalancer(name: string): Promise<unknown>;
}

let current: Runtime | undefined;
export function useRuntime(runtime: Runtime | undefined): void {
  current = runtime;
}
export function runtime(): Runtime {
  if (!current) throw new Error('no simulator runtime set');
  return current;
}

const me = () => procs.getStore();
const alive = () => {
  const proc = me();
  return proc && !proc.dead ? proc : undefined;
};

/** Chainable like core.summary; written into the run's summary. */
class Summary {
  private buffer = '';
  addHeading(text: string) {
    this.buffer += `<h3>${text}</h3>\n`;
    return this;
  }
  addRaw(text: string, eol = false) {
    this.buffer += text + (eol ? '\n' : '');
    return this;
  }
  addEOL() {
    this.buffer += '\n';
    return this;
  }
  addCodeBlock(code: string) {
    this.buffer += `<pre>${code}</pre>\n`;
    return this;
  }
  addDetails(label: string, content: string) {
    this.buffer += `<details><summary>${label}</summary>${content}</details>\n`;
    return this;
  }
  addList(items: string[]) {
    this.buffer += items.map((i) => `- ${i}`).join('\n') + '\n';
    return this;
  }
  addTable(rows: ({ data: string } | string)[][]) {
    const cells = rows.map((row) => row.map((c) => (typeof c === 'string' ? c : c.data)));
    alive()?.tables.push(cells);
    this.buffer += cells.map((r) => r.join(' | ')).join('\n') + '\n';
    return this;
  }
  stringify() {
    return this.buffer;
  }
  emptyBuffer() {
    this.buffer = '';
    return this;
  }
  isEmptyBuffer() {
    return this.buffer === '';
  }
  async write() {
    alive()?.summary.push(this.buffer);
    this.buffer = '';
    return this;
  }
  async clear() {
    this.buffer = '';
    return this;
  }
}

/** @actions/core, per run. */
export const core = {
  info: (line: string) => void alive()?.logs.push(line),
  debug: () => undefined,
  notice: (line: string) => void alive()?.logs.push(`notice: ${line}`),
  warning: (line: string | Error) => void alive()?.logs.push(`warning: ${String(line)}`),
  error: (line: string | Error) => void alive()?.logs.push(`error: ${String(line)}`),
  setFailed: (message: string | Error) => {
    const proc = alive();
    if (proc) proc.failed = String(message instanceof Error ? message.message : message);
  },
  saveState: (name: string, value: unknown) => void alive()?.state.set(name, typeof value === 'string' ? value : JSON.stringify(value)),
  getState: (name: string) => me()?.state.get(name) ?? '',
  setOutput: (name: string, value: unknown) => void alive()?.outputs.set(name, String(value)),
  getInput: (name: string, options?: { required?: boolean }) => {
    const value = me()?.inputs[name] ?? '';
    if (options?.required && !value) throw new Error(`Input required and not supplied: ${name}`);
    return value;
  },
  getBooleanInput: (name: string) => (me()?.inputs[name] ?? '') === 'true',
  setSecret: () => undefined,
  isDebug: () => false,
  group: async <T>(_title: string, run: () => Promise<T>) => run(),
  startGroup: () => undefined,
  endGroup: () => undefined,
  exportVariable: () => undefined,
  addPath: () => undefined,
  summary: new Summary(),
};

/** A deployment record and the statuses set on it, as GitHub keeps them. */
export interface Record_ {
  id: number;
  environment: string;
  ref: string;
  task: string;
  statuses: { state: string; description: string }[];
  /** The run that opened it (its payload's run_id). */
  runId?: string;
  /** That run's attempt (its payload's run_attempt). */
  attempt?: string;
}

/** GitHub's API as the simulator's world answers it: runs, deployment records. */
export class FakeGitHub {
  records: Record_[] = [];
  /** Runs the simulator knows, and whether each has ended. */
  ended = new Map<string, boolean>();

  private async call(op: string, subject?: string) {
    await runtime().gate({ at: 'github', op, ...(subject ? { subject } : {}) });
  }

  async runEnded(runId: string): Promise<boolean> {
    await this.call('github-run', runId);
    return this.ended.get(runId) ?? true;
  }
  async environmentReviewers(): Promise<{ exists: boolean; reviewers: number }> {
    await this.call('github-environment');
    return { exists: true, reviewers: 0 };
  }
  async runReviews() {
    await this.call('github-reviews');
    return [];
  }
  async createDeployment(d: { ref: string; environment: string; task: string; payload?: { run_id?: string; run_attempt?: string } }): Promise<number> {
    await this.call('github-create-deployment', d.ref);
    const id = this.records.length + 1;
    this.records.push({ id, environment: d.environment, ref: d.ref, task: d.task, statuses: [], ...(d.payload?.run_id ? { runId: d.payload.run_id } : {}), ...(d.payload?.run_attempt ? { attempt: d.payload.run_attempt } : {}) });
    return id;
  }
  async deploymentState(id: number): Promise<string> {
    await this.call('github-statuses', String(id));
    return this.records.find((r) => r.id === id)?.statuses.at(-1)?.state ?? 'none';
  }
  async openRecordsOfRun(environment: string, runId: string, attempt: string): Promise<number[]> {
    await this.call('github-deployments');
    const open = (r: Record_) => (r.statuses.at(-1)?.state ?? 'in_progress') === 'in_progress';
    return this.records.filter((r) => r.environment === environment && r.runId === runId && r.attempt === attempt && open(r)).reverse().map((r) => r.id);
  }
  async setDeploymentStatus(id: number, state: string, s: { description: string }): Promise<void> {
    await this.call('github-status', String(id));
    this.records.find((r) => r.id === id)?.statuses.push({ state, description: s.description });
  }
  async deployments(): Promise<DeploymentRecord[]> {
    await this.call('github-deployments');
    return [];
  }
}

/** Stands in for drivers/github.ts's GitHubApi: every method asks the schedule's FakeGitHub. */
export class FakeGitHubApi {
  constructor(..._args: unknown[]) {}
  runEnded(runId: string) {
    return runtime().github.runEnded(runId);
  }
  environmentReviewers() {
    return runtime().github.environmentReviewers();
  }
  runReviews() {
    return runtime().github.runReviews();
  }
  createDeployment(d: { ref: string; environment: string; task: string; payload?: { run_id?: string; run_attempt?: string } }) {
    return runtime().github.createDeployment(d);
  }
  deploymentState(id: number) {
    return runtime().github.deploymentState(id);
  }
  openRecordsOfRun(environment: string, runId: string, attempt: string) {
    return runtime().github.openRecordsOfRun(environment, runId, attempt);
  }
  setDeploymentStatus(id: number, state: string, s: { description: string }) {
    return runtime().github.setDeploymentStatus(id, state, s);
  }
  deployments() {
    return runtime().github.deployments();
  }
}

/** What GitHub answers when the fault says it fails. */
export const gitHubDown = (op: string) => Object.assign(new Error(`Could not ${op}: HTTP 502 Bad Gateway`), { name: 'GitHubApiError', status: 502 });
