// The user documentation as the tests read it: README.md and every page under docs/.
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../../..');

export interface Page {
  /** Relative to the repository, e.g. docs/getting-started.md. */
  path: string;
  text: string;
}

/** README.md first, then docs/*.md in name order. */
export function docPages(): Page[] {
  const pages = readdirSync(join(ROOT, 'docs')).filter((name) => name.endsWith('.md')).sort().map((name) => `docs/${name}`);
  return ['README.md', ...pages].map((path) => ({ path, text: readFileSync(join(ROOT, path), 'utf8') }));
}

/** The fenced ```yaml blocks of a Markdown text, each without its fences. */
export function yamlBlocks(markdown: string): string[] {
  return [...markdown.matchAll(/^```yaml\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}
