// The receipt's arithmetic, attribution, verdicts and rendering, from counters as HAProxy
// reports them.
import { describe, expect, it } from 'vitest';
import { countersOf, parseStatCsv } from '../../src/drivers/haproxy.js';
import { describeErrors, judge, overBudget, worseThan } from '../../src/receipt/canary.js';
import { buildReceipt, receiptLine } from '../../src/receipt/document.js';
import { Ledger } from '../../src/receipt/ledger.js';
import { renderReceipt } from '../../src/receipt/render.js';
import { between, emptyTally, errorRate, type Tally } from '../../src/receipt/tally.js';
import type { FleetCounters, Release, ServerCounters } from '../../src/rollout/ports.js';

const counters = (requests: number, http5xx = 0, more: Partial<ServerCounters> = {}): ServerCounters => ({
  requests, http5xx, connectionErrors: 0, responseErrors: 0, retries: 0, redispatches: 0, responseMs: 4, totalMs: 9, ...more,
});
const tally = (requests: number, http5xx = 0): Tally => ({ ...emptyTally(), requests, http5xx });
const reading = (lbs: Record<string, Record<string, ServerCounters>>, failed: Record<string, string> = {}): FleetCounters => ({
  read: new Map(Object.entries(lbs).map(([lb, servers]) => [lb, new Map(Object.entries(servers))])),
  failed: new Map(Object.entries(failed)),
});
const policy = { holdSeconds: 30, maxErrorRate: 1, minRequests: 20 };
const release = (version: string, digest = `sha256:${version}`): Release => ({ version, digest, ref: `app@${digest}` });
const [v1, v2] = [release('v1'), release('v2')];

describe('counters', () => {
  it('reads a server row of show stat', () => {
    const csv = '# pxname,svname,qcur,scur,req_tot,hrsp_5xx,econ,eresp,wretr,wredis,rtime,ttime,status\napp,h1-master,0,1,120,3,1,2,4,5,7,11,UP\n';
    expect(countersOf(parseStatCsv(csv)![0]!)).toEqual({ requests: 120, http5xx: 3, connectionErrors: 1, responseErrors: 2, retries: 4, redispatches: 5, responseMs: 7, totalMs: 11 });
  });

  it.each([
    ['what changed between two readings', counters(100, 1), counters(160, 4), { requests: 60, http5xx: 3 }],
    ['a counter lower than before (a server re-added) counts the later reading whole', counters(100, 1), counters(15, 0), { requests: 15, http5xx: 0 }],
  ])('%s', (_name, before, after, expected) => {
    expect(between(before, after)).toMatchObject(expected);
  });

  it.each([
    [tally(0), 0],
    [tally(200, 2), 1],
    [{ ...tally(0), connectionErrors: 3 }, 100],
  ])('error rate of %o is %d%%', (t, rate) => expect(errorRate(t)).toBe(rate));
});

describe('the ledger', () => {
  const servers = new Map([['h1', { master: 'h1:50000', backup: 'h1:50001' }], ['h2', { master: 'h2:50000', backup: 'h2:50001' }]]);
  const ledger = () => new Ledger(servers, (_host, _role) => v1);

  it('credits each server\'s requests to the release behind it, summed over the load balancers', () => {
    const l = ledger();
    l.take(1000, reading({ lb1: { 'h1:50000': counters(10), 'h2:50000': counters(10) }, lb2: { 'h1:50000': counters(0), 'h2:50000': counters(0) } }));
    l.take(2000, reading({ lb1: { 'h1:50000': counters(30), 'h2:50000': counters(25) }, lb2: { 'h1:50000': counters(5), 'h2:50000': counters(5) } }));
    l.freeze('h1:50000', v2, 2500);
    l.take(2600, reading({ lb1: { 'h1:50000': counters(32), 'h2:50000': counters(27) }, lb2: { 'h1:50000': counters(5), 'h2:50000': counters(6) } }));
    l.thaw('h1:50000');
    l.take(3000, reading({ lb1: { 'h1:50000': counters(42, 10), 'h2:50000': counters(35) }, lb2: { 'h1:50000': counters(5), 'h2:50000': counters(10) } }));
    expect(l.total.requests).toBe(72);
    expect(l.ofRelease(v1.digest).requests).toBe(62);
    expect(l.ofRelease(v2.digest)).toMatchObject({ requests: 10, http5xx: 10 });
    expect(l.ofOthers(v2.digest).requests).toBe(62);
    expect(l.byHost.get('h1')?.get(v2.digest)?.requests).toBe(10);
    expect(l.unattributed).toEqual([]);
    expect(l.series).toEqual([{ at: 2000, requests: 45, errors: 0 }, { at: 2600, requests: 5, errors: 0 }, { at: 3000, requests: 22, errors: 10 }]);
  });

  it('a load balancer that missed the deploy\'s first reading counts from its baseline reading', () => {
    const [baseline, deploy] = [ledger(), ledger()];
    baseline.take(1000, reading({ lb1: { 'h1:50000': counters(0) }, lb2: { 'h1:50000': counters(0) } }));
    deploy.take(2000, reading({ lb1: { 'h1:50000': counters(10) } }, { lb2: 'no answer within 1 s' }));
    deploy.carryFrom(baseline);
    deploy.take(3000, reading({ lb1: { 'h1:50000': counters(20) }, lb2: { 'h1:50000': counters(30) } }));
    expect(deploy.total.requests).toBe(40);
  });

  it('a load balancer that does not answer leaves a gap; its requests count when it answers again', () => {
    const l = ledger();
    l.take(1000, reading({ lb1: { 'h1:50000': counters(0) } }));
    l.take(2000, reading({}, { lb1: 'connection lost' }));
    l.take(3000, reading({ lb1: { 'h1:50000': counters(50) } }));
    expect(l.total.requests).toBe(50);
    expect(l.gaps).toEqual([{ at: 2000, lb: 'lb1', why: 'connection lost' }]);
  });
});

describe('the verdict', () => {
  it.each([
    ['too few requests to judge', tally(10, 10), tally(500), 1, true, 'too few to judge (canary.min-requests: 20)'],
    ['within the budget', tally(400, 2), tally(400), 1, true, 'v2 answered 2 of 400 requests with 5xx (0.5%) on h1: within the budget of 1%'],
    ['over the budget', tally(430, 212), tally(430), 1, false, 'v2 answered 212 of 430 requests with 5xx (49%) on h1; budget 1%'],
    ['over the budget, and worse than the old release', { ...tally(1000, 40), connectionErrors: 10 }, tally(1000, 1), 1, false, 'v2 answered 50 of 1000 requests with errors (40 5xx, 10 failed connections) (5.0%) on h1; budget 1% (99% sure its rate is over 3.5%), more than the release it replaces: 1 of 1000 requests with 5xx (0.1%) over the same time'],
    ['over the budget, but no worse than the old release', tally(1000, 40), tally(3000, 130), 1, true, 'over the budget of 1%, but no worse than the release it replaces: 130 of 3000 requests with 5xx (4.3%) over the same time'],
    ['over the budget by a few errors chance explains', tally(100, 2), tally(3000, 0), 1, true, 'over the budget of 1% here, but no more than chance gives a release at the budget (not 99% sure it is over)'],
    ['within a loose budget, worse than the old release', tally(1000, 40), tally(1000, 1), 5, true, 'within the budget of 5%'],
  ])('%s', (_name, fresh, old, maxErrorRate, ok, text) => {
    const verdict = judge('v2', fresh, old, { ...policy, maxErrorRate }, 'on h1');
    expect(verdict.ok).toBe(ok);
    expect(verdict.text).toContain(text);
  });

  it.each([
    [tally(1000, 50), tally(1000, 1), true],
    [tally(1000, 12), tally(1000, 10), false], // chance does that
    [tally(30, 1), tally(100, 0), false], // too few to be sure
    [tally(20, 5), tally(2000, 0), true],
  ])('%o worse than %o: %s', (fresh, old, worse) => expect(worseThan(fresh, old)).toBe(worse));

  it.each([
    [tally(20, 1), 5, false],
    [tally(20, 5), 5, true], // P(5 or more of 20 at 5 %) = 0.3 %
    [tally(20, 4), 5, false], // 1.6 %
    [tally(4135, 17), 5, false],
    [tally(500, 12), 1, true],
    [tally(500, 11), 1, false],
  ])('%o over a budget of %d%%: %s', (fresh, budget, over) => expect(overBudget(fresh, budget)).toBe(over));

  it('names each kind of error there was', () => {
    expect(describeErrors({ ...tally(100, 3), connectionErrors: 1 })).toBe('4 of 100 requests with errors (3 5xx, 1 failed connections) (4.0%)');
    expect(describeErrors(tally(100))).toBe('100 requests without an error');
  });
});

describe('the receipt', () => {
  const servers = new Map([['10.0.0.11', { master: 'm', backup: 'b' }]]);
  function receipt() {
    const baseline = new Ledger(servers, () => release('v1.3.0'));
    const deploy = new Ledger(servers, () => release('v1.3.0'));
    baseline.take(0, reading({ lb1: { m: counters(0) } }));
    baseline.take(2000, reading({ lb1: { m: counters(200) } }));
    deploy.take(2000, reading({ lb1: { m: counters(200) } }));
    deploy.take(3000, reading({ lb1: { m: counters(300) } }));
    deploy.freeze('m', release('v1.4.0'), 3000);
    deploy.take(3100, reading({ lb1: { m: counters(300) } }));
    deploy.thaw('m');
    deploy.mark({ at: 3000, host: '10.0.0.11', role: 'master', what: 'out of service', version: 'v1.4.0' });
    deploy.mark({ at: 4500, host: '10.0.0.11', role: 'master', what: 'in service', version: 'v1.4.0' });
    deploy.take(5000, reading({ lb1: { m: counters(12_645, 0) } }));
    const phases = [{ role: 'master' as const, drain: 0.1, stop: 0.2, start: 0.3, healthy: 0.4, inService: 0.5 }];
    const hosts = [{ host: '10.0.0.11', before: {}, after: {}, seconds: 3, phases, health: '', rolledBack: false }];
    return buildReceipt({ environment: 'production', version: 'v1.4.0', outcome: 'success', baseline, deploy, hosts, cost: { ms: 40, waitedMs: 0, readings: 4 } });
  }

  it('holds totals, releases, hosts, the baseline and a series over the window', () => {
    const r = receipt();
    expect(r.window).toEqual({ start: new Date(2000).toISOString(), end: new Date(5000).toISOString(), seconds: 3 });
    expect(r.baseline).toMatchObject({ seconds: 2, requestsPerSecond: 100, totals: { requests: 200, errors: 0 } });
    expect(r.totals.requests).toBe(12_445);
    expect(Object.fromEntries(Object.entries(r.releases).map(([v, t]) => [v, t.requests]))).toEqual({ 'v1.3.0': 100, 'v1.4.0': 12_345 });
    expect(r.hosts[0]!.releases['v1.4.0']?.requests).toBe(12_345);
    // The reading at the change, 0.1 s after the one before, is taken with the next.
    expect(r.series).toEqual([{ t: 1, seconds: 1, requests: 100, errors: 0 }, { t: 3, seconds: 2, requests: 6172.5, errors: 0 }]);
    expect(r.steps.map((s) => s.t)).toEqual([1, 2.5]);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    expect(receiptLine(r, 4)).toBe('v1.4.0 on 4 hosts in 3.0 s: 0 errors in 12,445 requests');
  });

  it('renders tables, a chart and the steps on one time axis', () => {
    const text = renderReceipt(receipt());
    expect(text).toContain('| Requests | 200 | 12,445 | 100 | 12,345 |');
    expect(text).toContain('| 10.0.0.11 | 3 s | master: drain 0.1 s');
    expect(text).toMatch(/```mermaid\nxychart-beta\n[\s\S]*  bar \[0, 0\]\n  line \[100, 6173\]\n```/);
    expect(text).toContain('  section 10.0.0.11\n  master to v1.4.0 : 3000, 4500\n');
  });
});
