// Test-only variants that break the code on purpose, one per invariant: the simulator must catch
// each within the `npm test` budget (simulator.test.ts). The test file's vi.mock wrappers read
// `sabotaged` and misbehave only while it names their invariant.
import type { Invariant } from './invariants.js';

export let sabotaged: Invariant | undefined;

export function sabotage(invariant: Invariant | undefined): void {
  sabotaged = invariant;
}

/** What each variant breaks. */
export const SABOTAGES: Record<Invariant, string> = {
  hosts: 'a host cut short always settles on its master\'s release (settleTarget), proven or not',
  kept: 'the plan forgets that a container was started by hand (planRollout drops `adopted`), so it is removed, not set aside',
  servers: 'a server goes back to READY after its update even where the operator held it out (LoadBalancers.restoreState)',
  lock: 'every lock counts as its run having ended (GitHub\'s answer read wrong), so a live run\'s lock is taken over',
  'next deploy': 'GitHub\'s word that a lock\'s run has ended is never asked (no stale lock is ever taken over)',
  report: 'the summary reports each host\'s release before the deploy as its release after it',
  requests: 'the health verdict says healthy whatever the container answers (the host driver\'s waitHealthy)',
};
