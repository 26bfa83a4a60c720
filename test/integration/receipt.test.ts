// The deploy receipt and the canary on the estate: production's two hosts behind both of its
// HAProxy peers, under load through each. The receipt's counts are checked against what the load
// generator counted itself; a release whose health check passes while its pages answer 500 is
// stopped by the canary, or deployed (as before) without one, its errors on the receipt.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Receipt } from '../../src/receipt/document.js';
import { containersOn, runDeploy, versionsOn, type DeployRunOptions } from './support/deploy.js';
import { onMasterStop, serverStatus, type Estate } from './support/estate.js';
import type { GitHubStandIn } from './support/github.js';
import { endedWithin, underLoadThrough, type LoadReport } from './support/load.js';
import { leaveProduction, startOnProduction } from './support/suite.js';

let estate: Estate;
let github: GitHubStandIn;
const hosts = () => estate.environments.production.hosts.slice(0, 2);
const deploy = (options: Omit<DeployRunOptions, 'environment'>) => runDeploy(estate, { environment: 'production', githubUrl: github.url, ...options });
const underLoad = <T>(work: () => Promise<T>) => underLoadThrough(estate.environments.production.lbs.map((lb) => lb.frontend), work);
const CLIENTS = 8; // underLoadThrough: 4 keep-alive clients through each of the 2 load balancers

const GOOD = 'v8.1.0';
const FAILING = 'v8.2.0';

const rate = (loads: LoadReport[]) => loads.reduce((sum, l) => sum + l.sent / l.seconds, 0);

beforeAll(async () => {
  ({ estate, github } = await startOnProduction([{ version: 'v8.0.0' }, { version: GOOD }, { version: FAILING, failingPages: true }], 'v8.0.0'));
}, 600_000);

afterAll(() => leaveProduction(estate, github), 120_000);

describe('the receipt of a good release, through a canary hold', () => {
  it('counts what the load generator counted, with no errors, in the summary, the output and the record', async () => {
    const [run, loads] = await underLoad(() => deploy({ version: GOOD, extra: 'canary: { hold: 2, max-error-rate: 1 }' }));
    expect(run.code, run.log).toBe(0);
    for (const load of loads) expect(load.failures).toEqual([]);
    const receipt = JSON.parse(run.outputs.receipt ?? '') as Receipt;
    expect(receipt).toMatchObject({ environment: 'production', version: GOOD, outcome: 'success' });
    // The generator counts a request when its answer arrives; HAProxy counts it when it sends it
    // on, and the action's readings take a moment to come back over SSH. At each end of the
    // window at most one request per client is in flight, and a reading is late by well under
    // 100 ms: the two counts may differ by that much, no more.
    const [start, end] = [Date.parse(receipt.window.start), Date.parse(receipt.window.end)];
    const counted = endedWithin(loads, start, end);
    const tolerance = 2 * CLIENTS + Math.ceil(rate(loads) * 0.1);
    expect(Math.abs(receipt.totals.requests - counted), `receipt ${receipt.totals.requests}, generator ${counted}, tolerance ${tolerance}`).toBeLessThanOrEqual(tolerance);
    expect(receipt.totals.errors).toBe(0);
    expect(receipt.baseline.totals.requests).toBeGreaterThan(0);
    // Both releases served during the rollout: the old until each host moved, the new after.
    expect(receipt.releases['v8.0.0']!.requests).toBeGreaterThan(0);
    expect(receipt.releases[GOOD]!.requests).toBeGreaterThan(0);
    expect(receipt.releases['v8.0.0']!.requests + receipt.releases[GOOD]!.requests + (receipt.releases.none?.requests ?? 0)).toBe(receipt.totals.requests);
    expect(receipt.hosts.map((h) => h.host)).toEqual(hosts());
    expect(receipt.canary?.verdicts).toEqual([expect.stringMatching(new RegExp(`^${GOOD} answered \\d+ requests without an error on ${hosts()[0]} during the 2 s hold: within the budget of 1%$`))]);
    expect(receipt.steps.filter((s) => s.what === 'in service')).toHaveLength(4);
    // The summary holds the same totals, the per-host table and both charts.
    const n = (x: number) => x.toLocaleString('en-US');
    expect(run.summary).toContain('### Receipt: what the load balancers counted');
    expect(run.summary).toContain(`| Requests | ${n(receipt.baseline.totals.requests)} | ${n(receipt.totals.requests)} |`);
    expect(run.summary).toContain(`| Errors (rate) | ${n(receipt.baseline.totals.errors)} (${Number(receipt.baseline.totals.errorRate.toFixed(2))}%) | 0 (0%) |`);
    for (const host of hosts()) expect(run.summary).toContain(`| ${host} | `);
    expect(run.summary).toMatch(/```mermaid\nxychart-beta\n/);
    expect(run.summary).toMatch(/```mermaid\ngantt\n/);
    const status = github.deployments.at(-1)!.statuses.at(-1)!;
    expect(status.state).toBe('success');
    expect(status.description).toBe(`${GOOD} on 2 hosts in ${receipt.window.seconds.toFixed(1)} s: 0 errors in ${n(receipt.totals.requests)} requests`);
  }, 300_000);
});

describe('a release that passes its health check and fails its pages', () => {
  it('with a canary: fails in the hold, every host back on the release before, failures bounded by one server\'s share of the hold', async () => {
    const before = await Promise.all(hosts().map((h) => containersOn(estate, h)));
    const hold = 5;
    const [run, loads] = await underLoad(() => deploy({ version: FAILING, extra: `canary: { hold: ${hold}, max-error-rate: 1 }` }));
    expect(run.code).toBe(1);
    const canaryHost = hosts()[0]!;
    // (The error annotation escapes % as %25, as workflow commands must.)
    expect(run.log.replaceAll('%25', '%')).toMatch(new RegExp(`::error::${FAILING} to production failed on ${canaryHost}: master ${FAILING} answered \\d+ of \\d+ requests with 5xx \\(100%\\) on ${canaryHost} during the ${hold} s hold; budget 1%`));
    expect(await versionsOn(estate, hosts())).toEqual(Object.fromEntries(hosts().map((h) => [h, { demo: `${GOOD} running`, 'demo-backup': `${GOOD} running` }])));
    // The second host never moved: the very same containers.
    expect(await containersOn(estate, hosts()[1]!)).toEqual(before[1]);
    // One master of two (round robin on both load balancers) takes half the requests; it serves
    // for the hold, plus the moments from being put in service to the hold's first reading and
    // from the verdict to its drain (2 s is ample for both).
    const failed = loads.reduce((sum, l) => sum + l.failed, 0);
    const bound = Math.ceil((rate(loads) / 2) * (hold + 2));
    expect(failed).toBeGreaterThan(0);
    expect(failed, `${failed} failed requests, bound ${bound}`).toBeLessThanOrEqual(bound);
    for (const load of loads) for (const failure of load.failures) expect(failure).toMatch(new RegExp(`HTTP 500 ${FAILING} failing`));
    const receipt = JSON.parse(run.outputs.receipt ?? '') as Receipt;
    expect(receipt.outcome).toBe('failure');
    expect(receipt.releases[FAILING]!.http5xx).toBe(receipt.releases[FAILING]!.requests);
    expect(receipt.releases[GOOD]!.errors).toBe(0);
    const record = github.deployments.at(-1)!.statuses.at(-1)!;
    expect(record.state).toBe('failure');
    // GitHub keeps 140 characters of a description: the numbers come first.
    expect(record.description).toMatch(new RegExp(`answered \\d+ of \\d+ requests with 5xx \\(100%\\)`));
  }, 300_000);

  it('without a canary: deployed as before, the receipt showing its errors', async () => {
    const [run, loads] = await underLoad(() => deploy({ version: FAILING }));
    expect(run.code, run.log).toBe(0);
    const receipt = JSON.parse(run.outputs.receipt ?? '') as Receipt;
    expect(receipt.outcome).toBe('success');
    const errors = receipt.releases[FAILING]!.http5xx;
    expect(errors).toBeGreaterThan(0);
    expect(receipt.totals.errors).toBe(errors);
    expect(receipt.canary).toBeUndefined();
    // The generator's 500s in the window, within what the boundaries can shift.
    const counted = endedWithin(loads, Date.parse(receipt.window.start), Date.parse(receipt.window.end), true);
    expect(Math.abs(errors - counted), `receipt ${errors}, generator ${counted}`).toBeLessThanOrEqual(2 * CLIENTS + Math.ceil(rate(loads) * 0.1));
    expect(run.summary).toContain(`| 5xx answers | 0 | ${errors.toLocaleString('en-US')} |`);
  }, 300_000);
});

describe('a runner killed during the canary hold', () => {
  it('the post step takes the canary host back to the release before: an unjudged release is not finished', async () => {
    // The hosts run FAILING now (the test before deployed it without a canary).
    const [[run, post], loads] = await underLoad(async () => {
      let stopWatching = () => {};
      const run = await deploy({
        version: GOOD,
        extra: 'canary: { hold: 60, max-error-rate: 1 }',
        onStart: (pid) => {
          // The master's replacement takes a second or two; 5 s after it began the canary holds.
          stopWatching = onMasterStop(estate, hosts()[0]!, () => setTimeout(() => process.kill(pid, 'SIGKILL'), 5_000));
        },
      }).finally(() => stopWatching());
      const post = await deploy({ version: GOOD, post: { state: run.state } });
      return [run, post] as const;
    });
    expect(run.code).toBeNull();
    expect(run.log).toContain(`canary: ${GOOD} serves here alone for 60 s`);
    expect(post.code, post.log).toBe(0);
    expect(await versionsOn(estate, hosts())).toEqual(Object.fromEntries(hosts().map((h) => [h, { demo: `${FAILING} running`, 'demo-backup': `${FAILING} running` }])));
    for (const lb of estate.environments.production.lbs) {
      for (const server of ['h1-master', 'h1-backup', 'h2-master', 'h2-backup']) expect(await serverStatus(estate, lb, server), `${lb.address} ${server}`).toMatch(/^UP/);
    }
    // FAILING's pages fail, as they did before: no failure came from the kill or the repair.
    for (const load of loads) for (const failure of load.failures) expect(failure).toMatch(new RegExp(`HTTP 500 ${FAILING} failing`));
  }, 300_000);
});
