// Secrets are masked in the log by the runner (core.setSecret), but the job summary is a file
// the runner does not filter: everything written there passes through redact() too.
import * as core from '@actions/core';

const known = new Set<string>();

export function maskSecret(value: string): void {
  if (!value) return;
  core.setSecret(value);
  known.add(value);
  // The runner masks a multi-line value line by line; so does redact().
  for (const line of value.split(/\r?\n/)) if (line.trim().length >= 4) known.add(line.trim());
}

export function redact(text: string): string {
  let out = text;
  for (const secret of [...known].sort((a, b) => b.length - a.length)) out = out.split(secret).join('***');
  return out;
}
