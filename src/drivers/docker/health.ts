// Waiting for a new container to serve: HTTP probes of its published port through the SSH
// connection, Docker's HEALTHCHECK as a veto, and, when it fails, its logs and health log.
import http from 'node:http';
import type Dockerode from 'dockerode';
import type { HealthCheck, HealthVerdict } from '../../rollout/ports.js';
import { probeAddress, publishedOn } from '../bind.js';
import { httpAgent } from '../ssh.js';
import { engineText, type Engine } from './engine.js';
import { tailLogs } from './logs.js';

const LOG_LINES = 30;
const HEALTH_LOG_ENTRIES = 5;
const PROBE_TIMEOUT_MS = 2_000;
const PROGRESS_EVERY_MS = 5_000;
const FIRST_PROBE_PAUSE_MS = 100;

type Health = NonNullable<Dockerode.ContainerInspectInfo['State']['Health']>;

export async function waitHealthy(
  engine: Engine,
  name: string,
  hostPort: number,
  check: HealthCheck,
  onProgress?: (line: string) => void,
  signal?: AbortSignal,
): Promise<HealthVerdict> {
  const started = Date.now();
  const deadline = started + check.timeoutSeconds * 1000;
  let probing: { address: string; agent: http.Agent } | undefined;
  let reported = { at: 0, summary: '' };
  let pause = Math.min(FIRST_PROBE_PAUSE_MS, check.intervalSeconds * 1000);
  for (;;) {
    if (signal?.aborted) return { healthy: false, detail: 'cancelled', logs: '' };
    const info = await engine.inspect(name);
    if (!info) return { healthy: false, detail: `container ${name} does not exist`, logs: '' };
    const state = info.State;
    const health = state.Health;
    const unhealthy = async (why: string): Promise<HealthVerdict> => ({
      healthy: false,
      detail: why,
      logs: await diagnostics(engine, name, info.Id, health),
    });
    if (state.Status === 'exited' || state.Status === 'dead') {
      return unhealthy(`exited with code ${state.ExitCode}${state.OOMKilled ? ' (killed: out of memory)' : ''}${state.Error ? `: ${state.Error}` : ''}`);
    }
    // Docker says unhealthy only after the image's own retries: no point waiting further.
    if (health?.Status === 'unhealthy') return unhealthy(`unhealthy by its HEALTHCHECK (${health.FailingStreak} failures in a row)`);
    const running = state.Status === 'running';
    // The probe goes where the port is published (container.bind), fixed at create.
    if (!probing) {
      const address = probeAddress(publishedOn(info.HostConfig?.PortBindings, hostPort));
      probing = { address, agent: httpAgent(() => engine.tunnel.forwardTcp(address, hostPort)) };
    }
    const answer = running ? await probe(probing.agent, probing.address, hostPort, check.path) : undefined;
    const parts = [
      running ? undefined : `container ${state.Status}`,
      health ? `docker health ${health.Status}` : undefined,
      answer ? `HTTP ${answer.text}` : undefined,
    ];
    const summary = parts.filter(Boolean).join(', ');
    const elapsed = Math.round((Date.now() - started) / 1000);
    // Docker's HEALTHCHECK vetoes (unhealthy, above) but is not waited for: its first verdict
    // comes an interval after start, and the HTTP answer already proves the app serves.
    if (running && answer?.ok) {
      return { healthy: true, detail: `healthy after ${elapsed}s (${summary})` };
    }
    const now = Date.now();
    if (now >= deadline) return unhealthy(`not healthy after ${check.timeoutSeconds}s (${summary})`);
    if (onProgress && (summary !== reported.summary || now - reported.at >= PROGRESS_EVERY_MS)) {
      onProgress(`waiting for ${name}: ${summary} (${elapsed}s)`);
      reported = { at: now, summary };
    }
    // Quick probes while the app starts, backing off to health.interval.
    await sleep(Math.min(pause, deadline - now), signal);
    pause = Math.min(pause * 2, check.intervalSeconds * 1000);
  }
}

/** The container's last log lines and Docker's last health checks, for a failed verdict. */
export async function diagnostics(engine: Engine, name: string, id: string, health: Health | undefined): Promise<string> {
  const sections: string[] = [];
  try {
    const logs = await tailLogs(engine, id, name, LOG_LINES);
    sections.push(`--- last ${LOG_LINES} log lines of ${name} ---`, logs.trimEnd() || '(no output)');
  } catch (error) {
    sections.push(`--- logs of ${name} unavailable: ${engineText(error)} ---`);
  }
  if (health?.Log.length) {
    sections.push(
      `--- Docker health checks of ${name} (status ${health.Status}) ---`,
      ...health.Log.slice(-HEALTH_LOG_ENTRIES).map((entry) => `${entry.End} exit ${entry.ExitCode}: ${entry.Output.trim()}`),
    );
  }
  return sections.join('\n');
}

type ProbeResult = { ok: boolean; text: string };

/** One GET through the SSH connection to the published port on the host itself. */
function probe(agent: http.Agent, host: string, port: number, path: string): Promise<ProbeResult> {
  return new Promise((resolve) => {
    const request = http.get(
      { agent, host, port, path, signal: AbortSignal.timeout(PROBE_TIMEOUT_MS) },
      (response) => {
        response.resume();
        const status = response.statusCode ?? 0;
        resolve({ ok: status >= 200 && status < 300, text: String(status) });
      },
    );
    request.on('error', (error) =>
      resolve({ ok: false, text: `no answer (${error.name === 'AbortError' ? `none within ${PROBE_TIMEOUT_MS / 1000}s` : error.message})` }),
    );
  });
}

/** Resolves after `ms`, or at once when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => {
      clearTimeout(timer);
      resolve();
    }, { once: true });
  });
}
