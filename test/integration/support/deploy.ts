// Runs command: deploy (or plan, rollback) the way a workflow job would, against an
// environment of the estate, and reads back what each host runs, independently of the action.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAction, type ActionOptions, type ActionRun } from './action.js';
import { execIn, nodeOf, type Estate } from './estate.js';

export interface DeployConfigOptions {
  environment: 'staging' | 'production';
  /** Drop the haproxy section (the seed's way: rely on HAProxy's own health checks). */
  withoutHaproxy?: boolean;
  /** Extra top-level YAML lines (e.g. `lock: { takeover: true }`). */
  extra?: string;
  /** Extra keys of the ssh section (e.g. `keepalive-interval: 2`). */
  ssh?: string;
  /** The haproxy section's keys after hosts, socket and backend (default `drain-timeout: 10`). */
  haproxy?: string;
  /** container.stop-timeout (default 10). */
  stopTimeout?: number;
  /** Hosts of the environment to use (default: the first two). */
  hosts?: string[];
  /** Load balancers of the environment to drive (default: all of the estate's). */
  loadBalancers?: string[];
  repository?: string;
  /** Both environments in the file, each with these extra lines (e.g. its gates). */
  bothEnvironments?: Record<'staging' | 'production', string>;
}

export function deployConfig(estate: Estate, options: DeployConfigOptions): string {
  const lb = (name: 'staging' | 'production') => estate.environments[name].lb;
  // Every load balancer of the environment (production has two), unless a test names its own.
  const lbHosts = (name: 'staging' | 'production') =>
    `[${(name === options.environment && options.loadBalancers ? options.loadBalancers : estate.environments[name].lbs.map((l) => l.address)).join(', ')}]`;
  const haproxy = options.withoutHaproxy
    ? ''
    : `haproxy: { hosts: ${lbHosts(options.environment)}, socket: ${lb(options.environment).socket}, backend: ${lb(options.environment).backend}, ${options.haproxy ?? 'drain-timeout: 10'} }\n`;
  const environment = (name: 'staging' | 'production', extra: string) => {
    const hosts = name === options.environment && options.hosts ? options.hosts : estate.environments[name].hosts.slice(0, 2);
    // Each environment has its own load balancer.
    const own = options.withoutHaproxy || name === options.environment ? '' : `    haproxy: { hosts: ${lbHosts(name)} }\n`;
    return `  ${name}:\n    hosts: [${hosts.join(', ')}]\n${own}${extra ? `    ${extra}` : ''}`;
  };
  const environments = options.bothEnvironments
    ? (['staging', 'production'] as const).map((name) => environment(name, options.bothEnvironments![name])).join('')
    : environment(options.environment, '');
  return `app: demo
image: ${options.repository ?? `${estate.registry.address}/clay/demo`}
container: { port: 3000, stop-timeout: ${options.stopTimeout ?? 10}, init: true, env: { GREETING: hello }, secrets: [APP_SECRET] }
ports: { master: 50000, backup: 50001 }
health: { path: /healthcheck, timeout: 20, interval: 1 }
ssh: { user: ${estate.sshUser}, port: 22, connect-timeout: 5${options.ssh ? `, ${options.ssh}` : ''} }
${haproxy}${options.extra ?? ''}
environments:
${environments}`;
}

export const APP_SECRET = 'app-s3cret-value-4e1b9';

export interface DeployRunOptions extends DeployConfigOptions {
  command?: 'deploy' | 'plan' | 'rollback' | 'haproxy-config' | 'check' | 'status' | 'unlock' | 'logs' | 'run';
  /** More inputs of the command (reason, lines, task, timeout). */
  inputs?: Record<string, string>;
  version: string;
  digest?: string;
  githubUrl?: string;
  knownHosts?: string;
  registryPassword?: string;
  runId?: string;
  /** GITHUB_RUN_ATTEMPT: 2 and up for a re-run (default 1). */
  runAttempt?: string;
  /** command: rollback's version input (the run itself is a workflow_dispatch on main). */
  rollbackTo?: string;
  /** command: rollback's allow-never-deployed input. */
  allowNeverDeployed?: boolean;
  onStart?: ActionOptions['onStart'];
  onOutput?: ActionOptions['onOutput'];
  post?: ActionOptions['post'];
}

export async function runDeploy(estate: Estate, options: DeployRunOptions): Promise<ActionRun> {
  const workspace = mkdtempSync(join(tmpdir(), 'workspace-'));
  mkdirSync(join(workspace, '.github'));
  writeFileSync(join(workspace, '.github/deploy.yml'), deployConfig(estate, options));
  return runAction({
    workspace,
    ref: options.rollbackTo === undefined ? `refs/tags/${options.version}` : 'refs/heads/main',
    inputs: {
      command: options.command ?? 'deploy',
      environment: options.environment,
      ...(options.rollbackTo ? { version: options.rollbackTo } : {}),
      ...(options.digest ? { digest: options.digest } : {}),
      ...(options.allowNeverDeployed ? { 'allow-never-deployed': 'true' } : {}),
      'registry-username': estate.registry.username,
      'registry-password': options.registryPassword ?? estate.registry.password,
      'ssh-private-key': readFileSync(estate.sshKey, 'utf8'),
      'ssh-known-hosts': options.knownHosts ?? readFileSync(estate.knownHosts, 'utf8'),
      // No stand-in, no token: the action then keeps no GitHub records (and asks nothing of
      // api.github.com, which this machine cannot reach).
      ...(options.githubUrl ? { 'github-token': 'test-token' } : {}),
      ...options.inputs,
    },
    env: {
      APP_SECRET,
      GITHUB_RUN_ID: options.runId ?? String(2000 + Math.floor(Math.random() * 1e6)),
      ...(options.runAttempt ? { GITHUB_RUN_ATTEMPT: options.runAttempt } : {}),
      ...(options.githubUrl ? { GITHUB_API_URL: options.githubUrl } : {}),
    },
    ...(options.onStart ? { onStart: options.onStart } : {}),
    ...(options.onOutput ? { onOutput: options.onOutput } : {}),
    ...(options.post ? { post: options.post } : {}),
  });
}

export interface SeenContainer {
  id: string;
  name: string;
  image: string;
  state: string;
  version: string;
}

/** What a host runs, asked of its engine directly (not through the action's drivers). */
export async function containersOn(estate: Estate, host: string): Promise<SeenContainer[]> {
  const out = await execIn(nodeOf(estate, host), 'docker', 'ps', '-a', '--no-trunc', '--format',
    '{{.ID}}\t{{.Names}}\t{{.Image}}\t{{.State}}\t{{.Label "deploy-action.version"}}');
  return out.trim().split('\n').filter(Boolean).map((line) => {
    const [id = '', name = '', image = '', state = '', version = ''] = line.split('\t');
    return { id, name, image, state, version };
  }).sort((a, b) => a.name.localeCompare(b.name));
}

/** Version each app container runs, per host: { '10.231.0.11': { demo: 'v1.0.0', 'demo-backup': ... } }. */
export async function versionsOn(estate: Estate, hosts: string[]): Promise<Record<string, Record<string, string>>> {
  const out: Record<string, Record<string, string>> = {};
  for (const host of hosts) {
    out[host] = Object.fromEntries(
      (await containersOn(estate, host)).filter((c) => c.name === 'demo' || c.name === 'demo-backup').map((c) => [c.name, `${c.version} ${c.state}`]),
    );
  }
  return out;
}

/** Removes the app's containers and lock from hosts, and puts their HAProxy servers back. */
export async function clearHosts(estate: Estate, hosts: string[]): Promise<void> {
  for (const host of hosts) {
    const names = (await containersOn(estate, host)).map((c) => c.name).filter((n) => n.startsWith('demo'));
    if (names.length > 0) await execIn(nodeOf(estate, host), 'docker', 'rm', '-f', ...names);
  }
}
