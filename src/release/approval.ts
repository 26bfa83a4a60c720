// Whether this workflow run was approved for an environment, from the reviews GitHub records per
// run (GET /repos/{owner}/{repo}/actions/runs/{run_id}/approvals). Pure.

/** One review of the run, as GitHub lists it: its state, the environments it covered, who gave it. */
export interface RunReview {
  state: string;
  environments: string[];
  user: string;
}

/** The verdict of the approval gate: who approved, or why not. */
export type ApprovalVerdict = { approved: true; by: string[] } | { approved: false; reason: string };

// GitHub environment names are case-insensitive (`Production` is `production`).
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Approved when at least one review of this run approved `environment`. A rejection does not
 * undo another review's approval: GitHub would not have run a job whose review was rejected,
 * and a run holds one review per waiting job. Reviews of other environments count for nothing.
 */
export function approvalFor(reviews: RunReview[], environment: string): ApprovalVerdict {
  const covering = reviews.filter((r) => r.environments.some((name) => same(name, environment)));
  const by = [...new Set(covering.filter((r) => r.state === 'approved').map((r) => r.user))];
  if (by.length > 0) return { approved: true, by };
  const rejected = covering.filter((r) => r.state === 'rejected').map((r) => r.user);
  if (rejected.length > 0) return { approved: false, reason: `this run's deployment to ${environment} was rejected by ${rejected.join(', ')}` };
  const others = [...new Set(reviews.filter((r) => r.state === 'approved').flatMap((r) => r.environments))];
  return {
    approved: false,
    reason: `no reviewer approved this run for ${environment}${others.length > 0 ? ` (approved for: ${others.join(', ')})` : ''}`,
  };
}
