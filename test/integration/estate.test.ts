// The estate itself: what the other integration tests stand on. The smoke script drives it the
// way the action does (SSH with strict host keys, each host's own engine, HAProxy in front);
// then a down must leave nothing behind, and an up must bring it all back.
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { clearHosts } from './support/deploy.js';
import { REPO_ROOT, loadEstate } from './support/estate.js';

const run = promisify(execFile);
const ESTATE = join(REPO_ROOT, 'test/estate/estate.sh');
const ESTATE_DIR = process.env.ESTATE_DIR || '/var/lib/deploy-action-estate';

/**
 * The estate's own processes: those in its cgroup (every node and every container its engines
 * start lives under /deploy-action-estate) or started from its files. Anyone else's dockerd,
 * containerd, registry or HAProxy on the machine is not the estate's business.
 */
function estateProcesses(): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)) {
    let cgroup: string;
    let args: string;
    try {
      cgroup = readFileSync(`/proc/${pid}/cgroup`, 'utf8');
      args = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ').trim();
    } catch {
      continue; // gone meanwhile
    }
    if (cgroup.includes('/deploy-action-estate') || /deploy-action-estate|estate\.sh _node/.test(args)) found.push(`${pid} ${args}`);
  }
  return found;
}

async function sh(script: string): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run('bash', ['-c', script], { maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, out: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: failed.code ?? 1, out: `${failed.stdout ?? ''}${failed.stderr ?? ''}` };
  }
}

describe('the estate', () => {
  it('serves a container run on each host over SSH (strict host keys) through HAProxy, and keeps hosts apart', async () => {
    const estate = loadEstate();
    await clearHosts(estate, [...estate.environments.staging.hosts, ...estate.environments.production.hosts]);
    const smoke = await sh(`SMOKE_VERSION=v0.0.1-estate bash ${join(REPO_ROOT, 'test/estate/smoke.sh')}`);
    expect(smoke.code, smoke.out).toBe(0);
    for (const step of ['drain state survives', 'Docker API over an ssh-forwarded socket', 'hosts are apart', '[smoke] ok']) {
      expect(smoke.out).toContain(step);
    }
    for (const host of [...estate.environments.staging.hosts, ...estate.environments.production.hosts]) {
      expect(readFileSync(estate.knownHosts, 'utf8')).toMatch(new RegExp(`^${host.replace(/\./g, '\\.')} ssh-ed25519 `, 'm'));
    }
  }, 300_000);

  it('down leaves none of its namespaces, bridges, processes, mounts, rules or files, and only a user it created goes; up brings it back', async () => {
    // A machine may run Docker engines, registries and HAProxy of its own, and have a deploy
    // user of its own: down must leave those alone, so only what the estate made is judged.
    const createdUser = existsSync(join(ESTATE_DIR, 'created-deploy-user'));
    const down = await sh(`bash ${ESTATE} down`);
    expect(down.code, down.out).toBe(0);
    try {
      expect((await sh('ip netns list')).out).not.toMatch(/\bdae-/);
      expect((await sh('ip -o link show')).out).not.toMatch(/\bdae[-0-9]/);
      expect(estateProcesses()).toEqual([]);
      expect(readFileSync('/proc/mounts', 'utf8')).not.toMatch(/deploy-action-estate/);
      expect((await sh('iptables -S FORWARD')).out).not.toContain('dae0');
      expect((await sh('id deploy')).code === 0, createdUser ? 'the deploy user the estate created is gone' : 'the machine\'s own deploy user stays').toBe(!createdUser);
      expect((await sh('ls /var/lib/deploy-action-estate /run/deploy-action-estate 2>&1')).out).toMatch(/No such file or directory[\s\S]*No such file or directory/);
    } finally {
      const up = await sh(`bash ${ESTATE} up`);
      expect(up.code, up.out).toBe(0);
      expect(up.out).toMatch(/up took [\d.]+s/);
    }
    const status = await sh(`bash ${ESTATE} status`);
    expect(status.code, status.out).toBe(0);
    expect(estateProcesses().length).toBeGreaterThan(0);
  }, 300_000);
});
