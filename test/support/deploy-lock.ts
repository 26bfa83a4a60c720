// A deploy lock as a run of the demo app's release workflow holds it, for the lock's unit tests.
import type { DeployLock } from '../../src/rollout/ports.js';

export const t0 = new Date('2026-01-01T00:00:00Z');

export const lockOf = (runId: string, { attempt = '1', since = t0 }: { attempt?: string; since?: Date } = {}): DeployLock => ({
  holder: `octocat (release #${runId})`,
  runUrl: `https://github.com/clay/demo/actions/runs/${runId}`,
  runId,
  attempt,
  version: 'v1.0.0',
  since,
});
