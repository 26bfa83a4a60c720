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

/** Every known secret replaced by ***, also in each of the given encodings (e.g. HTML-escaped). */
export function redact(text: string, encodings: ((value: string) => string)[] = []): string {
  let out = text;
  for (const secret of [...known].sort((a, b) => b.length - a.length)) {
    for (const form of new Set([secret, ...encodings.map((encode) => encode(secret))])) out = out.split(form).join('***');
  }
  return out;
}
