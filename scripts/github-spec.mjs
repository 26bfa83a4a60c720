// Extracts, from GitHub's published REST API description (@octokit/openapi), the operations the
// action calls and the components they reference, into test/fixtures/github-api.json, which the
// GitHub stand-in and the driver's tests validate against. Run by hand (`npm run github-spec`):
// the package holds every GitHub edition's description (hundreds of MB unpacked), so it is
// packed into a temporary folder here rather than installed by every CI run.
//
//   npm run github-spec                          refresh the operations the fixture has
//   npm run github-spec -- 'GET /repos/{owner}/{repo}/deployments/{deployment_id}'
//                                                add an operation (as the unit test names it)
//   GITHUB_SPEC_VERSION=23.0.2 npm run github-spec   a given package version (default: latest)
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const FIXTURE = 'test/fixtures/github-api.json';
const PACKAGE = '@octokit/openapi';
// generated/api.github.com.json describes REST API version 2022-11-28 (GitHub's default when a
// request names none); later versions appear only as `x-github-breaking-changes` patches, which
// the fixture lists but does not apply.
const API_VERSION = '2022-11-28';
// Kept out of the fixture: prose, samples and Octokit's own bookkeeping, none of which validates.
const DROPPED_KEYS = new Set(['description', 'summary', 'example', 'examples', 'externalDocs', 'x-octokit', 'x-github-breaking-changes', 'tags']);
// Answers with a status the operation does not list (401, 403, 404, 500 ...) carry GitHub's error body.
const ALWAYS = ['#/components/schemas/basic-error'];

const fixture = existsSync(FIXTURE) ? JSON.parse(readFileSync(FIXTURE, 'utf8')) : undefined;
const current = fixture ? Object.entries(fixture.paths).flatMap(([path, item]) => Object.keys(item).map((method) => `${method.toUpperCase()} ${path}`)) : [];
const routes = [...new Set([...current, ...process.argv.slice(2)])].sort();
if (routes.length === 0) throw new Error(`no operations: ${FIXTURE} is missing, so name them ('GET /repos/{owner}/{repo}/...')`);

const dir = mkdtempSync(join(tmpdir(), 'github-spec-'));
try {
  const wanted = `${PACKAGE}@${process.env.GITHUB_SPEC_VERSION ?? 'latest'}`;
  const [packed] = JSON.parse(execFileSync('npm', ['pack', wanted, '--json', '--pack-destination', dir], { encoding: 'utf8' }));
  execFileSync('tar', ['-xzf', join(dir, packed.filename), '-C', dir, 'package/generated/api.github.com.json']);
  const spec = JSON.parse(readFileSync(join(dir, 'package/generated/api.github.com.json'), 'utf8'));

  const paths = {};
  const laterBreakingChanges = {};
  for (const route of routes) {
    const [method, path] = route.split(' ');
    const operation = spec.paths[path]?.[method.toLowerCase()];
    if (!operation) throw new Error(`${packed.id} describes no ${route}`);
    (paths[path] ??= {})[method.toLowerCase()] = strip(operation);
    // A later API version's changes that reach this operation, for whoever moves the action to it.
    for (const change of breakingChanges(operation, spec)) (laterBreakingChanges[change.version] ??= new Set()).add(change.changeset);
  }

  // The components the operations reference (once prose and samples are gone), followed transitively.
  const components = {};
  const pending = [...ALWAYS, ...refsIn(paths)];
  const seen = new Set();
  while (pending.length > 0) {
    const ref = pending.pop();
    if (seen.has(ref)) continue;
    seen.add(ref);
    const [, kind, name] = /^#\/components\/([^/]+)\/([^/]+)$/.exec(ref) ?? [];
    const target = kind && spec.components[kind]?.[name];
    if (!target) throw new Error(`unresolvable reference ${ref}`);
    (components[kind] ??= {})[name] = strip(target);
    pending.push(...refsIn(components[kind][name]));
  }

  const out = {
    openapi: spec.openapi,
    info: {
      title: 'The operations of the GitHub REST API that deploy-action calls',
      version: spec.info.version,
      'x-source': `${packed.id} generated/api.github.com.json`,
      'x-api-version': API_VERSION,
      'x-later-breaking-changes': Object.fromEntries(Object.entries(laterBreakingChanges).map(([v, names]) => [v, [...names].sort()])),
      'x-generated-by': 'npm run github-spec (scripts/github-spec.mjs)',
    },
    paths: sortKeys(paths),
    components: sortKeys(Object.fromEntries(Object.entries(components).map(([kind, byName]) => [kind, sortKeys(byName)]))),
  };
  writeFileSync(FIXTURE, `${JSON.stringify(out, null, 1)}\n`);
  const size = readFileSync(FIXTURE).length;
  console.log(`${FIXTURE}: ${routes.length} operations, ${seen.size} components from ${packed.id}, ${Math.round(size / 1024)} KiB`);
  for (const [version, names] of Object.entries(out.info['x-later-breaking-changes'])) console.log(`breaking changes in ${version} that reach them: ${names.join(', ')}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

/** Every `$ref` inside a value. */
function refsIn(value) {
  const refs = [];
  JSON.stringify(value, (key, v) => {
    if (key === '$ref' && typeof v === 'string') refs.push(v);
    return v;
  });
  return refs;
}

/** `x-github-breaking-changes` entries on the operation and on every component it reaches. */
function breakingChanges(operation, spec) {
  const found = [];
  const seen = new Set();
  const visit = (value) => {
    if (Array.isArray(value)) return value.forEach(visit);
    if (!value || typeof value !== 'object') return;
    for (const [key, v] of Object.entries(value)) {
      if (key === 'x-github-breaking-changes') found.push(...v);
      else if (key === '$ref' && typeof v === 'string' && !seen.has(v)) {
        seen.add(v);
        const [, kind, name] = /^#\/components\/([^/]+)\/([^/]+)$/.exec(v) ?? [];
        visit(spec.components[kind]?.[name]);
      } else visit(v);
    }
  };
  visit(operation);
  return found;
}

/**
 * The value without DROPPED_KEYS, except where they name a schema property (a field called
 * `description` is kept: `properties` holds field names, not keywords).
 */
function strip(value, parentKey) {
  if (Array.isArray(value)) return value.map((v) => strip(v));
  if (!value || typeof value !== 'object') return value;
  const fieldNames = parentKey === 'properties';
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => fieldNames || !DROPPED_KEYS.has(key))
      .map(([key, v]) => [key, strip(v, fieldNames ? undefined : key)]),
  );
}

function sortKeys(object) {
  return Object.fromEntries(Object.entries(object).sort(([a], [b]) => a.localeCompare(b)));
}
