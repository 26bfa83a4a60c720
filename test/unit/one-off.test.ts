// The one-off task's command as the `task` input gives it, the release the environment runs as
// `command: run` picks it, and the failure text of a release command or task.
import { describe, expect, it } from 'vitest';
import { InputError, commandWords } from '../../src/inputs.js';
import { runningRelease } from '../../src/commands/run.js';
import { failureText } from '../../src/pipeline/one-off.js';
import { unfinished, type Journal } from '../../src/pipeline/journal.js';
import type { Release } from '../../src/rollout/ports.js';

describe('commandWords (the task input)', () => {
  it.each([
    ['bin/rails db:seed', ['bin/rails', 'db:seed']],
    ['  rake   task  ', ['rake', 'task']],
    ['["sh", "-c", "echo a b; exit 3"]', ['sh', '-c', 'echo a b; exit 3']],
    // No shell reads it: quotes and $ are the command's own characters.
    ['echo "$HOME"', ['echo', '"$HOME"']],
  ])('%s', (text, words) => {
    expect(commandWords(text, 'task')).toEqual(words);
  });

  it.each([[''], ['   '], ['[]'], ['["a", 3]'], ['["a", ""]'], ['[not json']])('refuses %j, naming the input', (text) => {
    expect(() => commandWords(text, 'task')).toThrow(InputError);
    expect(() => commandWords(text, 'task')).toThrow(/^task: /);
  });
});

describe('runningRelease', () => {
  const release = (version: string, digest = `sha256:${version.replace(/\D/g, '').padEnd(64, '0')}`): Release => ({ version, digest, ref: `r/app@${digest}` });

  it('is the release most masters run, as pinned by a host that runs it', () => {
    const current = new Map([
      ['b', { master: release('v1.1.0'), backup: release('v1.1.0') }],
      ['a', { master: release('v1.0.0'), backup: release('v1.0.0') }],
      ['c', { master: release('v1.1.0') }],
    ]);
    expect(runningRelease(current)).toEqual(release('v1.1.0'));
  });

  it('is nothing when no host runs a release tag with a digest', () => {
    expect(runningRelease(new Map())).toBeUndefined();
    expect(runningRelease(new Map([['a', { master: { version: 'v1.0.0', digest: '', ref: 'r/app:v1.0.0', adopted: true } }]]))).toBeUndefined();
  });
});

describe('failureText', () => {
  const result = { host: 'h1', container: 'app-run', command: ['migrate'], version: 'v1.0.0', seconds: 1 };

  it('quotes the exit code and the last lines', () => {
    expect(failureText('release-command', { ...result, outcome: 'exited', exitCode: 2, lastLines: 'a\nb' }, 'release-command.timeout (5 s)')).toBe(
      'release-command ["migrate"] on h1 exited with code 2; its last lines:\na\nb',
    );
  });

  it('names the timeout key, and says when nothing was printed', () => {
    expect(failureText('the task', { ...result, outcome: 'timeout', lastLines: '' }, 'the timeout input (5 s)')).toBe(
      'the task ["migrate"] on h1 did not finish within the timeout input (5 s); it printed nothing',
    );
  });
});

describe('unfinished (what unlock refuses to lose, what a task refuses to start on)', () => {
  const journal = { environment: 'staging', touched: ['h1', 'h2'], outOfService: [], heldOn: [] } as Journal;

  it('is nothing for a run that touched hosts and left each one settled', () => {
    expect(unfinished(journal)).toEqual([]);
  });

  it('names each kind of work left: servers out, containers mid-change or set aside, canaries unjudged', () => {
    expect(unfinished({ ...journal, outOfService: ['h1:50000'], changing: ['h1/master'], asides: ['h2/backup'], unproven: ['h1'] })).toEqual([
      'out of service: h1:50000',
      'mid-change: h1/master',
      'set aside: h2/backup',
      'canary unjudged on h1',
    ]);
  });
});
