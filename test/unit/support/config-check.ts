// A deploy config held to both of its judges: the parser (src/config/parse.ts) and the committed
// deploy.schema.json under a real JSON Schema validator (Ajv, draft 2020-12).
import { Ajv2020 } from 'ajv/dist/2020.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { parseConfig } from '../../../src/config/parse.js';
import { ROOT } from './docs.js';

export const committedSchema = JSON.parse(readFileSync(join(ROOT, 'deploy.schema.json'), 'utf8')) as Record<string, unknown>;
const validate = new Ajv2020({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true }).compile(committedSchema);

export function schemaErrors(yaml: string): string[] {
  return validate(parse(yaml)) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${e.params && 'additionalProperty' in e.params ? ` ${e.params.additionalProperty}` : ''}`);
}

export function parserErrors(yaml: string): string[] {
  try {
    parseConfig('deploy.yml', yaml);
    return [];
  } catch (error) {
    return (error as { problems?: { path: string; message: string }[] }).problems?.map((p) => `${p.path}: ${p.message}`) ?? [String(error)];
  }
}
