// What a rollout leaves for its post step, written as it goes: which hosts it touched, which
// servers it has out of service, what the operator had out of service before it. The post step
// of a job killed mid-rollout (interrupted.ts) finishes from it.
import * as core from '@actions/core';
import type { HeldSnapshot } from '../drivers/load-balancers.js';
import type { RolloutJournal } from '../rollout/execute.js';

export const JOURNAL_STATE = 'rollout-journal';

export interface Journal {
  environment: string;
  touched: string[];
  /** Fleet server names (`host:port`) this run has out of service right now. */
  outOfService: string[];
  /** What the operator had out of service before the deploy, per load balancer: left so. */
  heldOn: HeldSnapshot;
  deploymentId?: number;
  /** Hosts whose new master is a canary not yet judged: the post step does not finish them on it. */
  unproven?: string[];
}

/** Keeps the journal in the step's saved state, rewritten on every change. */
export class JournalWriter implements RolloutJournal {
  constructor(private readonly data: Journal) {
    this.save();
  }

  touched(host: string): void {
    if (!this.data.touched.includes(host)) this.data.touched.push(host);
    this.save();
  }

  outOfService(server: string, out: boolean): void {
    const has = this.data.outOfService.includes(server);
    if (out === has) return;
    this.data.outOfService = out ? [...this.data.outOfService, server] : this.data.outOfService.filter((s) => s !== server);
    this.save();
  }

  unproven(host: string, holding: boolean): void {
    const rest = (this.data.unproven ?? []).filter((h) => h !== host);
    this.data.unproven = holding ? [...rest, host] : rest;
    this.save();
  }

  /** Whether servers this run took out of service are still out (a rollback that failed). */
  pending(): boolean {
    return this.data.outOfService.length > 0;
  }

  /** Nothing left to finish. */
  clear(): void {
    core.saveState(JOURNAL_STATE, '');
  }

  private save(): void {
    core.saveState(JOURNAL_STATE, JSON.stringify(this.data));
  }
}

