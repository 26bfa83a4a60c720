// The fixture of GitHub's REST description (test/fixtures/github-api.json) against the calls the
// action makes, and the checks the GitHub stand-in applies with it.
import { getOctokit } from '@actions/github';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GITHUB_API_VERSION, GITHUB_OPERATIONS } from '../../src/drivers/github.js';
import { startGitHub } from '../integration/support/github.js';
import { GITHUB_SPEC, findOperation, requestViolations, responseViolations, specOperations } from '../integration/support/github-spec.js';

const ROOT = resolve(import.meta.dirname, '../..');
const octokit = getOctokit('unused');

/** `METHOD /path` of every Octokit call in a TypeScript text: `.rest.<scope>.<method>(` or `.request('METHOD /path'`. */
function calledRoutes(source: string): string[] {
  const rest = [...source.matchAll(/\.rest\s*\.\s*(\w+)\s*\.\s*(\w+)/g)].map(([, scope, method]) => {
    const endpoint = (octokit.rest as unknown as Record<string, Record<string, { endpoint?: { DEFAULTS: { method: string; url: string } } }>>)[scope!]?.[method!]?.endpoint;
    if (!endpoint) throw new Error(`octokit.rest.${scope}.${method} is no Octokit method`);
    return `${endpoint.DEFAULTS.method} ${endpoint.DEFAULTS.url}`;
  });
  const raw = [...source.matchAll(/\.request\s*\(\s*['"`](\w+) ([^'"`]+)['"`]/g)].map(([, method, path]) => `${method} ${path}`);
  return [...rest, ...raw];
}

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith('.ts'))
    .map((entry) => readFileSync(join(entry.parentPath, entry.name), 'utf8'));
}

const described = (route: string) => specOperations().find((op) => `${op.method} ${op.path}` === route);

describe('the fixture of GitHub\'s REST description', () => {
  const used = [...new Set(sources(join(ROOT, 'src')).flatMap(calledRoutes))].sort();

  it('says where it came from and which API version it describes, the one the action sends', () => {
    expect(GITHUB_SPEC.info['x-source']).toMatch(/^@octokit\/openapi@\d+\.\d+\.\d+ generated\/api\.github\.com\.json$/);
    expect(GITHUB_SPEC.info['x-source']).toContain(`@${GITHUB_SPEC.info.version} `);
    expect(GITHUB_SPEC.info['x-api-version']).toBe(GITHUB_API_VERSION);
  });

  it('describes every operation the action calls (npm run github-spec -- \'METHOD /path\' adds one)', () => {
    expect(used.length).toBeGreaterThan(0);
    expect(used.filter((route) => !described(route))).toEqual([]);
  });

  it('holds those operations only, and the driver\'s permission table names exactly them', () => {
    const usedIds = used.map((route) => described(route)?.operationId).sort();
    expect(specOperations().map((op) => op.operationId).sort()).toEqual(usedIds);
    expect(Object.keys(GITHUB_OPERATIONS).sort()).toEqual(usedIds);
  });

  it('finds calls in both forms, so that a call the fixture lacks is seen', () => {
    const source = "await this.octokit.rest.repos\n  .getDeployment({ owner, repo, deployment_id: 1 });\nawait octokit.request('DELETE /repos/{owner}/{repo}/deployments/{deployment_id}', {});";
    expect(calledRoutes(source)).toEqual(['GET /repos/{owner}/{repo}/deployments/{deployment_id}', 'DELETE /repos/{owner}/{repo}/deployments/{deployment_id}']);
    expect(calledRoutes(source).filter((route) => !described(route))).toHaveLength(2);
  });

  it('stays small', () => {
    expect(readFileSync(join(ROOT, 'test/fixtures/github-api.json')).length).toBeLessThan(100_000);
  });
});

describe('requests against the description', () => {
  const create = findOperation('POST', '/repos/clay/demo/deployments')!;
  const list = findOperation('GET', '/repos/clay/demo/deployments')!;

  it('routes by method and path template, decoding each segment', () => {
    expect(findOperation('GET', '/repos/clay/demo/environments/review%2Fpr-7')).toEqual({
      operationId: 'repos/get-environment',
      method: 'GET',
      path: '/repos/{owner}/{repo}/environments/{environment_name}',
      pathParams: { owner: 'clay', repo: 'demo', environment_name: 'review/pr-7' },
    });
    expect(findOperation('DELETE', '/repos/clay/demo/deployments/1')).toBeUndefined();
    expect(findOperation('GET', '/repos/clay/demo/deployment')).toBeUndefined();
  });

  it('accepts what the description allows, nullable values included', () => {
    expect(requestViolations(create, {}, { ref: 'v1.0.0', description: null, payload: 'as text' })).toEqual([]);
    expect(requestViolations(list, { environment: 'staging', per_page: '50' }, undefined)).toEqual([]);
  });

  it('names the operation and the field of each problem', () => {
    expect(requestViolations(create, { per_pag: '3' }, { ref: 7, auto_merg: false, task: 'deploy' })).toEqual([
      'repos/create-deployment: query parameter per_pag: is not a parameter of this operation',
      'repos/create-deployment: request body /auto_merg: is not a field of this operation',
      'repos/create-deployment: request body /ref: must be string',
    ]);
    expect(requestViolations(create, {}, undefined)).toEqual(['repos/create-deployment: request body (whole): is required']);
    expect(requestViolations(list, { per_page: 'many' }, undefined)).toEqual(['repos/list-deployments: parameter /per_page: must be integer']);
    const status = findOperation('POST', '/repos/clay/demo/deployments/x/statuses')!;
    expect(requestViolations(status, {}, { state: 'done' })).toEqual([
      'repos/create-deployment-status: parameter /deployment_id: must be integer',
      'repos/create-deployment-status: request body /state: must be one of error, failure, inactive, in_progress, queued, pending, success',
    ]);
  });
});

describe('answers against the description', () => {
  const list = findOperation('GET', '/repos/clay/demo/deployments')!;

  it('names what an answer lacks or has wrong', () => {
    const problems = responseViolations(list, 200, [{ id: 'x' }]);
    expect(problems).toContain("repos/list-deployments: answer 200 /0/creator: must have required property 'creator'");
    expect(problems).toContain('repos/list-deployments: answer 200 /0/id: must be integer');
  });

  it('holds a status the operation does not list to GitHub\'s error body', () => {
    expect(responseViolations(list, 403, { message: 'Resource not accessible by integration' })).toEqual([]);
    expect(responseViolations(list, 500, { error: 'boom' })).toEqual([]);
    expect(responseViolations(list, 500, { message: 7 })).toEqual(['repos/list-deployments: answer 500 /message: must be string']);
  });
});

describe('the stand-in', async () => {
  const github = await startGitHub();
  afterAll(async () => {
    github.violations.length = 0;
    await github.close();
  });
  const ask = (method: string, path: string, headers: Record<string, string> = {}, body?: unknown) =>
    fetch(`${github.url}${path}`, { method, headers: { authorization: 'token test-token', ...headers }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });

  it('answers no operation the description lacks, and records it', async () => {
    github.violations.length = 0;
    expect((await ask('DELETE', '/repos/clay/demo/deployments/1')).status).toBe(404);
    expect(github.violations).toEqual(["DELETE /repos/clay/demo/deployments/1: GitHub's description defines no such operation"]);
  });

  it('refuses a request the description does not allow with 422, naming the problem', async () => {
    github.violations.length = 0;
    const response = await ask('POST', '/repos/clay/demo/deployments', {}, { environment: 'staging' });
    expect(response.status).toBe(422);
    expect(((await response.json()) as { message: string }).message).toContain("repos/create-deployment: request body /ref: must have required property 'ref'");
    expect(github.violations).toEqual(["repos/create-deployment: request body /ref: must have required property 'ref'"]);
    expect(github.deployments).toHaveLength(0);
  });

  it('records another API version than the description\'s', async () => {
    github.violations.length = 0;
    expect((await ask('GET', '/repos/clay/demo/deployments', { 'x-github-api-version': '2026-03-10' })).status).toBe(200);
    expect(github.violations).toEqual([`repos/list-deployments: X-GitHub-Api-Version 2026-03-10, while the description is of ${GITHUB_API_VERSION}`]);
  });

  it('sends no answer the description does not allow: an override in a shape GitHub never sends is a 500', async () => {
    github.violations.length = 0;
    github.overrides.set('GET /repos/clay/demo/deployments', { status: 200, body: [{ id: 1, ref: 'v1.0.0' }] });
    const response = await ask('GET', '/repos/clay/demo/deployments');
    github.overrides.clear();
    expect(response.status).toBe(500);
    expect(github.violations).toContain("repos/list-deployments: answer 200 /0/sha: must have required property 'sha'");
  });

  it('close() fails while a violation is left unchecked', async () => {
    const other = await startGitHub();
    await fetch(`${other.url}/nowhere`);
    await expect(other.close()).rejects.toThrow(/GET \/nowhere: GitHub's description defines no such operation/);
  });
});
