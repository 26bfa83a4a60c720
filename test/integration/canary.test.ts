// The canary's verdict and hold on the estate (issue 20): production's two hosts behind both of
// its HAProxy peers, under load through each. A release that answers about 1 page in 200 with
// 500 passes a 5 % budget; one that answers every page with 500 fails it. One load balancer's
// HAProxy stopped for real (SIGSTOP: its admin socket accepts and answers nothing) during the
// hold: the hold still ends, while it is stopped, and a cancel during it ends the step before the
// runner's SIGTERM with every host settled.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Receipt } from '../../src/receipt/document.js';
import { runDeploy, versionsOn, type DeployRunOptions } from './support/deploy.js';
import { execIn, lbNodeOf, serverStatus, type Estate } from './support/estate.js';
import type { GitHubStandIn } from './support/github.js';
import { underLoadThrough } from './support/load.js';
import { leaveProduction, startOnProduction } from './support/suite.js';

let estate: Estate;
let github: GitHubStandIn;
const hosts = () => estate.environments.production.hosts.slice(0, 2);
const deploy = (options: Omit<DeployRunOptions, 'environment'>) => runDeploy(estate, { environment: 'production', githubUrl: github.url, ...options });
const underLoad = <T>(work: () => Promise<T>) => underLoadThrough(estate.environments.production.lbs.map((lb) => lb.frontend), work);

const BASE = 'v20.0.0';
const SPARSE = 'v20.1.0'; // one page in 200 answers 500
const FAILING = 'v20.2.0'; // every page answers 500
const GOOD = 'v20.3.0';
const LATER = 'v20.4.0';

/** Stops (SIGSTOP) or resumes (SIGCONT) the HAProxy of production's second load balancer: its master and workers. */
function freezeSecondLoadBalancer(signal: 'STOP' | 'CONT'): Promise<string> {
  const node = lbNodeOf(estate, estate.environments.production.lbs[1]!.address);
  return execIn(node, 'sh', '-c', `m=$(cat /run/haproxy/haproxy.pid) && kill -${signal} $m $(pgrep -P $m)`);
}

/** Calls `then` once, the first time the step's output holds `text`. */
function once(text: string | RegExp, then: () => void): (log: string) => void {
  let done = false;
  return (log) => {
    if (done || !(typeof text === 'string' ? log.includes(text) : text.test(log))) return;
    done = true;
    then();
  };
}

beforeAll(async () => {
  ({ estate, github } = await startOnProduction(
    [{ version: BASE }, { version: SPARSE, failingPages: 200 }, { version: FAILING, failingPages: true }, { version: GOOD }, { version: LATER }],
    BASE,
  ));
}, 600_000);

afterAll(async () => {
  await freezeSecondLoadBalancer('CONT').catch(() => undefined);
  await leaveProduction(estate, github);
}, 120_000);

describe('the verdict at max-error-rate: 5', () => {
  it('passes a release that answers about 1 page in 200 with 500', async () => {
    const [run, loads] = await underLoad(() => deploy({ version: SPARSE, extra: 'canary: { hold: 10, max-error-rate: 5 }' }));
    expect(run.code, run.log).toBe(0);
    const receipt = JSON.parse(run.outputs.receipt ?? '') as Receipt;
    expect(receipt.canary?.verdicts[0]).toMatch(new RegExp(`^${SPARSE} answered (\\d+ of )?\\d+ requests.* on ${hosts()[0]} during the 10 s hold: within the budget of 5%$`));
    expect(await versionsOn(estate, hosts())).toEqual(Object.fromEntries(hosts().map((h) => [h, { demo: `${SPARSE} running`, 'demo-backup': `${SPARSE} running` }])));
    // Every failure the clients saw is the release's own page.
    for (const load of loads) for (const failure of load.failures) expect(failure).toMatch(new RegExp(`HTTP 500 ${SPARSE} failing`));
    expect(receipt.releases[SPARSE]!.errors).toBe(receipt.releases[SPARSE]!.http5xx);
  }, 300_000);

  it('fails a release that answers every page with 500, every host back on the release before', async () => {
    const [run] = await underLoad(() => deploy({ version: FAILING, extra: 'canary: { hold: 5, max-error-rate: 5 }' }));
    expect(run.code).toBe(1);
    expect(run.log.replaceAll('%25', '%')).toMatch(new RegExp(`${FAILING} answered \\d+ of \\d+ requests with 5xx \\(100%\\) on ${hosts()[0]} during the 5 s hold; budget 5% \\(99% sure its rate is over \\d+(\\.\\d)?%\\)`));
    expect(await versionsOn(estate, hosts())).toEqual(Object.fromEntries(hosts().map((h) => [h, { demo: `${SPARSE} running`, 'demo-backup': `${SPARSE} running` }])));
  }, 300_000);
});

describe('a load balancer whose admin socket answers nothing during the hold', () => {
  it('the hold ends all the same (while it is still stopped), its readings gaps, never a queue', async () => {
    let stopped = false;
    let endedWhileStopped = false;
    const holdBegins = once(`canary: ${GOOD} serves here alone for 5 s`, () => {
      stopped = true;
      void freezeSecondLoadBalancer('STOP');
    });
    const verdictGiven = once(new RegExp(`canary: ${GOOD} answered .* during the 5 s hold`), () => {
      // The verdict came while the load balancer was stopped: the hold did not wait for it.
      endedWhileStopped = stopped;
      stopped = false;
      void freezeSecondLoadBalancer('CONT');
    });
    const [run, loads] = await underLoad(() =>
      deploy({
        version: GOOD,
        extra: 'canary: { hold: 5, max-error-rate: 1 }',
        onOutput: (log) => {
          holdBegins(log);
          verdictGiven(log);
        },
      }).finally(() => freezeSecondLoadBalancer('CONT')),
    );
    expect(run.code, run.log).toBe(0);
    expect(endedWhileStopped).toBe(true);
    const receipt = JSON.parse(run.outputs.receipt ?? '') as Receipt;
    const second = estate.environments.production.lbs[1]!.address;
    const gaps = receipt.gaps.filter((g) => g.loadBalancer === second);
    expect(gaps.length).toBeGreaterThan(0);
    for (const gap of gaps) expect(gap.why).toMatch(/no (complete )?answer within 1 ?s|still answering an earlier reading/);
    expect(receipt.canary?.verdicts[0]).toMatch(/within the budget of 1%$/);
    // Stalled a few seconds, under the clients' 10 s timeout: no request failed but the pages of
    // the release before (1 in 200 of SPARSE's answer 500) until it was replaced.
    for (const load of loads) for (const failure of load.failures) expect(failure).toMatch(new RegExp(`HTTP 500 ${SPARSE} failing`));
  }, 300_000);

  it('a cancel during it ends the step before the runner\'s SIGTERM, every host settled', async () => {
    let aliveAtSigterm: boolean | undefined;
    const timers: NodeJS.Timeout[] = [];
    let pid = 0;
    const cancel = once(`canary: ${LATER} serves here alone for 60 s`, () => {
      void freezeSecondLoadBalancer('STOP');
      // As the runner cancels: SIGINT, SIGTERM 7.5 s later. The load balancer resumes 1 s after the SIGINT.
      timers.push(setTimeout(() => process.kill(pid, 'SIGINT'), 2_000));
      timers.push(setTimeout(() => void freezeSecondLoadBalancer('CONT'), 3_000));
      timers.push(
        setTimeout(() => {
          try {
            process.kill(pid, 'SIGTERM');
            aliveAtSigterm = true;
          } catch {
            aliveAtSigterm = false;
          }
        }, 9_500),
      );
    });
    const [run, loads] = await underLoad(() =>
      deploy({ version: LATER, extra: 'canary: { hold: 60, max-error-rate: 1 }', onStart: (p) => (pid = p), onOutput: cancel })
        .then(async (result) => {
          // The runner's SIGTERM moment comes whether or not the step is still there.
          while (timers.length > 0 && aliveAtSigterm === undefined) await new Promise((done) => setTimeout(done, 100));
          return result;
        })
        .finally(() => {
          for (const timer of timers) clearTimeout(timer);
          return freezeSecondLoadBalancer('CONT');
        }),
    );
    expect(aliveAtSigterm).toBe(false);
    expect(run.code).toBe(1);
    expect(run.log).toContain('cancelled in production: every host serves, in service');
    // The canary was unproven: its host went back to what its backup ran.
    expect(await versionsOn(estate, hosts())).toEqual(Object.fromEntries(hosts().map((h) => [h, { demo: `${GOOD} running`, 'demo-backup': `${GOOD} running` }])));
    for (const lb of estate.environments.production.lbs) {
      for (const server of ['h1-master', 'h1-backup', 'h2-master', 'h2-backup']) expect(await serverStatus(estate, lb, server), `${lb.address} ${server}`).toMatch(/^UP/);
    }
    for (const load of loads) expect(load.failures).toEqual([]);
  }, 300_000);
});
