// deploy.schema.json: generated from the parser's own readers, committed, and held to the same
// configs as the parser with a real JSON Schema validator (Ajv, draft 2020-12): the test fixtures
// and the configs the integration tests run the estate with (the configs of README.md and docs/
// are held to both in doc-examples.test.ts). A misspelled key and a wrong type are caught by both
// the schema and the parser.
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deployConfigJsonSchema } from '../../src/config/json-schema.js';
import { deployConfig, type DeployConfigOptions } from '../integration/support/deploy.js';
import type { Estate } from '../integration/support/estate.js';
import { committedSchema as committed, parserErrors, schemaErrors } from './support/config-check.js';

const ROOT = resolve(import.meta.dirname, '../..');
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const fakeEstate = {
  registry: { address: '10.231.0.2:5000', username: 'ci', password: 'x' },
  sshUser: 'deploy',
  environments: Object.fromEntries((['staging', 'production'] as const).map((name, i) => {
    const lb = (n: number) => ({ address: `10.231.0.${10 * (i + 1) + n}`, frontend: '', backend: 'app', socket: '/run/haproxy/admin.sock' });
    return [name, { lb: lb(0), lbs: i ? [lb(0), { ...lb(0), address: '10.231.0.30' }] : [lb(0)], hosts: [`10.231.0.${11 + 10 * i}`, `10.231.0.${12 + 10 * i}`] }];
  })),
} as unknown as Estate;
const estateVariants: DeployConfigOptions[] = [
  { environment: 'staging' },
  { environment: 'production' },
  { environment: 'staging', withoutHaproxy: true },
  { environment: 'production', bothEnvironments: { staging: '', production: 'require-approval: true\n    promote-from: staging\n' }, extra: 'lock: { takeover: true }\n' },
];

describe('deploy.schema.json', () => {
  it('is what the source generates (run npm run build and commit it)', () => {
    expect(committed).toEqual(deployConfigJsonSchema());
  });

  it('describes every key, and gives the default of every key that has one', () => {
    const walk = (node: unknown, path: string): string[] => {
      if (typeof node !== 'object' || node === null) return [];
      const { properties } = node as { properties?: Record<string, Record<string, unknown>> };
      return [
        ...Object.entries(properties ?? {}).flatMap(([key, child]) => [...(child.description ? [] : [`${path}${key}`]), ...walk(child, `${path}${key}.`)]),
        ...walk((node as { additionalProperties?: unknown }).additionalProperties, `${path}*.`),
      ];
    };
    expect(walk(committed, '')).toEqual([]);
    const container = (committed.properties as Record<string, { properties: Record<string, { default?: unknown }> }>).container!.properties;
    expect(container['stop-timeout']!.default).toBe(30);
    expect(container.restart!.default).toBe('on-failure');
  });

  it.each([
    ['test/unit/fixtures/full.yml', read('test/unit/fixtures/full.yml')] as const,
    ...estateVariants.map((options, i) => [`estate config ${i + 1} (${options.environment})`, deployConfig(fakeEstate, options)] as const),
  ])('accepts %s, as the parser does', (_name, yaml) => {
    expect(parserErrors(yaml)).toEqual([]);
    expect(schemaErrors(yaml)).toEqual([]);
  });

  const base = read('test/unit/fixtures/full.yml');
  it.each([
    ['a misspelled key', base.replace('stop-timeout: 30', 'stop-timout: 30'), 'container.stop-timout: unknown key', '/container must NOT have additional properties stop-timout'],
    ['a misspelled key in an environment', base.replace('require-approval: true', 'require-aproval: true'), 'environments.production.require-aproval: unknown key', '/environments/production must NOT have additional properties require-aproval'],
    ['a wrong type', base.replace('retain-images: 3', 'retain-images: three'), 'retain-images: expected a whole number', '/retain-images must be integer'],
    ['a value out of range', base.replace('ports: { master: 50000', 'ports: { master: 70000'), 'ports.master: expected a whole number from 1 to 65535', '/ports/master must be <= 65535'],
    ['a bad pattern', base.replace('path: /healthcheck', 'path: healthcheck'), 'health.path: "healthcheck" is not a URL path', '/health/path must match pattern'],
    ['both haproxy.host and hosts', base.replace('haproxy: { host: lb.example.com,', 'haproxy: { host: lb.example.com, hosts: [lb2.example.com],'), 'give host (one load balancer) or hosts (several), not both', '/haproxy must NOT be valid'],
    ['no environments', base.replace(/environments:[\s\S]*$/, ''), 'environments: is required', "/ must have required property 'environments'"],
  ])('catches %s, in the parser and in the schema', (_name, yaml, parser, schema) => {
    expect(yaml).not.toBe(base);
    expect(parserErrors(yaml).join('\n')).toContain(parser);
    expect(schemaErrors(yaml).join('\n')).toContain(schema);
  });
});
