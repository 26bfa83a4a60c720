// scripts/release.sh in a scratch clone of this repository: it refuses, before tagging anything,
// a tag that is not a release tag or exists, a dirty tree or another branch, a release without a
// CHANGELOG section or package.json version, a stale dist/ and failing tests; otherwise it tags
// and moves the major tag (not for a prerelease). The dist check and the test command are
// replaced by `true` or `false` here (RELEASE_DIST_CHECK, RELEASE_TEST_COMMAND): each has its own test.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './support/docs.js';

/** A scratch repository with the script, on main, at a commit ready for `version`. */
function scratch(version: string, { changelog = true, packageVersion = version } = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'release-'));
  const git = (...args: string[]) => execFileSync('git', args, { cwd: dir, stdio: 'pipe' });
  git('init', '-q', '-b', 'main');
  git('config', 'user.email', 'release@example.com');
  git('config', 'user.name', 'release test');
  execFileSync('mkdir', ['-p', join(dir, 'scripts')]);
  writeFileSync(join(dir, 'scripts/release.sh'), readFileSync(join(ROOT, 'scripts/release.sh')));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ version: packageVersion }));
  writeFileSync(join(dir, 'CHANGELOG.md'), `# Changelog\n\n${changelog ? `## v${version}\n\n- a change\n` : ''}`);
  git('add', '.');
  git('commit', '-qm', 'release commit');
  return dir;
}

function release(dir: string, args: string[], checks: { dist?: string; tests?: string } = {}) {
  const result = spawnSync('bash', ['scripts/release.sh', ...args], {
    cwd: dir,
    encoding: 'utf8',
    env: { ...process.env, RELEASE_DIST_CHECK: checks.dist ?? 'true', RELEASE_TEST_COMMAND: checks.tests ?? 'true' },
  });
  const tags = execFileSync('git', ['tag', '--list'], { cwd: dir, encoding: 'utf8' }).split('\n').filter(Boolean);
  return { code: result.status, output: `${result.stdout}${result.stderr}`, tags };
}

describe('scripts/release.sh', () => {
  it('tags a stable release and moves the major tag to it', () => {
    const dir = scratch('1.2.0');
    const { code, output, tags } = release(dir, ['v1.2.0']);
    expect(code, output).toBe(0);
    expect(tags).toEqual(['v1', 'v1.2.0']);
    const commitOf = (ref: string) => execFileSync('git', ['rev-parse', `${ref}^{commit}`], { cwd: dir, encoding: 'utf8' });
    expect(commitOf('v1')).toBe(commitOf('HEAD'));
    expect(output).toContain('publish with: git push origin v1.2.0 && git push --force origin v1');
  });

  it('moves no major tag for a prerelease', () => {
    const { code, tags } = release(scratch('2.0.0-rc.1'), ['v2.0.0-rc.1']);
    expect(code).toBe(0);
    expect(tags).toEqual(['v2.0.0-rc.1']);
  });

  it.each([
    ['a tag that is not a release tag', () => scratch('1.2.0'), ['1.2'], {}, 'is not a release tag'],
    ['build metadata', () => scratch('1.2.0'), ['v1.2.0+build.5'], {}, 'is not a release tag'],
    ['no CHANGELOG section', () => scratch('1.2.0', { changelog: false }), ['v1.2.0'], {}, "CHANGELOG.md has no '## v1.2.0' section"],
    ['another package.json version', () => scratch('1.2.0', { packageVersion: '1.1.0' }), ['v1.2.0'], {}, "package.json's version is not 1.2.0"],
    ['a dirty tree', () => { const d = scratch('1.2.0'); writeFileSync(join(d, 'stray'), ''); return d; }, ['v1.2.0'], {}, 'the work tree is not clean'],
    ['another branch', () => { const d = scratch('1.2.0'); execFileSync('git', ['checkout', '-qb', 'topic'], { cwd: d }); return d; }, ['v1.2.0'], {}, 'HEAD is not main'],
    ['a stale dist/', () => scratch('1.2.0'), ['v1.2.0'], { dist: 'false' }, 'dist/ or a generated file is stale'],
    ['failing tests', () => scratch('1.2.0'), ['v1.2.0'], { tests: 'false' }, 'the test command failed: nothing was tagged'],
  ] as const)('refuses %s, tagging nothing', (_name, make, args, checks, message) => {
    const { code, output, tags } = release(make(), [...args], checks);
    expect(code).toBe(1);
    expect(output).toContain(message);
    expect(tags).toEqual([]);
  });

  it('refuses a tag that exists', () => {
    const dir = scratch('1.2.0');
    expect(release(dir, ['v1.2.0']).code).toBe(0);
    const again = release(dir, ['v1.2.0']);
    expect(again.code).toBe(1);
    expect(again.output).toContain('v1.2.0 exists already');
  });
});
