// build.cache: the flags each builder gets for each cache type, and what it falls back to.
import { describe, expect, it } from 'vitest';
import { BuildCacheError, planCache, type Builder, type CacheSetting } from '../../src/release/build-cache.js';

const ON_GITHUB = { ACTIONS_RUNTIME_TOKEN: 'runtime-token', ACTIONS_RESULTS_URL: 'https://results.example/' };
const setting = (type: CacheSetting['type'], mode: CacheSetting['mode'] = 'max'): CacheSetting => ({
  type,
  mode,
  ref: 'registry.example.com/team/app:buildcache',
  scope: 'registry.example.com/team/app',
});
const containerBuilder: Builder = { kind: 'buildx', exportsCache: true };
const dockerDriver: Builder = { kind: 'buildx', exportsCache: false };
const classic: Builder = { kind: 'classic', exportsCache: false };
const REF = 'registry.example.com/team/app:buildcache';

describe('planCache', () => {
  it.each([
    ['none, any builder', setting('none'), containerBuilder, [], []],
    [
      'registry max on a builder that exports',
      setting('registry'),
      containerBuilder,
      ['--cache-from', `type=registry,ref=${REF}`, '--cache-to', `type=registry,ref=${REF},mode=max,ignore-error=true`],
      [],
    ],
    [
      'registry min on a builder that exports',
      setting('registry', 'min'),
      containerBuilder,
      ['--cache-from', `type=registry,ref=${REF}`, '--cache-to', `type=registry,ref=${REF},mode=min,ignore-error=true`],
      [],
    ],
    [
      'gha on a builder that exports',
      setting('gha'),
      containerBuilder,
      ['--cache-from', 'type=gha,scope=registry.example.com/team/app', '--cache-to', 'type=gha,scope=registry.example.com/team/app,mode=max,ignore-error=true'],
      [],
    ],
    ['inline with buildx', setting('inline'), containerBuilder, ['--cache-from', `type=registry,ref=${REF}`, '--cache-to', 'type=inline'], [REF]],
    ['inline with the classic builder', setting('inline'), classic, ['--cache-from', REF, '--build-arg', 'BUILDKIT_INLINE_CACHE=1'], [REF]],
    ['registry on the docker driver: inline', setting('registry'), dockerDriver, ['--cache-from', `type=registry,ref=${REF}`, '--cache-to', 'type=inline'], [REF]],
    ['registry on the classic builder: inline', setting('registry'), classic, ['--cache-from', REF, '--build-arg', 'BUILDKIT_INLINE_CACHE=1'], [REF]],
    ['gha on the docker driver: none', setting('gha'), dockerDriver, [], []],
  ])('%s', (_name, cache, builder, flags, tags) => {
    const plan = planCache(cache, builder, ON_GITHUB);
    expect(plan.flags).toEqual(flags);
    expect(plan.tags).toEqual(tags);
  });

  it('warns when the builder gives less than asked, and only then', () => {
    expect(planCache(setting('registry'), dockerDriver, ON_GITHUB).warnings.join()).toMatch(/exports inline only.*buildcache.*mode min/);
    expect(planCache(setting('gha'), classic, ON_GITHUB).warnings.join()).toMatch(/this build has no cache/);
    expect(planCache(setting('registry'), containerBuilder, ON_GITHUB).warnings).toEqual([]);
    expect(planCache(setting('inline'), classic, ON_GITHUB).warnings).toEqual([]);
  });

  it.each([{}, { ACTIONS_RUNTIME_TOKEN: 't' }, { ACTIONS_CACHE_URL: 'https://cache.example/' }])(
    'refuses gha without GitHub\'s cache service (%o), naming build.cache',
    (env) => {
      expect(() => planCache(setting('gha'), containerBuilder, env)).toThrow(BuildCacheError);
      expect(() => planCache(setting('gha'), containerBuilder, env)).toThrow(/^build\.cache: gha needs GitHub's cache service/);
    },
  );

  it('never puts the runtime token on the command line', () => {
    expect(planCache(setting('gha'), containerBuilder, ON_GITHUB).flags.join(' ')).not.toContain('runtime-token');
  });
});
