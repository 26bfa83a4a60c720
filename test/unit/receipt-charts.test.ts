// @vitest-environment happy-dom
// The receipt's Mermaid blocks, parsed by Mermaid's own parser (the `mermaid` package; its
// sanitizer needs a DOM, hence happy-dom): what GitHub renders, it must first parse.
import mermaid from 'mermaid';
import { describe, expect, it } from 'vitest';
import { buildReceipt } from '../../src/receipt/document.js';
import { Ledger } from '../../src/receipt/ledger.js';
import { renderReceipt } from '../../src/receipt/render.js';
import type { FleetCounters, Release, ServerCounters } from '../../src/rollout/ports.js';

const counters = (requests: number, http5xx = 0): ServerCounters => ({ requests, http5xx, connectionErrors: 0, responseErrors: 0, retries: 0, redispatches: 0, responseMs: 4, totalMs: 9 });
const read = (servers: Record<string, ServerCounters>): FleetCounters => ({ read: new Map([['lb1', new Map(Object.entries(servers))]]), failed: new Map() });
const release = (version: string, digest: string): Release => ({ version, digest, ref: `app@${digest}` });

/** A receipt over `seconds`, a reading every `everyMs`, each host's master and backup changed. */
function receipt(seconds: number, everyMs: number, versions: [Release, Release]) {
  const servers = new Map([['10.0.0.11', { master: 'm1', backup: 'b1' }], ['10.0.0.12', { master: 'm2', backup: 'b2' }]]);
  const start = Date.UTC(2026, 10, 29, 12, 0, 0);
  const deploy = new Ledger(servers, () => versions[0]);
  let requests = 0;
  for (let at = start; at <= start + seconds * 1000; at += everyMs) {
    requests += Math.round(everyMs / 10);
    deploy.take(at, read({ m1: counters(requests, Math.floor(requests / 500)), m2: counters(requests), b1: counters(0), b2: counters(0) }));
  }
  [...servers.keys()].forEach((host, i) => {
    for (const [j, role] of (['master', 'backup'] as const).entries()) {
      const at = start + ((i * 2 + j + 1) * seconds * 1000) / 5;
      deploy.mark({ at, host, role, what: 'out of service', version: versions[1].version });
      deploy.mark({ at: at + 3000, host, role, what: 'in service', version: versions[1].version });
    }
  });
  return buildReceipt({ environment: 'production', version: versions[1].version, outcome: 'success', baseline: deploy, deploy, hosts: [], cost: { ms: 0, waitedMs: 0, readings: 0 } });
}

const blocks = (text: string) => [...text.matchAll(/```mermaid\n([\s\S]*?)```/g)].map((m) => m[1]!);

describe('the receipt\'s charts', () => {
  it.each([
    ['a short rollout, readings 0.6 s apart', 20, 600],
    ['a rollout of an hour and a half, a reading a second', 5400, 1000],
  ])('%s: every block parses, as an xychart and a gantt', async (_name, seconds, everyMs) => {
    const text = renderReceipt(receipt(seconds, everyMs, [release('v1.4.0', 'sha256:aaaa'), release('v1.5.0-rc.1+build.7', 'sha256:bbbb')]));
    const found = blocks(text);
    expect(found).toHaveLength(2);
    const types = [];
    for (const block of found) types.push((await mermaid.parse(block)).diagramType);
    expect(types).toEqual(['xychart', 'gantt']);
  });

  it('the parser is a real judge: a block cut short does not parse', async () => {
    const [chart] = blocks(renderReceipt(receipt(20, 600, [release('v1', 'sha256:a'), release('v2', 'sha256:b')])));
    await expect(mermaid.parse(chart!.replace(/\]\n  y-axis/, '\n  y-axis'))).rejects.toThrow();
  });
});
