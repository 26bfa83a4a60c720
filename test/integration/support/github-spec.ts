// GitHub's own description of the REST operations the action calls (test/fixtures/github-api.json,
// extracted from @octokit/openapi by `npm run github-spec`), and checks of requests and answers
// against it. Loaded once per test process; each operation's validators are compiled on first use.
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from './estate.js';

type Json = Record<string, unknown>;

interface OpenApi {
  info: { version: string; 'x-source': string; 'x-api-version': string };
  paths: Record<string, Record<string, Json>>;
  components: Record<string, Record<string, Json>>;
}

export const GITHUB_SPEC: OpenApi = JSON.parse(readFileSync(join(REPO_ROOT, 'test/fixtures/github-api.json'), 'utf8')) as OpenApi;
/** The REST API version the fixture describes, which the action names in X-GitHub-Api-Version. */
export const GITHUB_API_VERSION = GITHUB_SPEC.info['x-api-version'];

export interface SpecOperation {
  operationId: string;
  method: string;
  /** The path template, e.g. /repos/{owner}/{repo}/deployments. */
  path: string;
}

interface Compiled {
  params: ValidateFunction;
  paramNames: Set<string>;
  body?: { required: boolean; validate: ValidateFunction };
  responses: Map<string, ValidateFunction | undefined>;
}

const operations: Array<SpecOperation & { pattern: RegExp; pathParams: string[]; definition: Json }> = Object.entries(GITHUB_SPEC.paths).flatMap(
  ([path, item]) =>
    Object.entries(item).map(([method, definition]) => ({
      operationId: String(definition.operationId),
      method: method.toUpperCase(),
      path,
      pathParams: [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!),
      pattern: new RegExp(`^${path.replace(/\{\w+\}/g, '([^/]+)')}$`),
      definition,
    })),
);

/** Every operation the fixture holds. */
export const specOperations = (): SpecOperation[] => operations.map(({ operationId, method, path }) => ({ operationId, method, path }));

// Formats GitHub's description uses that ajv-formats does not know, or knows more strictly than
// GitHub means them: `uri` fields default to "" (a status without a log URL), so "" is accepted.
const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv;
function newAjv(coerceTypes: boolean): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true, coerceTypes, validateSchema: false });
  addFormats(ajv);
  const uri = ajv.formats.uri as { validate: (value: string) => boolean } | ((value: string) => boolean);
  const isUri = typeof uri === 'function' ? uri : uri.validate;
  ajv.addFormat('uri', { type: 'string', validate: (value: string) => value === '' || isUri(value) });
  ajv.addFormat('int64', { type: 'number', validate: (value: number) => Number.isSafeInteger(value) });
  ajv.addSchema({ components: { schemas: GITHUB_SPEC.components.schemas } }, 'github-api');
  return ajv;
}
// Query and path values arrive as text: their validator turns "50" into 50 before checking.
const paramsAjv = newAjv(true);
const bodyAjv = newAjv(false);

/** `#/components/schemas/x` as seen from a schema compiled on its own. */
function rebase<T>(schema: T): T {
  return JSON.parse(JSON.stringify(schema).replaceAll('"#/components/schemas/', '"github-api#/components/schemas/')) as T;
}

/** An OpenAPI object (parameter, response, request body), its `$ref` followed. */
function resolve(value: Json): Json {
  const ref = value.$ref;
  if (typeof ref !== 'string') return value;
  const [, kind, name] = /^#\/components\/([^/]+)\/([^/]+)$/.exec(ref) ?? [];
  const target = kind && name ? GITHUB_SPEC.components[kind]?.[name] : undefined;
  if (!target) throw new Error(`github-api.json: unresolvable ${ref}`);
  return resolve(target);
}

/**
 * Request bodies are held to the fields the operation defines: GitHub ignores a field it does not
 * know, so a misspelled one would pass there silently. (Only inline schemas: none of the action's
 * request bodies uses a component.)
 */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Json = Object.fromEntries(Object.entries(schema).map(([key, value]) => [key, key === 'properties' ? Object.fromEntries(Object.entries(value as Json).map(([k, v]) => [k, closed(v)])) : closed(value)]));
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

const compiled = new Map<string, Compiled>();
function compile(op: (typeof operations)[number]): Compiled {
  const known = compiled.get(op.operationId);
  if (known) return known;
  const parameters = ((op.definition.parameters ?? []) as Json[]).map(resolve).filter((p) => p.in === 'path' || p.in === 'query');
  const params = paramsAjv.compile(
    rebase({
      type: 'object',
      properties: Object.fromEntries(parameters.map((p) => [p.name, p.schema])),
      required: parameters.filter((p) => p.required === true).map((p) => p.name),
    }),
  );
  const requestBody = op.definition.requestBody ? resolve(op.definition.requestBody as Json) : undefined;
  const bodySchema = (requestBody?.content as Record<string, { schema?: unknown }> | undefined)?.['application/json']?.schema;
  const responses = new Map<string, ValidateFunction | undefined>();
  for (const [status, response] of Object.entries((op.definition.responses ?? {}) as Record<string, Json>)) {
    const schema = (resolve(response).content as Record<string, { schema?: unknown }> | undefined)?.['application/json']?.schema;
    responses.set(status, schema ? bodyAjv.compile(rebase(schema)) : undefined);
  }
  const result: Compiled = {
    params,
    paramNames: new Set(parameters.map((p) => String(p.name))),
    ...(bodySchema ? { body: { required: requestBody?.required === true, validate: bodyAjv.compile(rebase(closed(bodySchema) as object)) } } : {}),
    responses,
  };
  compiled.set(op.operationId, result);
  return result;
}

// Any status an operation does not list (401, 403, 404, 500 ...) is answered with GitHub's error body.
const basicError = bodyAjv.compile(rebase({ $ref: '#/components/schemas/basic-error' }));

/** One line per problem, each naming the field (a JSON pointer into what was checked). */
function describe(where: string, errors: ErrorObject[] | null | undefined): string[] {
  return (errors ?? []).map((e) => {
    const field = e.keyword === 'additionalProperties' ? `${e.instancePath}/${String(e.params.additionalProperty)}` : e.keyword === 'required' ? `${e.instancePath}/${String(e.params.missingProperty)}` : e.instancePath;
    const what = e.keyword === 'additionalProperties' ? 'is not a field of this operation' : e.keyword === 'enum' ? `must be one of ${(e.params.allowedValues as unknown[]).join(', ')}` : e.message ?? e.keyword;
    return `${where} ${field || '(whole)'}: ${what}`;
  });
}

export interface MatchedOperation extends SpecOperation {
  pathParams: Record<string, string>;
}

/** The operation GitHub's description defines at `method` and `pathname` (encoded, as sent), if any. */
export function findOperation(method: string, pathname: string): MatchedOperation | undefined {
  for (const op of operations) {
    const match = op.method === method ? op.pattern.exec(pathname) : null;
    if (!match) continue;
    let pathParams: Record<string, string>;
    try {
      pathParams = Object.fromEntries(op.pathParams.map((name, i) => [name, decodeURIComponent(match[i + 1]!)]));
    } catch {
      continue;
    }
    return { operationId: op.operationId, method: op.method, path: op.path, pathParams };
  }
  return undefined;
}

const byId = (operationId: string) => {
  const op = operations.find((o) => o.operationId === operationId);
  if (!op) throw new Error(`github-api.json has no operation ${operationId}`);
  return op;
};

/** What is wrong with a request to `operation` (empty when nothing): parameters, then body. */
export function requestViolations(operation: MatchedOperation, query: Record<string, string>, body: unknown): string[] {
  const checks = compile(byId(operation.operationId));
  const problems = Object.keys(query)
    .filter((name) => !checks.paramNames.has(name))
    .map((name) => `query parameter ${name}: is not a parameter of this operation`);
  const params: Json = { ...operation.pathParams, ...query };
  if (!checks.params(params)) problems.push(...describe('parameter', checks.params.errors));
  if (checks.body) {
    if (body === undefined) {
      if (checks.body.required) problems.push('request body (whole): is required');
    } else if (!checks.body.validate(body)) problems.push(...describe('request body', checks.body.validate.errors));
  } else if (body !== undefined) problems.push('request body (whole): this operation takes none');
  return problems.map((p) => `${operation.operationId}: ${p}`);
}

/** What is wrong with an answer to `operation` with `status` (empty when nothing). */
export function responseViolations(operation: SpecOperation, status: number, body: unknown): string[] {
  const checks = compile(byId(operation.operationId));
  const validate = checks.responses.has(String(status)) ? checks.responses.get(String(status)) : basicError;
  if (!validate || validate(body)) return [];
  return describe(`answer ${status}`, validate.errors).map((p) => `${operation.operationId}: ${p}`);
}
