// The approval gate's reasons when several reviewers or environments are involved, as the job's
// failure prints them. Written against mutation testing (npm run mutate): each test kills changes
// to src/release/approval.ts that approval.test.ts lets through.
import { describe, expect, it } from 'vitest';
import { approvalFor } from '../../src/release/approval.js';

const review = (state: string, user: string, ...environments: string[]) => ({ state, environments, user });

describe('the approval gate names everyone involved', () => {
  it('every reviewer who rejected the deployment, separated', () => {
    expect(approvalFor([review('rejected', 'bob', 'production'), review('rejected', 'carol', 'production')], 'production')).toEqual({
      approved: false,
      reason: "this run's deployment to production was rejected by bob, carol",
    });
  });

  it('every environment the run was approved for instead, separated', () => {
    expect(approvalFor([review('approved', 'alice', 'staging'), review('approved', 'bob', 'qa')], 'production')).toEqual({
      approved: false,
      reason: 'no reviewer approved this run for production (approved for: staging, qa)',
    });
  });
});
