// The configuration reference in docs/configuration.md is what the config readers render (as
// deploy.schema.json is what they generate): a key added, renamed or redescribed in
// src/config/schema.ts without `npm run build` fails here, and so does a hand edit of the page.
// Every key has an example, and its own reader and its JSON Schema both accept it.
import { Ajv2020 } from 'ajv/dist/2020.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { KEY_EXAMPLES } from '../../src/config/examples.js';
import type { JsonSchema, Problem, Schema } from '../../src/config/fields.js';
import { deployConfigJsonSchema } from '../../src/config/json-schema.js';
import { REFERENCE_END, REFERENCE_START, renderReference, typeOf } from '../../src/config/reference.js';
import { buildSchema, environmentScalars, identity, overridable, roleSchema, topScalars } from '../../src/config/schema.js';
import { ROOT } from './support/docs.js';

const page = readFileSync(join(ROOT, 'docs/configuration.md'), 'utf8');

/** Every key as [example path, its field], the way examples.ts names them. */
const keys: Array<[string, Schema[string]]> = [
  ...Object.entries({ ...identity, ...topScalars }),
  ...Object.entries(buildSchema).map(([k, f]) => [`build.${k}`, f] as [string, Schema[string]]),
  ...Object.entries(overridable).flatMap(([section, schema]) => Object.entries(schema as Schema).map(([k, f]) => [`${section}.${k}`, f] as [string, Schema[string]])),
  ...Object.entries(environmentScalars).map(([k, f]) => [`environments.*.${k}`, f] as [string, Schema[string]]),
  ...Object.entries(roleSchema).map(([k, f]) => [`roles.*.${k}`, f] as [string, Schema[string]]),
];

/** A key's JSON Schema in deploy.schema.json, by the same path. */
function jsonOf(path: string): JsonSchema {
  const schema = deployConfigJsonSchema() as { properties: Record<string, JsonSchema & { properties?: Record<string, JsonSchema> }> };
  const [first, second, third] = path.split('.') as [string, string?, string?];
  if (first === 'roles' && second === '*') return ((schema.properties.roles!.additionalProperties as { properties: Record<string, JsonSchema> }).properties)[third!]!;
  if (first === 'environments' && second === '*') return ((schema.properties.environments!.additionalProperties as { properties: Record<string, JsonSchema> }).properties)[third!]!;
  return second ? schema.properties[first]!.properties![second]! : schema.properties[first]!;
}

describe('the configuration reference (docs/configuration.md)', () => {
  it('is what the config readers render (run npm run build and commit it)', () => {
    const start = page.indexOf(REFERENCE_START);
    const end = page.indexOf(REFERENCE_END);
    expect(start, 'the reference markers are missing').toBeGreaterThanOrEqual(0);
    expect(page.slice(start, end + REFERENCE_END.length)).toBe(renderReference());
  });

  it('lists every key of the schema', () => {
    const listed = [...renderReference().matchAll(/^\| `([^`]+)` \|/gm)].map((m) => m[1]);
    expect(listed).toEqual(expect.arrayContaining([...keys.map(([path]) => path.replace('environments.*.', 'environments.NAME.').replace('roles.*.', 'roles.NAME.')), 'environments']));
    expect(listed).toHaveLength(keys.length + 1);
  });

  it.each(keys)('%s has an example that its reader and its JSON Schema accept', (path, field) => {
    const example = KEY_EXAMPLES[path];
    expect(example, `no example for ${path} in src/config/examples.ts`).toBeDefined();
    const problems: Problem[] = [];
    field.read(example, path, problems);
    expect(problems).toEqual([]);
    const validate = new Ajv2020({ strict: true, allowUnionTypes: true }).compile(jsonOf(path));
    expect(validate(example), JSON.stringify(validate.errors)).toBe(true);
  });

  it('has no example for a key that does not exist', () => {
    expect(Object.keys(KEY_EXAMPLES).filter((path) => path !== 'environments' && !keys.some(([k]) => k === path))).toEqual([]);
  });

  it('says types in words', () => {
    expect(typeOf({ type: 'integer', minimum: 1, maximum: 5 })).toBe('a whole number from 1 to 5');
    expect(typeOf({ type: 'string', pattern: '^(fail|cut)$' })).toBe('`fail` or `cut`');
    expect(typeOf({ type: 'array', items: { type: 'boolean' }, minItems: 1, uniqueItems: true })).toBe('a list (not empty), each `true` or `false`, none twice');
    expect(() => typeOf({ type: 'null' })).toThrow('no words');
  });
});
