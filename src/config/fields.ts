// Field readers for the deploy config: each checks one raw YAML value and records every problem
// with its key path, so a user sees all mistakes in one run instead of one per push.

export interface Problem {
  path: string;
  message: string;
}

export class ConfigError extends Error {
  constructor(
    readonly source: string,
    readonly problems: Problem[],
  ) {
    super(
      `${source} is invalid:\n` + problems.map((p) => `  ${p.path}: ${p.message}`).join('\n'),
    );
    this.name = 'ConfigError';
  }
}

/** A fragment of JSON Schema (draft 2020-12): what an editor checks for one value. */
export type JsonSchema = Record<string, unknown>;

/**
 * Reads one raw value. Each reader also says, as JSON Schema, what it accepts: the generated
 * deploy.schema.json is built from these very readers (config/json-schema.ts), so the editor's
 * checks and the parser's can only differ where JSON Schema cannot say it (noted per reader).
 */
export type Reader<T> = ((value: unknown, path: string, problems: Problem[]) => T | undefined) & {
  json: JsonSchema;
  /** What the value must be, in words (the configuration reference shows it). */
  expected?: string;
};

/** A reader with the JSON Schema of what it accepts and, where words say it better, what that is. */
export function reader<T>(read: (value: unknown, path: string, problems: Problem[]) => T | undefined, json: JsonSchema, expected?: string): Reader<T> {
  return Object.assign(read, { json }, expected ? { expected } : {});
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}

export function isMapping(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function text(pattern?: RegExp, expected?: string): Reader<string> {
  return reader((value, path, problems) => {
    if (typeof value !== 'string') {
      problems.push({ path, message: `expected ${expected ?? 'a string'}, got ${describe(value)}` });
      return undefined;
    }
    if (pattern && !pattern.test(value)) {
      problems.push({ path, message: `${JSON.stringify(value)} is not ${expected ?? pattern}` });
      return undefined;
    }
    return value;
  }, { type: 'string', ...(pattern ? { pattern: pattern.source } : {}) }, expected);
}

export function integer(min: number, max: number): Reader<number> {
  return reader((value, path, problems) => {
    if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
      problems.push({
        path,
        message: `expected a whole number from ${min} to ${max}, got ${describe(value)}`,
      });
      return undefined;
    }
    return value;
  }, { type: 'integer', minimum: min, maximum: max });
}

/** Any number in [min, max], fractions too (a percentage like 0.5). */
export function decimal(min: number, max: number): Reader<number> {
  return reader((value, path, problems) => {
    if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
      problems.push({ path, message: `expected a number from ${min} to ${max}, got ${describe(value)}` });
      return undefined;
    }
    return value;
  }, { type: 'number', minimum: min, maximum: max });
}

export const boolean: Reader<boolean> = reader((value, path, problems) => {
  if (typeof value !== 'boolean') {
    problems.push({ path, message: `expected true or false, got ${describe(value)}` });
    return undefined;
  }
  return value;
}, { type: 'boolean' });

export function list<T>(item: Reader<T>, { unique = false, nonEmpty = false } = {}): Reader<T[]> {
  return reader((value, path, problems) => {
    if (!Array.isArray(value)) {
      problems.push({ path, message: `expected a list, got ${describe(value)}` });
      return undefined;
    }
    if (nonEmpty && value.length === 0) {
      problems.push({ path, message: 'must not be empty' });
      return undefined;
    }
    const out: T[] = [];
    const before = problems.length;
    value.forEach((entry, i) => {
      const read = item(entry, `${path}[${i}]`, problems);
      if (read === undefined) return;
      if (unique && out.includes(read)) {
        problems.push({ path: `${path}[${i}]`, message: `${JSON.stringify(read)} is listed twice` });
        return;
      }
      out.push(read);
    });
    return problems.length === before ? out : undefined;
  }, { type: 'array', items: item.json, ...(unique ? { uniqueItems: true } : {}), ...(nonEmpty ? { minItems: 1 } : {}) }, item.expected && `a list${nonEmpty ? ' (not empty)' : ''}, each ${item.expected}${unique ? ', none twice' : ''}`);
}

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

// Environment variable maps: YAML numbers and booleans are accepted and kept as their text,
// since `PORT: 3000` is what people write and Docker only takes strings anyway.
export const stringMap: Reader<Record<string, string>> = reader((value, path, problems) => {
  if (!isMapping(value)) {
    problems.push({ path, message: `expected a mapping of NAME: value, got ${describe(value)}` });
    return undefined;
  }
  const out: Record<string, string> = {};
  const before = problems.length;
  for (const [key, entry] of Object.entries(value)) {
    if (!ENV_NAME.test(key)) {
      problems.push({ path: `${path}.${key}`, message: 'not a valid variable name' });
    } else if (typeof entry === 'string' || typeof entry === 'number' || typeof entry === 'boolean') {
      out[key] = String(entry);
    } else {
      problems.push({ path: `${path}.${key}`, message: `expected a string, got ${describe(entry)}` });
    }
  }
  return problems.length === before ? out : undefined;
}, { type: 'object', propertyNames: { pattern: ENV_NAME.source }, additionalProperties: { type: ['string', 'number', 'boolean'] } });

type Kind = 'required' | 'default' | 'optional';
export interface Field<T, K extends Kind = Kind> {
  read: Reader<T>;
  kind: K;
  fallback?: T;
  /** What the key means, for deploy.schema.json (editors show it on hover). */
  description: string;
}

export const required = <T>(read: Reader<T>, description: string): Field<T, 'required'> => ({ read, kind: 'required', description });
export const optional = <T>(read: Reader<T>, description: string): Field<T, 'optional'> => ({ read, kind: 'optional', description });
export const withDefault = <T>(read: Reader<T>, fallback: T, description: string): Field<T, 'default'> => ({
  read,
  kind: 'default',
  fallback,
  description,
});

export type Schema = Record<string, Field<any>>;
/** A section as written: every key may be missing (environment overrides are partial). */
export type Partial_<S extends Schema> = { [K in keyof S]?: S[K] extends Field<infer T> ? T : never };
/** A section after defaults: required and defaulted keys are present. */
export type Complete<S extends Schema> = {
  [K in keyof S as S[K] extends Field<any, 'optional'> ? never : K]: S[K] extends Field<infer T>
    ? T
    : never;
} & {
  [K in keyof S as S[K] extends Field<any, 'optional'> ? K : never]?: S[K] extends Field<infer T>
    ? T
    : never;
};

/** Reads the keys that are present; unknown keys are errors. */
export function readSection<S extends Schema>(
  schema: S,
  value: unknown,
  path: string,
  problems: Problem[],
): Partial_<S> | undefined {
  if (!isMapping(value)) {
    problems.push({ path, message: `expected a mapping, got ${describe(value)}` });
    return undefined;
  }
  const out: Record<string, unknown> = {};
  for (const [key, entry] of Object.entries(value)) {
    const field = schema[key];
    const at = path ? `${path}.${key}` : key;
    if (!field) {
      problems.push({ path: at, message: `unknown key (expected one of: ${Object.keys(schema).join(', ')})` });
      continue;
    }
    const read = field.read(entry, at, problems);
    if (read !== undefined) out[key] = read;
  }
  return out as Partial_<S>;
}

/** Fills defaults and reports required keys still missing after the environment's overrides. */
export function completeSection<S extends Schema>(
  schema: S,
  value: Partial_<S>,
  path: string,
  problems: Problem[],
  where = '',
): Complete<S> {
  const out: Record<string, unknown> = { ...value };
  for (const [key, field] of Object.entries(schema)) {
    if (out[key] !== undefined) continue;
    if (field.kind === 'default') out[key] = structuredClone(field.fallback);
    else if (field.kind === 'required') {
      const at = path ? `${path}.${key}` : key;
      // A key given but invalid is already reported; "required" would only repeat it.
      if (!problems.some((p) => p.path === at || p.path.startsWith(`${at}.`) || p.path.startsWith(`${at}[`))) {
        problems.push({ path: at, message: `is required${where}` });
      }
    }
  }
  return out as Complete<S>;
}
