// Text from outside the action — container logs and health answers, registry pull progress,
// lock holder labels, anything the rollout reports about a host — goes to the log between
// `::stop-commands::TOKEN` and `::TOKEN::`: a line in it such as `::error::` or `::add-mask::`
// (an app's request log is attacker-reachable) is shown, never obeyed. The token is random per
// block, so the text cannot close the block itself. Annotations (core.warning, core.error,
// setFailed) need no block: @actions/core escapes line breaks in their text.
import * as core from '@actions/core';
import { randomBytes } from 'node:crypto';

/** `text` wrapped so that the runner runs no workflow command found in it. */
export function quoteUntrusted(text: string): string {
  const token = randomBytes(16).toString('hex');
  return `::stop-commands::${token}\n${text}\n::${token}::`;
}

/** core.info for text that is not the action's own: one write, so parallel hosts cannot split it. */
export function infoUntrusted(text: string): void {
  core.info(quoteUntrusted(text));
}
