// The containers of roles beside the web role (workers) on one host: which there are, and when a
// new one counts as started. They have no port: readiness is the image's HEALTHCHECK, or running
// a while without an exit or a restart.
import { LABELS, type HealthVerdict, type ReadyRule, type RoleContainer } from '../../rollout/ports.js';
import { releaseOf } from '../container-state.js';
import type { LabelTrust } from './containers.js';
import type { Engine } from './engine.js';
import { diagnostics, sleep } from './health.js';

const POLL_MS = 500;
const PROGRESS_EVERY_MS = 5_000;
const WEB_ROLES = new Set(['master', 'backup']);

/** Every container labelled with the app and a role other than the web role's (set-aside ones too). */
export async function roleContainers(engine: Engine, app: string, trust?: LabelTrust): Promise<RoleContainer[]> {
  const listed = await engine.call('list containers', (abortSignal) =>
    engine.docker.listContainers({ all: true, filters: { label: [`${LABELS.app}=${app}`, LABELS.role] }, abortSignal }),
  );
  const out: RoleContainer[] = [];
  for (const info of listed) {
    const labels = info.Labels ?? {};
    const role = labels[LABELS.role];
    const name = info.Names?.[0]?.slice(1);
    if (!role || WEB_ROLES.has(role) || !name || labels[LABELS.app] !== app) continue;
    const checked = releaseOf(labels, info.Image, trust?.repository);
    if (checked && 'untrusted' in checked) trust?.warn(`${engine.host}: the labels of ${name} are not trusted (${checked.untrusted})`);
    out.push({ id: info.Id, name, role, running: info.State === 'running', ...(checked && 'trusted' in checked ? { release: checked.trusted } : {}) });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/**
 * Ready by `rule`: { healthcheck: true } once Docker says healthy; { running: N } once it has been
 * seen running N seconds on end with the same start and no restart. An exit, a restart, an
 * unhealthy verdict or the deadline make it not ready, with its last log lines.
 */
export async function waitReady(
  engine: Engine,
  name: string,
  rule: ReadyRule,
  timeoutSeconds: number,
  onProgress?: (line: string) => void,
  signal?: AbortSignal,
): Promise<HealthVerdict> {
  const started = Date.now();
  const deadline = started + (timeoutSeconds + ('running' in rule ? rule.running : 0)) * 1000;
  let since: { at: number; startedAt: string } | undefined;
  let reported = 0;
  for (;;) {
    if (signal?.aborted) return { healthy: false, detail: 'cancelled', logs: '' };
    const info = await engine.inspect(name);
    if (!info) return { healthy: false, detail: `container ${name} does not exist`, logs: '' };
    const { State: state, RestartCount: restarts } = info;
    const notReady = async (why: string): Promise<HealthVerdict> => ({ healthy: false, detail: why, logs: await diagnostics(engine, name, info.Id, state.Health) });
    const elapsed = Math.round((Date.now() - started) / 1000);
    if (restarts > 0 || state.Restarting) return notReady(`restarted (${restarts} restarts; it exited with code ${state.ExitCode})`);
    if (state.Status === 'exited' || state.Status === 'dead') return notReady(`exited with code ${state.ExitCode}${state.OOMKilled ? ' (killed: out of memory)' : ''}`);
    if ('healthcheck' in rule) {
      if (!state.Health) return notReady('has no HEALTHCHECK in its image (ready: { healthcheck: true } needs one)');
      if (state.Health.Status === 'healthy') return { healthy: true, detail: `healthy by its HEALTHCHECK after ${elapsed}s` };
      if (state.Health.Status === 'unhealthy') return notReady(`unhealthy by its HEALTHCHECK (${state.Health.FailingStreak} failures in a row)`);
    } else if (state.Running) {
      if (since?.startedAt !== state.StartedAt) since = { at: Date.now(), startedAt: state.StartedAt };
      if (Date.now() - since.at >= rule.running * 1000) return { healthy: true, detail: `running ${rule.running}s without a restart` };
    }
    const now = Date.now();
    if (now >= deadline) return notReady(`not ready after ${Math.round((now - started) / 1000)}s (${state.Status}${state.Health ? `, docker health ${state.Health.Status}` : ''})`);
    if (onProgress && now - reported >= PROGRESS_EVERY_MS) {
      onProgress(`waiting for ${name} to be ready: ${state.Status}${state.Health ? `, docker health ${state.Health.Status}` : ''} (${elapsed}s)`);
      reported = now;
    }
    await sleep(Math.min(POLL_MS, deadline - now), signal);
  }
}
