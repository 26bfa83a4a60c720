// Every example in README.md and docs/ is checked, not just shown: each ```yaml block is a
// workflow (GitHub's schema, through @action-validator/core), a step list (validated inside a
// job), a whole deploy config (the parser and deploy.schema.json), or a part of one (the same,
// merged into a minimal config); a block that is none of these fails, and so does a workflow or
// config in a fence not marked yaml, which would escape the check.
import { validateWorkflow } from '@action-validator/core';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { committedSchema, parserErrors, schemaErrors } from './support/config-check.js';
import { docPages, yamlBlocks } from './support/docs.js';
import { problems } from './support/workflow-check.js';

type Kind = 'workflow' | 'steps' | 'config' | 'config part' | 'comment';

/** What a block is, by its top-level keys. */
export function kindOf(yaml: string): Kind | `unrecognised: ${string}` {
  const value: unknown = parse(yaml);
  if (value === null || value === undefined) return 'comment';
  if (Array.isArray(value)) return value.every((step) => typeof step === 'object' && step !== null && ('uses' in step || 'run' in step)) ? 'steps' : 'unrecognised: a list that is not workflow steps';
  if (typeof value !== 'object') return `unrecognised: ${typeof value}`;
  const keys = Object.keys(value);
  if (keys.includes('jobs')) return 'workflow';
  if (keys.includes('environments')) return 'config';
  const known = Object.keys((committedSchema as { properties: Record<string, unknown> }).properties);
  const unknown = keys.filter((key) => !known.includes(key));
  return unknown.length ? `unrecognised: keys ${unknown.join(', ')} are neither a workflow's nor a deploy config's` : 'config part';
}

/** The smallest config a part is merged into: one environment behind one load balancer. */
const MINIMAL = { app: 'myapp', image: 'registry.example.com/team/myapp', container: { port: 3000 }, haproxy: { host: '10.0.0.10', backend: 'myapp' }, environments: { staging: { hosts: ['10.0.0.11'] } } };

function merge(base: Record<string, unknown>, part: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(part)) {
    const under = out[key];
    out[key] = typeof value === 'object' && value !== null && !Array.isArray(value) && typeof under === 'object' && under !== null ? merge(under as Record<string, unknown>, value as Record<string, unknown>) : value;
  }
  return out;
}

function workflowErrors(yaml: string): string[] {
  const found = problems(validateWorkflow(yaml));
  return found ? found.split('\n') : [];
}

/** Every problem of one block, as the judge of its kind reports it. */
export function blockProblems(yaml: string): string[] {
  const kind = kindOf(yaml);
  switch (kind) {
    case 'comment':
      return [];
    case 'workflow':
      return workflowErrors(yaml);
    case 'steps':
      return workflowErrors(stringify({ on: 'push', jobs: { example: { 'runs-on': 'ubuntu-24.04', steps: parse(yaml) } } }));
    case 'config':
      return [...parserErrors(yaml), ...schemaErrors(yaml)];
    case 'config part': {
      const whole = stringify(merge(MINIMAL, parse(yaml) as Record<string, unknown>));
      return [...parserErrors(whole), ...schemaErrors(whole)];
    }
    default:
      return [kind];
  }
}

const blocks = docPages().flatMap((page) => yamlBlocks(page.text).map((yaml, i) => ({ name: `${page.path} yaml block ${i + 1}`, yaml })));

describe('the examples in README.md and docs/', () => {
  it.each(blocks.map((b) => [b.name, b.yaml] as const))('%s is valid', (_name, yaml) => {
    expect(blockProblems(yaml)).toEqual([]);
  });

  it('include workflows and configs', () => {
    const kinds = new Set(blocks.map((b) => kindOf(b.yaml)));
    for (const kind of ['workflow', 'config', 'config part'] as const) expect(kinds).toContain(kind);
  });

  it('show one file the same wherever they name it (a first line "# path")', () => {
    const byFile = new Map<string, Set<string>>();
    for (const { yaml } of blocks) {
      const file = /^# ([\w./-]+\.ya?ml)\n/.exec(yaml)?.[1];
      if (file) byFile.set(file, (byFile.get(file) ?? new Set()).add(yaml));
    }
    expect(byFile.get('.github/deploy.yml')?.size, 'README.md and docs/getting-started.md show .github/deploy.yml').toBe(1);
    expect([...byFile].filter(([, copies]) => copies.size > 1).map(([file]) => file)).toEqual([]);
  });

  it('keep every workflow and config in a yaml fence', () => {
    const fences = docPages().flatMap((page) => [...page.text.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].filter((m) => m[1] !== 'yaml').map((m) => ({ page: page.path, text: m[2]! })));
    const escaped = fences.filter((f) => /^(jobs|environments):|uses: clay\/deploy-action@/m.test(f.text)).map((f) => `${f.page}: ${f.text.split('\n')[0]}`);
    expect(escaped).toEqual([]);
  });
});

describe('the example checker', () => {
  it.each([
    ['a misspelled config key', 'app: a\nimage: r/a\ncontainer: { port: 3000, stop-timout: 3 }\nenvironments: { s: { hosts: [h1] } }\n', 'container.stop-timout: unknown key'],
    ['a wrong type in a config part', 'canary: { hold: soon }\n', 'canary.hold: expected a whole number'],
    ['a workflow with a misspelled key', 'on: push\njobs:\n  a:\n    runs-on: ubuntu-24.04\n    stepz: []\n', "Additional property 'stepz' is not allowed"],
    ['steps with a misspelled key', '- uses: clay/deploy-action@v1\n  whith: { command: build }\n', "Additional property 'whith' is not allowed"],
    ['something else', 'frontend: web\n', 'unrecognised: keys frontend'],
  ])('fails %s', (_name, yaml, expected) => {
    expect(blockProblems(yaml).join('\n')).toContain(expected);
  });
});
