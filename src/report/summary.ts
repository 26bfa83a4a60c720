// The job summary. Runs outside a runner (no GITHUB_STEP_SUMMARY) simply skip it.
import * as core from '@actions/core';

export async function writeSummary(build: (summary: typeof core.summary) => void): Promise<void> {
  if (!process.env.GITHUB_STEP_SUMMARY) return;
  build(core.summary);
  await core.summary.write();
}
