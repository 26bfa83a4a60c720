// The example workflows, the CI workflow and action.yml against GitHub's published schemas (as
// @action-validator/core bundles them), and the copies of the examples in README.md and docs/ against the files.
import { validateAction, validateWorkflow } from '@action-validator/core';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseDocument } from 'yaml';
import { GITHUB_OPERATIONS } from '../../src/drivers/github.js';
import { specOperations } from '../integration/support/github-spec.js';
import { docPages, yamlBlocks } from './support/docs.js';
import { problems } from './support/workflow-check.js';

const ROOT = resolve(import.meta.dirname, '../..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const EXAMPLES = ['examples/workflows/release.yml', 'examples/workflows/rollback.yml', 'examples/workflows/check.yml', 'examples/workflows/haproxy-config.yml'];
/** The day-2 commands' examples: each run by hand, bound to the environment it acts on. */
const DAY2 = ['examples/workflows/unlock.yml', 'examples/workflows/logs.yml', 'examples/workflows/run.yml'];
/** The project's own workflows (ci, mutation, ...): every file there, so a new one is validated too. */
const OWN_WORKFLOWS = readdirSync(join(ROOT, '.github/workflows')).map((file) => `.github/workflows/${file}`);

/**
 * The validator's bundled schema (a SchemaStore snapshot) lists node12, node16 and node20 for
 * runs.using; GitHub runs node24 actions, so action.yml is validated with that one value swapped.
 */
function withKnownRuntime(actionYaml: string): string {
  const doc = parseDocument(actionYaml);
  expect(doc.getIn(['runs', 'using'])).toBe('node24');
  doc.setIn(['runs', 'using'], 'node20');
  return String(doc);
}

describe('workflows and action metadata are valid', () => {
  it.each([...EXAMPLES, ...DAY2, ...OWN_WORKFLOWS])('%s', (path) => {
    expect(problems(validateWorkflow(read(path)))).toBe('');
  });

  it('action.yml', () => {
    expect(problems(validateAction(withKnownRuntime(read('action.yml'))))).toBe('');
  });
});

describe('the validator', () => {
  it.each([
    ['an unknown key', 'on: push\njobs:\n  test:\n    runs-on: ubuntu-24.04\n    stepz:\n      - run: echo\n', "/jobs/test: Additional property 'stepz' is not allowed"],
    ['broken YAML', 'on: [push\njobs: {}\n', "/: did not find expected ',' or ']' at line 2 column 5"],
  ])('fails a workflow with %s, saying where', (_name, yaml, expected) => {
    expect(problems(validateWorkflow(yaml))).toContain(expected);
  });

  // Each of these pins a gap in the bundled schema; when one fails, the validator caught up:
  // drop withKnownRuntime, or use `deployment: false` in the examples (see docs/workflows.md).
  it('still rejects runs.using: node24 (hence withKnownRuntime)', () => {
    expect(problems(validateAction(read('action.yml')))).toContain('/runs/using: Enum conditions are not met');
  });

  it('still rejects environment.deployment: false, which GitHub documents', () => {
    const yaml = 'on: push\njobs:\n  test:\n    runs-on: ubuntu-24.04\n    environment: { name: staging, deployment: false }\n    steps:\n      - run: echo\n';
    expect(problems(validateWorkflow(yaml))).toContain("Additional property 'deployment' is not allowed");
  });
});

describe('README.md and docs/ show the example workflows as they are', () => {
  const blocks = docPages().flatMap((page) => yamlBlocks(page.text));

  it.each([...EXAMPLES, ...DAY2])('%s', (path) => {
    const file = read(path);
    expect(file.startsWith(`# ${path}\n`)).toBe(true);
    const copies = blocks.filter((block) => block.startsWith(`# ${path}\n`));
    expect(copies.length, `no \`\`\`yaml block in README.md or docs/ starts with "# ${path}"`).toBeGreaterThan(0);
    for (const copy of copies) expect(copy).toBe(file);
  });

  it('finds the blocks and compares them byte for byte', () => {
    const markdown = ['Intro', '```yaml', '# a.yml', 'on: push', '```', '', '```yaml', '# a.yml', 'on: pull_request ', '```', '```sh', 'echo', '```', ''].join('\n');
    expect(yamlBlocks(markdown)).toEqual(['# a.yml\non: push\n', '# a.yml\non: pull_request \n']);
  });
});

describe('the GitHub permissions the action needs', () => {
  // deploy and rollback reach GitHub (src/pipeline/index.ts, through gates.ts and lock.ts),
  // each through every operation: the run's approvals and the environment (require-approval),
  // deployments and statuses (promote-from, previous, the record), a workflow run (stale lock).
  // build, plan and haproxy-config call none.
  const COMMANDS_USING_GITHUB = new Set(['deploy', 'rollback']);
  const needed = [...new Set(Object.values(GITHUB_OPERATIONS))];

  type Permissions = string | Record<string, string> | undefined;
  /** Whether a job's `permissions:` grants `scope: level` to GITHUB_TOKEN (write includes read). */
  function grants(permissions: Permissions, permission: string): boolean {
    const [scope, level] = permission.split(': ') as [string, 'read' | 'write'];
    if (permissions === 'write-all') return true;
    if (permissions === 'read-all') return level === 'read';
    // No permissions: key at all leaves the repository's default, which may be read-only or
    // none: an example must say what it needs.
    const given = typeof permissions === 'object' ? permissions[scope] : undefined;
    return given === 'write' || (given === 'read' && level === 'read');
  }

  /** Each job's effective permissions (a job's replace the workflow's) and the commands its steps run. */
  function jobs(yaml: string): Array<{ job: string; permissions: Permissions; commands: string[] }> {
    const workflow = parse(yaml) as { permissions?: Permissions; jobs: Record<string, { permissions?: Permissions; steps?: Array<{ uses?: string; with?: { command?: string } }> }> };
    return Object.entries(workflow.jobs).map(([job, definition]) => ({
      job,
      permissions: definition.permissions ?? workflow.permissions,
      commands: (definition.steps ?? []).filter((step) => step.uses?.startsWith('clay/deploy-action@')).map((step) => String(step.with?.command)),
    }));
  }

  /** `job: permission` for every permission a job's commands need and its permissions lack. */
  const missing = (yaml: string) =>
    jobs(yaml).flatMap(({ job, permissions, commands }) =>
      commands.some((c) => COMMANDS_USING_GITHUB.has(c)) ? needed.filter((p) => !grants(permissions, p)).map((p) => `${job}: ${p}`) : [],
    );

  // check.yml and haproxy-config.yml run neither deploy nor rollback (check reads the environment's reviewers only).
  it.each(EXAMPLES.filter((path) => !path.endsWith('/check.yml') && !path.endsWith('/haproxy-config.yml')))('%s grants them to every job that runs deploy or rollback', (path) => {
    const found = jobs(read(path));
    expect(found.flatMap((j) => j.commands).some((c) => COMMANDS_USING_GITHUB.has(c))).toBe(true);
    expect(missing(read(path))).toEqual([]);
  });

  it('a job without them is found, whatever the workflow grants', () => {
    const step = '      - uses: clay/deploy-action@v1\n        with: { command: deploy }\n';
    const yaml = `permissions: { deployments: write, actions: read }\njobs:\n  deploy:\n    permissions: { contents: read, deployments: read }\n    steps:\n${step}  build:\n    permissions: {}\n    steps:\n      - uses: clay/deploy-action@v1\n        with: { command: build }\n`;
    expect(missing(yaml)).toEqual(['deploy: actions: read', 'deploy: deployments: write']);
    expect(missing(`permissions: write-all\njobs:\n  deploy:\n    steps:\n${step}`)).toEqual([]);
  });

  it('docs/workflows.md lists each operation with its request and permission', () => {
    const readme = read('docs/workflows.md');
    for (const [operationId, permission] of Object.entries(GITHUB_OPERATIONS)) {
      const op = specOperations().find((o) => o.operationId === operationId)!;
      const row = new RegExp(`^\\| \`${operationId}\` \\| \`${op.method} ${op.path.replace(/[{}]/g, '\\$&')}\` \\| \`${permission}\` \\|`, 'm');
      expect(readme, `docs/workflows.md has no row | \`${operationId}\` | \`${op.method} ${op.path}\` | \`${permission}\` | ...`).toMatch(row);
    }
  });
});

describe('the day-2 examples', () => {
  type Job = { environment?: unknown; permissions?: Record<string, string>; steps: Array<{ uses?: string; with?: Record<string, unknown> }> };
  const workflow = (path: string) => parse(read(path)) as { on: { workflow_dispatch?: { inputs: Record<string, unknown> } }; jobs: Record<string, Job> };

  // Bound to the chosen environment: its secrets, and its reviewers' approval, gate the command.
  it.each(DAY2)('%s runs by hand, its job bound to the environment its command acts on', (path) => {
    const { on, jobs } = workflow(path);
    expect(on.workflow_dispatch?.inputs).toHaveProperty('environment');
    const command = path.replace(/^.*\/(\w+)\.yml$/, '$1');
    const [job] = Object.values(jobs);
    expect(job!.environment).toBe('${{ inputs.environment }}');
    const step = job!.steps.find((s) => s.uses?.startsWith('clay/deploy-action@'));
    expect(step?.with).toMatchObject({ command, environment: '${{ inputs.environment }}', 'ssh-private-key': '${{ secrets.DEPLOY_SSH_KEY }}' });
  });

  it('unlock.yml may ask GitHub whether the holder\'s run has ended', () => {
    const [job] = Object.values(workflow('examples/workflows/unlock.yml').jobs);
    expect(job!.permissions?.actions).toBe('read');
    expect(GITHUB_OPERATIONS['actions/get-workflow-run']).toBe('actions: read');
  });
});
