// A job summary as a GitHub reader sees it: its Markdown rendered to HTML (marked, GitHub-flavoured)
// with every ```mermaid block drawn by Mermaid itself, in headless Chromium (Debian's `chromium`
// package, and `fonts-noto-color-emoji` for the summary's ✅ and ❌, installed here when missing),
// saved as HTML and as a PNG screenshot. Used by the demo
// (npm run demo) on the production deploy's summary; alone:
//   node .build/scripts/summary-screenshot.js SUMMARY.md OUT.png
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { marked } from 'marked';
import { REPO_ROOT } from '../test/integration/support/estate.js';

const run = promisify(execFile);

async function chromium(): Promise<string> {
  const found = await run('sh', ['-c', 'command -v chromium && test -d /usr/share/fonts/truetype/noto']).then(({ stdout }) => stdout.split('\n')[0]!.trim(), () => '');
  if (found) return found;
  console.log('Installing Debian\'s chromium and fonts-noto-color-emoji packages (apt-get) to draw the summary...');
  await run('apt-get', ['install', '-y', '--no-install-recommends', 'chromium', 'fonts-noto-color-emoji'], { maxBuffer: 64 * 1024 * 1024 });
  return 'chromium';
}

/** The summary as a page: GitHub's width and font, Mermaid's own script drawing each chart. */
export function summaryPage(markdown: string): string {
  const renderer = new marked.Renderer();
  const code = renderer.code.bind(renderer);
  renderer.code = (token) => (token.lang === 'mermaid' ? `<pre class="mermaid">${token.text.replace(/</g, '&lt;')}</pre>` : code(token));
  const body = marked.parse(markdown, { gfm: true, async: false, renderer });
  const mermaid = pathToFileURL(join(REPO_ROOT, 'node_modules/mermaid/dist/mermaid.min.js')).href;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>Job summary</title>
<style>
  body { font-family: -apple-system, "Segoe UI", "Noto Sans", Helvetica, Arial, sans-serif; font-size: 14px; color: #1f2328; max-width: 1012px; margin: 24px auto; padding: 0 16px; }
  table { border-collapse: collapse; margin: 8px 0 16px; } th, td { border: 1px solid #d1d9e0; padding: 6px 13px; } tr:nth-child(2n) { background: #f6f8fa; }
  pre.mermaid { background: none; text-align: center; } sub { color: #59636e; }
</style>
<script src="${mermaid}"></script>
</head><body>
${body}
<script>
  mermaid.initialize({ startOnLoad: false, theme: 'default' });
  mermaid.run({ querySelector: 'pre.mermaid' }).then(() => document.body.setAttribute('data-drawn', 'yes'), (e) => document.body.setAttribute('data-drawn', 'error: ' + e.message));
</script>
</body></html>
`;
}

/** Writes the page to `html` and a screenshot of it to `png`; returns whether Mermaid drew every chart. */
export async function screenshotSummary(markdown: string, html: string, png: string): Promise<boolean> {
  writeFileSync(html, summaryPage(markdown));
  const browser = await chromium();
  const flags = ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--allow-file-access-from-files', '--virtual-time-budget=15000'];
  // Mermaid's verdict, from the page itself once drawn.
  const { stdout } = await run(browser, [...flags, '--dump-dom', pathToFileURL(html).href], { maxBuffer: 64 * 1024 * 1024 });
  const drawn = /data-drawn="([^"]*)"/.exec(stdout)?.[1] ?? 'never';
  await run(browser, [...flags, '--window-size=1100,2000', `--screenshot=${png}`, pathToFileURL(html).href]);
  if (drawn !== 'yes') console.error(`Mermaid did not draw every chart: ${drawn}`);
  return drawn === 'yes';
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [input, output] = process.argv.slice(2);
  if (!input || !output) throw new Error('usage: summary-screenshot.js SUMMARY.md OUT.png');
  const ok = await screenshotSummary(readFileSync(input, 'utf8'), output.replace(/\.png$/, '.html'), output);
  console.log(`${output}: ${ok ? 'every chart drawn' : 'NOT every chart drawn'}`);
  process.exitCode = ok ? 0 : 1;
}
