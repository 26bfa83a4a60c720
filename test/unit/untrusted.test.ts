// Text from outside the action in the log (workflow commands must not run) and in the job
// summary (it must not break out of its block): src/report/untrusted.ts and src/report/summary.ts.
import * as core from '@actions/core';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { maskSecret } from '../../src/report/secrets.js';
import { htmlText, preformatted, rolloutSummary, writeSummary } from '../../src/report/summary.js';
import { quoteUntrusted } from '../../src/report/untrusted.js';
import { StepFailed } from '../../src/rollout/execute.js';

const HOSTILE = [
  '::error::pwned',
  '  ::add-mask::hostile-mask',
  'GET / 200\r::warning file=x::carriage return',
  '::stop-commands::guess',
  '::guess::',
  '::endgroup::',
  '```',
  '</code></pre><h1>pwned</h1>',
  '',
  '# heading [link](https://example.com) ![img](https://example.com/x.png)',
].join('\n');

/** The workflow commands a runner would obey in `output` (it honours stop-commands blocks). */
function obeyed(output: string): string[] {
  const run: string[] = [];
  let token: string | undefined;
  for (const raw of output.split(/\r\n|\r|\n/)) {
    const line = raw.trimStart();
    if (!line.startsWith('::')) continue;
    if (token !== undefined) {
      if (line === `::${token}::`) token = undefined;
      continue;
    }
    const stop = /^::stop-commands::(.+)$/.exec(line);
    if (stop) token = stop[1];
    else run.push(line);
  }
  return run;
}

describe('quoteUntrusted', () => {
  it('the hostile text alone would issue commands', () => {
    expect(obeyed(HOSTILE)).toEqual(expect.arrayContaining(['::error::pwned', '::add-mask::hostile-mask', '::warning file=x::carriage return', '::endgroup::']));
  });

  it('quoted, none of its commands runs, and the log goes on obeying commands after it', () => {
    const output = `${quoteUntrusted(HOSTILE)}\n::group::next`;
    expect(obeyed(output)).toEqual(['::group::next']);
    expect(output).toContain(HOSTILE);
  });

  it('uses a fresh unguessable token for every block', () => {
    const tokens = [quoteUntrusted('a'), quoteUntrusted('a')].map((text) => /^::stop-commands::([0-9a-f]{32})\na\n::\1::$/.exec(text)?.[1]);
    expect(tokens[0]).toBeDefined();
    expect(tokens[1]).toBeDefined();
    expect(tokens[0]).not.toBe(tokens[1]);
  });
});

/** The summary with every <pre> block's content removed, as GitHub's Markdown reads block boundaries. */
const outsidePre = (html: string) => html.replace(/<pre><code>[^]*?<\/code><\/pre>/g, '<pre></pre>');

describe('summary text', () => {
  it('preformatted: one <pre> on lines of its own; the text cannot close it', () => {
    const block = preformatted(HOSTILE);
    expect(block.startsWith('\n<pre><code>')).toBe(true);
    expect(block.endsWith('</code></pre>\n\n')).toBe(true);
    expect(block.match(/<\/pre>/g)).toHaveLength(1);
    expect(outsidePre(block)).toBe('\n<pre></pre>\n\n');
    expect(block).toContain('&lt;/code&gt;&lt;/pre&gt;&lt;h1&gt;pwned&lt;/h1&gt;');
  });

  it('htmlText: no markup and no line break that could end an HTML block', () => {
    const text = htmlText(HOSTILE);
    expect(text).not.toMatch(/<(?!br>)|[\r\n]/);
    expect(text).toContain('&lt;h1&gt;');
  });

  describe('rolloutSummary of a failure whose logs and reason are hostile', () => {
    let file: string;
    afterEach(() => {
      delete process.env.GITHUB_STEP_SUMMARY;
      core.summary.emptyBuffer();
    });

    it('keeps them inside their blocks, and redacts secrets in escaped form too', async () => {
      file = join(mkdtempSync(join(tmpdir(), 'summary-')), 'summary.md');
      writeFileSync(file, '');
      process.env.GITHUB_STEP_SUMMARY = file;
      maskSecret('s3cr<t&value');
      const release = { version: 'v1.0.0', digest: 'sha256:0', ref: 'r@sha256:0' };
      const failure = new StepFailed('10.0.0.1', 'master', release, `did not become healthy: ${HOSTILE}`, `${HOSTILE}\ns3cr<t&value`);
      await writeSummary((s) =>
        rolloutSummary(s, {
          environment: 'staging',
          target: release,
          result: {
            ok: false,
            failure,
            failures: [failure],
            rollbackErrors: [`HAProxy answered: ${HOSTILE}`],
            hosts: [{ host: '10.0.0.1', before: {}, after: {}, seconds: 1, phases: [], health: HOSTILE, rolledBack: true }],
          },
        }),
      );
      const summary = readFileSync(file, 'utf8');
      const outside = outsidePre(summary);
      // Outside the <pre>: only the summary's own tags, and no line the text could have started.
      const tags = new Set([...outside.matchAll(/<\/?([a-z0-9]+)/g)].map((m) => m[1]));
      expect([...tags].sort()).toEqual(['br', 'details', 'h3', 'p', 'pre', 'summary', 'table', 'td', 'th', 'tr']);
      // Every line is an HTML block of one line (its content is not Markdown) but the image line.
      const lines = outside.split('\n').filter((line) => line !== '');
      expect(lines.filter((line) => !line.startsWith('<'))).toEqual(['Image `r@sha256:0`']);
      expect(summary).toContain('&lt;/code&gt;&lt;/pre&gt;&lt;h1&gt;pwned');
      expect(summary).not.toContain('s3cr&lt;t&amp;value');
      expect(summary).not.toContain('s3cr<t&value');
    });
  });
});
