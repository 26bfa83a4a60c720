// The newcomer's path: docs/getting-started.md followed, step by step, on a clean host (bare1) and
// load balancer (lb-bare) that `estate.sh bare up` builds from scratch: Docker, sshd and HAProxy
// as their Debian packages install them, no deploy user, no app container, no backend. Every `sh`
// block of the page runs where its first line says, in the page's order; the page's config is
// the one deployed; `check` must pass, and the first deploy and the next release must fail no
// request.
//
// Where the estate is not a real machine, and only there, the test stands in (nothing else of
// the page is changed or added):
// - addresses: the page's staging host and load balancer (10.0.0.11, 10.0.0.10) are bare1 and
//   lb-bare; the image is the estate registry's clay/newcomer; the registry is plain HTTP (the engine is
//   started with --insecure-registry, as a real one would have TLS);
// - copying a file to a host (deploy_key.pub, deploy-action.cfg): the nodes share this machine's
//   file system, so every block runs in the same working directory;
// - `systemctl reload haproxy`: there is no systemd in a node; what Debian's unit runs instead
//   (USR2 to HAProxy's master), then a wait for the new worker;
// - the workflows (haproxy-config, check, release): run as a runner runs the action, with the
//   inputs the example workflows pass and the secrets of step 6 as those inputs; the release's
//   build job is the test app's build and push (the build command has its own tests).
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runAction, type ActionRun } from './support/action.js';
import { REPO_ROOT, execIn, loadEstate, type Estate } from './support/estate.js';
import { startGitHub, type GitHubStandIn } from './support/github.js';
import { pushTestApp } from './support/images.js';
import { underLoad } from './support/load.js';

const run = promisify(execFile);
const ESTATE = join(REPO_ROOT, 'test/estate/estate.sh');
const PAGE = readFileSync(join(REPO_ROOT, 'docs/getting-started.md'), 'utf8');
const HOST = { node: 'bare1', address: '10.231.0.41', page: '10.0.0.11' };
const LB = { node: 'lb-bare', address: '10.231.0.40', page: '10.0.0.10' };
/** Its own repository in the estate registry: no other test pushes there. */
const repository = () => `${estate.registry.address}/clay/newcomer`;

type Where = 'machine' | 'repository' | 'hosts' | 'load balancers' | 'hosts and load balancers';
const WHERE: Record<string, Where> = {
  '# on your machine': 'machine',
  '# on your machine, in your repository': 'repository',
  '# on each host, as root': 'hosts',
  '# on each load balancer, as root': 'load balancers',
  '# on each host and load balancer, as root': 'hosts and load balancers',
};

interface Block {
  section: string;
  where: Where;
  script: string;
}

/** The page's `sh` blocks in order (indented ones in lists too), each with its section and place. */
export function shBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  let section = '';
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const heading = /^## (.+)$/.exec(lines[i]!);
    if (heading) section = heading[1]!;
    const open = /^( *)```sh$/.exec(lines[i]!);
    if (!open) continue;
    const indent = open[1]!.length;
    const body: string[] = [];
    for (i++; lines[i] !== `${open[1]}\`\`\``; i++) {
      if (i >= lines.length) throw new Error(`an unclosed sh block in section ${section}`);
      body.push(lines[i]!.slice(indent));
    }
    const where = WHERE[body[0]!];
    if (!where) throw new Error(`section ${section}: an sh block must start with one of ${Object.keys(WHERE).join(' | ')}; this one starts with ${body[0]}`);
    blocks.push({ section, where, script: body.slice(1).join('\n') });
  }
  return blocks;
}

/** The page's deploy config: its yaml block naming .github/deploy.yml. */
function pageConfig(): string {
  const block = [...PAGE.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!).find((b) => b.startsWith('# .github/deploy.yml\n'));
  if (!block) throw new Error('docs/getting-started.md has no yaml block starting with # .github/deploy.yml');
  return block;
}

let estate: Estate;
let github: GitHubStandIn;
let workdir: string;
let workspace: string;
const ran: string[] = [];

const onEstate = (text: string) => text.replaceAll(HOST.page, HOST.address).replaceAll(LB.page, LB.address);

/** What Debian's haproxy.service does on reload, then a wait until the new worker answers on :80. */
const RELOAD = `kill -USR2 "$(cat /run/haproxy.pid)"
for i in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/80) 2>/dev/null && break; sleep 0.1; done
(exec 3<>/dev/tcp/127.0.0.1/80) 2>/dev/null || { echo "HAProxy answers nothing on :80 10 s after the reload" >&2; exit 1; }`;

async function runBlock(block: Block): Promise<Record<string, string>> {
  const script = `set -euo pipefail\ncd ${workdir}\n${onEstate(block.script).replaceAll('systemctl reload haproxy', RELOAD)}`;
  const nodes = { hosts: [HOST.node], 'load balancers': [LB.node], 'hosts and load balancers': [HOST.node, LB.node], machine: [], repository: [] }[block.where];
  const out: Record<string, string> = {};
  if (block.where === 'machine') out.machine = (await run('bash', ['-c', script], { cwd: workdir })).stdout;
  for (const node of nodes) out[node] = await execIn(node, 'bash', '-c', script);
  ran.push(`${block.section}: ${block.where}`);
  return out;
}

/** The secrets and variables of step 6, as the example workflows pass them to the action. */
function secrets(): Record<string, string> {
  return {
    'registry-username': estate.registry.username,
    'registry-password': estate.registry.password,
    'ssh-private-key': readFileSync(join(workdir, 'deploy_key'), 'utf8'),
    'ssh-known-hosts': readFileSync(join(workdir, 'known_hosts'), 'utf8'),
  };
}

/** A workflow's deploy-action step, as the runner runs it, with the example's inputs. */
function runStep(inputs: Record<string, string>, ref = 'refs/heads/main'): Promise<ActionRun> {
  return runAction({ workspace, ref, inputs: { 'github-token': 'test-token', ...inputs }, env: { GITHUB_API_URL: github.url } });
}

beforeAll(async () => {
  estate = loadEstate();
  github = await startGitHub();
  github.environments.set('staging', { reviewers: 0 });
  github.environments.set('production', { reviewers: 1 });
  await run('bash', [ESTATE, 'bare', 'up'], { maxBuffer: 16 * 1024 * 1024 });
  workdir = mkdtempSync(join(tmpdir(), 'newcomer-'));
  workspace = mkdtempSync(join(tmpdir(), 'newcomer-repo-'));
  mkdirSync(join(workspace, '.github'));
}, 300_000);

afterAll(async () => {
  await github?.close();
  await run('bash', [ESTATE, 'bare', 'down']);
}, 120_000);

describe('docs/getting-started.md, followed on a clean host and load balancer', () => {
  it('starts from a clean machine: Docker, sshd and HAProxy running, no deploy user, no backend', async () => {
    await expect(execIn(HOST.node, 'id', 'deploy')).rejects.toThrow();
    expect(await execIn(HOST.node, 'docker', 'ps', '-aq')).toBe('');
    const stat = await execIn(LB.node, 'sh', '-c', 'echo "show stat" | socat stdio /run/haproxy/admin.sock');
    expect(stat).not.toMatch(/myapp|50000/);
  });

  it('every step, in order, ends in a check that passes and a first deploy that fails no request', async () => {
    const blocks = shBlocks(PAGE);
    // The sections the test acts in for GitHub (the workflows): the page must still have them.
    const sections = [...PAGE.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    for (const section of ['4. HAProxy on the load balancers', '9. Check', '10. The first deploy', '11. The next release']) expect(sections).toContain(section);

    writeFileSync(join(workspace, '.github/deploy.yml'), onEstate(pageConfig()).replace('registry.example.com/team/myapp', repository()));
    let checked: ActionRun | undefined;
    const deployed: Array<{ version: string; run: ActionRun; load: Awaited<ReturnType<typeof underLoad>>[1] }> = [];
    for (const section of sections) {
      if (section === '4. HAProxy on the load balancers') {
        // examples/workflows/haproxy-config.yml (no secret); its output saved as deploy-action.cfg.
        const printed = await runStep({ command: 'haproxy-config', environment: 'staging' });
        expect(printed.code, printed.log).toBe(0);
        writeFileSync(join(workdir, 'deploy-action.cfg'), printed.outputs['haproxy-config']!);
      }
      for (const block of blocks.filter((b) => b.section === section)) {
        if (block.where === 'repository') {
          // git tag vX && git push: the release workflow's build job, then its staging job, under
          // load through the load balancer (for the first deploy, counted from the first answer:
          // empty hosts serve nothing before it).
          const version = /git tag (v\S+)/.exec(block.script)?.[1];
          expect(version, block.script).toBeDefined();
          const release = await pushTestApp(estate, { repository: repository(), version: version! });
          const [run, load] = await underLoad(
            `http://${LB.address}/`,
            () => runStep({ command: 'deploy', environment: 'staging', version: version!, digest: release.digest, ...secrets() }, `refs/tags/${version}`),
            deployed.length === 0,
          );
          deployed.push({ version: version!, run, load });
          continue;
        }
        const out = await runBlock(block);
        if (block.script.includes('ssh-keyscan')) {
          // Step 5: the fingerprints scanned match what each machine says of its own key.
          const scanned = out.machine!;
          for (const node of [HOST.node, LB.node]) {
            const own = (await execIn(node, 'ssh-keygen', '-lf', '/etc/ssh/ssh_host_ed25519_key.pub')).split(' ')[1]!;
            expect(scanned).toContain(own);
          }
        }
      }
      if (section === '9. Check') {
        // examples/workflows/check.yml for staging.
        checked = await runStep({ command: 'check', environment: 'staging', ...secrets() });
      }
    }

    expect(ran.length).toBe(blocks.filter((b) => b.where !== 'repository').length);
    expect(checked?.code, checked?.log).toBe(0);
    expect(checked!.outputs.check).not.toMatch(/^FAIL/m);
    expect(deployed.map((d) => d.version), 'the release steps (# on your machine, in your repository)').toEqual(['v1.0.0', 'v1.1.0']);
    for (const { version, run, load } of deployed) {
      expect(run.code, run.log).toBe(0);
      console.info(`deploy ${version} through ${LB.address}: ${load.sent} requests sent, ${load.failed} failed over ${load.seconds.toFixed(1)} s (${JSON.stringify(load.versions)})`);
      expect(load.failed, load.failures.join('\n')).toBe(0);
      expect(load.ok).toBeGreaterThan(0);
    }
    expect(Object.keys(deployed[0]!.load.versions)).toEqual(['v1.0.0']);
    // The next release: the old one served until the new one took over, no request failed.
    expect(Object.keys(deployed[1]!.load.versions)).toEqual(['v1.0.0', 'v1.1.0']);
    const running = await execIn(HOST.node, 'docker', 'ps', '--format', '{{.Names}} {{.Label "deploy-action.version"}}');
    expect(running.split('\n').filter(Boolean).sort()).toEqual(['myapp v1.1.0', 'myapp-backup v1.1.0']);
  }, 600_000);
});

describe('the page reader', () => {
  it('finds sh blocks, indented ones too, and says where each runs', () => {
    const page = ['## 1. One', '```sh', '# on your machine', 'echo a', '```', '- a list', '  ```sh', '  # on each host, as root', '  echo b', '  ```', ''].join('\n');
    expect(shBlocks(page)).toEqual([
      { section: '1. One', where: 'machine', script: 'echo a' },
      { section: '1. One', where: 'hosts', script: 'echo b' },
    ]);
  });

  it('refuses a block that does not say where it runs', () => {
    expect(() => shBlocks('## 2. Two\n```sh\necho c\n```\n')).toThrow('must start with one of');
  });
});
