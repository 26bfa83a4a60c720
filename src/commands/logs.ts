// command: logs — the last `lines` lines of each container of an environment, per host and
// role (the web role's master and backup, then each role container beside them), read-only. What an app prints is outside text: in the log each container's lines fold
// in a group of their own inside a stop-commands block, in the summary they are escaped.
import * as core from '@actions/core';
import type { Config } from '../config/schema.js';
import type { Inputs } from '../inputs.js';
import { maskSecret } from '../report/secrets.js';
import { htmlText, preformatted, writeSummary } from '../report/summary.js';
import { infoUntrusted } from '../report/untrusted.js';
import type { Role } from '../rollout/ports.js';
import { selectEnvironment } from '../config/environment.js';
import { connect, onEveryHost } from '../pipeline/preflight.js';

interface ContainerLogs {
  host: string;
  /** master, backup, or a role beside the web role (a worker). */
  role: string;
  /** `APP (v1.4.0)`, or why there is nothing to show. */
  title: string;
  text: string;
}

const ROLES: Role[] = ['master', 'backup'];

export async function logs(inputs: Inputs, config: Config): Promise<Record<string, string>> {
  const env = selectEnvironment(config, inputs.environment);
  // An app may print its own secrets: those the step's env has are masked in the log and redacted from the summary.
  for (const name of [...env.container.secrets, ...env.roles.flatMap((r) => r.secrets)]) maskSecret(process.env[name] ?? '');
  const connected = await connect(inputs, config, env);
  try {
    const read = await onEveryHost(connected.hosts, 'Reading the containers\' logs', async (host) => {
      const trust = { repository: config.image, warn: (line: string) => core.warning(line) };
      const found = await host.containers(config.app, trust);
      // The roles beside the web role (workers) follow, each container by its name.
      const roles = (await host.roleContainers(config.app, trust)).filter((c) => !c.name.endsWith('-previous'));
      const entry = async (role: string, container: { id: string; name: string; running: boolean; release?: { version: string } }): Promise<ContainerLogs> => {
        const version = container.release?.version ?? 'unknown release';
        return { host: host.host, role, title: `${container.name} (${version}${container.running ? '' : ', not running'})`, text: await host.tailLogs(container.id, container.name, inputs.lines) };
      };
      return Promise.all([
        ...ROLES.map(async (role): Promise<ContainerLogs> => {
          const container = found[role];
          return container ? entry(role, container) : { host: host.host, role, title: 'no container', text: '' };
        }),
        ...roles.map((container) => entry(container.role, container)),
      ]);
    });
    const all = env.hosts.flatMap((host) => read.get(host) ?? []);
    for (const entry of all) {
      await core.group(`${entry.host} ${entry.role}: ${entry.title}`, async () => infoUntrusted(entry.text.trimEnd() || '(no output)'));
    }
    await writeSummary((s) => {
      s.addHeading(`Logs of ${env.name}: the last ${inputs.lines} lines of each container`, 3);
      for (const entry of all) {
        s.addRaw(`<details><summary>${htmlText(`${entry.host} ${entry.role}: ${entry.title}`)}</summary>\n${preformatted(entry.text.trimEnd() || '(no output)')}</details>\n`, true);
      }
    });
    return {};
  } finally {
    connected.dispose();
  }
}
