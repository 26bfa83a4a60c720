// The user documentation holds together: the README is the front door (short, linking every
// page of docs/), every relative link in README.md, docs/, CONTRIBUTING.md, CHANGELOG.md and
// SECURITY.md points at a file that exists and, with a #fragment, at a heading it has.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT, docPages, type Page } from './support/docs.js';

const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const pages: Page[] = [...docPages(), ...['CONTRIBUTING.md', 'CHANGELOG.md', 'SECURITY.md'].map((path) => ({ path, text: read(path) }))];

/** Markdown without its fenced code blocks, where a `](x)` is code, not a link. */
function prose(markdown: string): string {
  return markdown.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[ \t]*$/gm, '');
}

/** The targets of a page's inline links, `[text](target)`, skipping absolute URLs. */
export function relativeLinks(markdown: string): string[] {
  return [...prose(markdown).matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)].map((m) => m[1]!).filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
export function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const found = new Set<string>();
  for (const [, heading] of prose(markdown).matchAll(/^#{1,6}[ \t]+(.+?)[ \t]*#*[ \t]*$/gm)) {
    const base = heading!.replace(/`/g, '').toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    found.add(n ? `${base}-${n}` : base);
  }
  return found;
}

/** Each link of a page that leads nowhere: a missing file, or a fragment with no such heading. */
function broken(page: Page): string[] {
  return relativeLinks(page.text).flatMap((target) => {
    const [file, fragment] = target.split('#') as [string, string | undefined];
    const path = file ? normalize(join(dirname(page.path), decodeURI(file))) : page.path;
    if (file && (path.startsWith('..') || !existsSync(join(ROOT, path)))) return [`${page.path}: ${target} (no file ${path})`];
    if (fragment === undefined) return [];
    if (!path.endsWith('.md') || (file && statSync(join(ROOT, path)).isDirectory())) return [`${page.path}: ${target} (a fragment into ${path}, which is not a Markdown page)`];
    const text = path === page.path ? page.text : read(path);
    return anchors(text).has(fragment) ? [] : [`${page.path}: ${target} (no heading #${fragment} in ${path})`];
  });
}

describe('the documentation', () => {
  const readme = read('README.md');

  it('README.md is a front door: under 250 lines', () => {
    expect(readme.split('\n').length).toBeLessThan(250);
  });

  it('README.md names the test command (CI and hooks read it there)', () => {
    expect(readme).toContain('`npm test`');
  });

  it('README.md links every page of docs/', () => {
    const linked = new Set(relativeLinks(readme).map((target) => target.split('#')[0]));
    const unlinked = docPages().map((page) => page.path).filter((path) => path !== 'README.md' && !linked.has(path));
    expect(unlinked).toEqual([]);
  });

  it('has no broken relative link', () => {
    expect(pages.flatMap(broken)).toEqual([]);
  });
});

describe('the link checker', () => {
  it('finds links outside code, and GitHub anchors of headings', () => {
    const markdown = ['# How a `deploy` runs', '## 8. Check', '## Check', '## Check', 'See [a](other.md#x), [b](#8-check) and [c](https://example.com).', '```', '[not](a-link.md)', '```', ''].join('\n');
    expect(relativeLinks(markdown)).toEqual(['other.md#x', '#8-check']);
    expect([...anchors(markdown)]).toEqual(['how-a-deploy-runs', '8-check', 'check', 'check-1']);
  });

  it('reports a missing page and a missing heading', () => {
    const page = { path: 'docs/x.md', text: '# X\n[gone](gone.md), [here](#x), [nowhere](#nowhere), [readme](../README.md#contents)\n' };
    expect(broken(page)).toEqual(['docs/x.md: gone.md (no file docs/gone.md)', 'docs/x.md: #nowhere (no heading #nowhere in docs/x.md)']);
  });
});
