// Whether this workflow run was approved for an environment, from the reviews GitHub records per
// run (GET /repos/{owner}/{repo}/actions/runs/{run_id}/approvals). Pure.

/** One review of the run, as GitHub lists it: its state, the environments it covered, who gave it. */
export interface RunReview {
  state: string;
  environments: string[];
  user: string;
}

/** The verdict of the approval gate: who approved, or why not. */
export type ApprovalVerdict = { approved: true; by: string[] } | { approved: false; reason: string; /** What to do, when binding the job would not help. */ fix?: string };

// GitHub environment names are case-insensitive (`Production` is `production`).
const same = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

/**
 * Approved when at least one review of this run approved `environment`. A rejection does not
 * undo another review's approval in a run's first attempt: GitHub would not have run a job whose
 * review was rejected, and a run holds one review per waiting job. Reviews of other environments
 * count for nothing.
 *
 * A re-run (`attempt` > 1, GitHub allows them for 30 days) is judged on its own: GitHub lists the
 * reviews of every attempt of the run together, with neither the attempt nor the time of each, so
 * an approval of attempt 1 and a rejection of attempt 2 look alike. The newest review decides; it
 * can be told only when every review of the environment says the same, so a re-run is approved
 * when all of them approved it and is refused, saying why, when any rejected it.
 */
export function approvalFor(reviews: RunReview[], environment: string, attempt = 1): ApprovalVerdict {
  const covering = reviews.filter((r) => r.environments.some((name) => same(name, environment)));
  const by = [...new Set(covering.filter((r) => r.state === 'approved').map((r) => r.user))];
  const rejected = covering.filter((r) => r.state === 'rejected').map((r) => r.user);
  if (attempt > 1 && by.length > 0 && rejected.length > 0) {
    return {
      approved: false,
      reason:
        `this is attempt ${attempt} of the run, and its reviews of ${environment} disagree (approved by ${by.join(', ')}; rejected by ${rejected.join(', ')})`,
      fix: 'GitHub does not say which attempt each review belongs to, so the newest cannot be told: start a new workflow run instead of re-running this one',
    };
  }
  if (by.length > 0) return { approved: true, by };
  if (rejected.length > 0) return { approved: false, reason: `this run's deployment to ${environment} was rejected by ${rejected.join(', ')}` };
  const others = [...new Set(reviews.filter((r) => r.state === 'approved').flatMap((r) => r.environments))];
  return {
    approved: false,
    reason: `no reviewer approved this run for ${environment}${others.length > 0 ? ` (approved for: ${others.join(', ')})` : ''}`,
  };
}
