// What `version: previous` and the containers' history label give after redeploys, plain deploys
// of older releases, re-pushed tags and labels tampered with. Written against mutation testing
// (npm run mutate): each test kills changes to src/release/history.ts that history.test.ts lets
// through.
//
// Equivalent mutants (no input tells them apart), left in the report on purpose:
// - effectiveHistory, `else if (stack.at(-1)?.payload.version === version) stack.pop()` → never
//   popping: a redeploy of the version on top leaves its older record just below the newer. Every
//   reader looks for the newest record of a version (findLast) or skips the current version, so
//   the extra entry is never read, except for a record without a digest, which the trusted records
//   these functions get never are (release/trust.ts: digestProblem).
// - ENTRY without its `^`: `(.+)` takes everything from the first character whenever any match
//   exists, and entries hold no line breaks (the label is split on whitespace).
// - parseHistoryLabel splitting on `/\s/` instead of `/\s+/`: the empty entries between two
//   spaces are dropped by the filter like any other malformed entry.
import { describe, expect, it } from 'vitest';
import { nextHistory, parseHistoryLabel, previousInLabel, previousRelease, type DeploymentRecord } from '../../src/release/history.js';

const digest = (c: string) => `sha256:${c.repeat(64)}`;
const A = digest('a');
const B = digest('b');
const e = (version: string, d = A) => `${version}@${d}`;

/** Successful deploys, oldest first, returned newest first as GitHub lists them. */
function deployed(...versions: string[]): DeploymentRecord[] {
  return versions
    .map((version, i): DeploymentRecord => ({
      id: i + 1,
      ref: version,
      task: 'deploy',
      createdAt: new Date(Date.UTC(2026, 0, 1, 0, i)),
      payload: { version, image: 'registry.example.com/clay/mobile', digest: A },
      state: 'success',
    }))
    .reverse();
}

describe('previous after a redeploy', () => {
  it('redeploying a release from further back makes the one it replaced previous, whatever sits below', () => {
    expect(previousRelease(deployed('v1.0.0', 'v2.0.0', 'v3.0.0', 'v2.0.0'), 'v2.0.0')?.version).toBe('v3.0.0');
  });
});

describe('the history label', () => {
  it('drops an entry with anything after its digest (it would reach Docker API paths)', () => {
    expect(parseHistoryLabel(`${e('v1.0.0')} ${e('v1.1.0')}/../../containers`)).toEqual([e('v1.0.0')]);
  });

  it('a plain deploy of an older release keeps the newer ones in the label: previous is the release it replaced', () => {
    const label = nextHistory([e('v1.0.0'), e('v2.0.0'), e('v3.0.0')], { version: 'v1.0.0', digest: A }, 'deploy');
    expect(label).toEqual([e('v1.0.0'), e('v2.0.0'), e('v3.0.0'), e('v1.0.0')]);
    expect(previousInLabel(label, 'v1.0.0')?.version).toBe('v3.0.0');
  });

  it('a deploy of the release below the top goes on top and removes nothing', () => {
    expect(nextHistory([e('v1.0.0'), e('v2.0.0'), e('v3.0.0')], { version: 'v2.0.0', digest: A }, 'deploy')).toEqual([e('v1.0.0'), e('v2.0.0'), e('v3.0.0'), e('v2.0.0')]);
  });
});

describe('previous in a history label', () => {
  const label = [e('v1.0.0'), e('v2.0.0'), e('v3.0.0')];

  it('is the release before the running one, never one deployed after it', () => {
    expect(previousInLabel(label, 'v2.0.0')?.version).toBe('v1.0.0');
  });

  it('is the newest entry when the running release is not in the label', () => {
    expect(previousInLabel(label, 'v9.0.0')?.version).toBe('v3.0.0');
  });

  it('is none for the oldest release in the label, even when newer ones follow it', () => {
    expect(previousInLabel(label, 'v1.0.0')).toBeUndefined();
  });

  it('skips the running release pushed again under its tag (another digest): never its own previous', () => {
    expect(previousInLabel([e('v1.0.0'), e('v2.0.0', A), e('v2.0.0', B)], 'v2.0.0')).toEqual({ version: 'v1.0.0', digest: A });
  });
});
