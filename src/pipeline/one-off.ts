// A one-off container run to its end as the release command and `command: run` run it: its
// output streamed into the job log as untrusted text (prefixed with its host), its last lines
// kept for the error, its place saved for the post step (a killed runner leaves it running:
// the post step stops and removes it), and how it ended as one result for summary and receipt.
import * as core from '@actions/core';
import type { Config } from '../config/schema.js';
import type { DockerHost } from '../drivers/docker/host.js';
import type { Inputs } from '../inputs.js';
import { infoUntrusted } from '../report/untrusted.js';
import type { OneOffSpec } from '../rollout/ports.js';
import { runUrl } from './gates.js';
import { connect } from './preflight.js';

/** Saved for the post step while a one-off container runs: { host, name }. */
export const ONE_OFF_STATE = 'one-off';
/** Lines of output an error quotes. */
export const LAST_LINES = 30;

export interface OneOffResult {
  host: string;
  container: string;
  command: string[];
  version: string;
  outcome: 'exited' | 'timeout' | 'cancelled';
  exitCode?: number;
  seconds: number;
  /** Its last LAST_LINES lines of output (untrusted text). */
  lastLines: string;
}

/** Collects output into whole lines: each printed as it completes, the last ones kept. */
class OutputLines {
  private partial = '';
  private readonly last: string[] = [];

  constructor(private readonly prefix: string) {}

  add(text: string): void {
    const lines = (this.partial + text).split(/\r?\n/);
    this.partial = lines.pop() ?? '';
    this.emit(lines);
  }

  flush(): void {
    if (this.partial) this.emit([this.partial]);
    this.partial = '';
  }

  get tail(): string {
    return this.last.join('\n');
  }

  private emit(lines: string[]): void {
    if (lines.length === 0) return;
    this.last.push(...lines);
    this.last.splice(0, Math.max(0, this.last.length - LAST_LINES));
    // One write per chunk: parallel output cannot split it, and nothing in it is obeyed.
    infoUntrusted(lines.map((line) => `${this.prefix}${line}`).join('\n'));
  }
}

export async function runOneOff(host: DockerHost, spec: OneOffSpec, options: { timeoutSeconds: number; signal?: AbortSignal }): Promise<OneOffResult> {
  const output = new OutputLines(`[${host.host}] `);
  const started = Date.now();
  core.saveState(ONE_OFF_STATE, JSON.stringify({ host: host.host, name: spec.name }));
  core.info(`Running ${JSON.stringify(spec.command)} in ${spec.name} (${spec.release.version}) on ${host.host}, at most ${options.timeoutSeconds} s`);
  const end = await host.runOneOff(spec, { timeoutSeconds: options.timeoutSeconds, onOutput: (text) => output.add(text), ...(options.signal ? { signal: options.signal } : {}) });
  output.flush();
  core.saveState(ONE_OFF_STATE, '');
  const result: OneOffResult = {
    host: host.host,
    container: spec.name,
    command: spec.command,
    version: spec.release.version,
    outcome: end.outcome,
    ...(end.outcome === 'exited' ? { exitCode: end.exitCode } : {}),
    seconds: Math.round((Date.now() - started) / 100) / 10,
    lastLines: output.tail,
  };
  core.info(`${spec.name} on ${host.host}: ${describeEnd(result)} after ${result.seconds} s`);
  return result;
}

export function describeEnd(result: Pick<OneOffResult, 'outcome' | 'exitCode'>): string {
  if (result.outcome === 'exited') return `exited with code ${result.exitCode}`;
  return result.outcome === 'timeout' ? 'stopped at its timeout' : 'stopped: the job was cancelled';
}

/** Whether the one-off succeeded: it exited 0. */
export const succeeded = (result: OneOffResult) => result.outcome === 'exited' && result.exitCode === 0;

/** The failure text of a one-off that did not exit 0, with its last lines of output. */
export function failureText(what: string, result: OneOffResult, timeoutKey: string): string {
  const why = result.outcome === 'timeout' ? `did not finish within ${timeoutKey}` : describeEnd(result);
  const lines = result.lastLines.trim() ? `; its last lines:\n${result.lastLines}` : '; it printed nothing';
  return `${what} ${JSON.stringify(result.command)} on ${result.host} ${why}${lines}`;
}

/** The post step: a one-off a killed main step left running is stopped and removed. */
export async function removeLeftoverOneOff(inputs: Inputs, config: Config, saved: string): Promise<void> {
  const { host, name } = JSON.parse(saved) as { host: string; name: string };
  const env = Object.values(config.environments).find((e) => e.hosts.includes(host));
  if (!env) return;
  const { haproxy: _unused, ...hostOnly } = env;
  const connected = await connect(inputs, config, { ...hostOnly, hosts: [host] });
  try {
    const removed = await connected.hosts.get(host)!.removeOneOff(name, runUrl(inputs));
    core.info(removed ? `Stopped and removed ${name} on ${host}, left by this run` : `No ${name} of this run was left on ${host}`);
  } finally {
    connected.dispose();
  }
}
