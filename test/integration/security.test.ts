// On the estate, run as the runner runs it: an app's own log cannot issue workflow commands or
// break out of the job summary, and container.bind publishes the app on one address only.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { outsideStopCommands } from './support/action.js';
import { clearHosts, runDeploy } from './support/deploy.js';
import { execIn, loadEstate, nodeOf, type Estate } from './support/estate.js';
import { pushTestApp } from './support/images.js';

let estate: Estate;
let host: string;
let repository: string;

/** A GET from inside the host itself (its own network namespace), or the error. */
async function getFromHost(url: string): Promise<string> {
  return execIn(nodeOf(estate, host), 'curl', '-sS', '--max-time', '3', url).then(
    (body) => `answered ${body.trim()}`,
    () => 'no answer',
  );
}

beforeAll(async () => {
  estate = loadEstate();
  host = estate.environments.staging.hosts[0]!;
  repository = `${estate.registry.address}/clay/security-test`;
  await pushTestApp(estate, { repository, version: 'v6.0.0' });
  await pushTestApp(estate, { repository, version: 'v6.6.6', broken: true, hostileLog: true });
  await clearHosts(estate, [host]);
}, 600_000);

afterAll(async () => {
  await clearHosts(estate, [host]);
}, 120_000);

describe('an app whose log prints workflow commands, a fence and HTML', () => {
  it('has it printed inside a stop-commands block only, and escaped in the summary', async () => {
    const run = await runDeploy(estate, { environment: 'staging', hosts: [host], repository, version: 'v6.6.6' });
    expect(run.code, run.log).toBe(1);
    // The log lines were printed (the failing container's logs) ...
    expect(run.log).toContain('::error::pwned');
    expect(run.log).toContain('::add-mask::hostile-mask-value');
    // ... where the runner obeys none of them.
    const obeyedLines = outsideStopCommands(run.log).filter((line) => /pwned|hostile/.test(line));
    expect(obeyedLines).toEqual([]);
    expect(run.masks).not.toContain('hostile-mask-value');
    // The summary shows them escaped inside its <pre>; nothing of them is outside it.
    expect(run.summary).toContain('&lt;/code&gt;&lt;/pre&gt;&lt;h1&gt;pwned-html&lt;/h1&gt;');
    expect(run.summary).not.toContain('<h1>pwned-html');
    const outsidePre = run.summary.replace(/<pre><code>[^]*?<\/code><\/pre>/g, '');
    expect(outsidePre).not.toMatch(/pwned/);
    // The receipt's own Mermaid charts are the only fences: each opens with ```mermaid on a line
    // of its own and holds only the action's lines (chart keywords, numbers, checked names).
    const charts = outsidePre.match(/^```mermaid\n[^`]*?\n```$/gm) ?? [];
    expect(charts.length).toBeGreaterThan(0);
    for (const chart of charts) expect(chart.split('\n').slice(1, -1).every((line) => /^(xychart-beta|gantt| {2}[A-Za-z0-9 ._:%,"()+\-[\]]+)$/.test(line)), chart).toBe(true);
    expect(charts.reduce((text, chart) => text.replace(chart, ''), outsidePre)).not.toMatch(/```/);
  }, 300_000);
});

describe('container.bind', () => {
  it('bind: host publishes the app on the host\'s own address, not on loopback; health is probed there', async () => {
    await clearHosts(estate, [host]);
    const run = await runDeploy(estate, {
      environment: 'staging',
      hosts: [host],
      repository,
      version: 'v6.0.0',
      bothEnvironments: { staging: 'container: { bind: host }\n', production: '' },
    });
    expect(run.code, run.log).toBe(0);
    expect(await getFromHost(`http://${host}:50000/`)).toBe('answered v6.0.0');
    expect(await getFromHost(`http://${host}:50001/`)).toBe('answered v6.0.0');
    expect(await getFromHost('http://127.0.0.1:50000/')).toBe('no answer');
    expect(await getFromHost('http://127.0.0.1:50001/')).toBe('no answer');
    const bindings = await execIn(nodeOf(estate, host), 'docker', 'inspect', '--format', '{{json .HostConfig.PortBindings}}', 'demo');
    expect(JSON.parse(bindings)).toEqual({ '3000/tcp': [{ HostIp: host, HostPort: '50000' }] });
  }, 300_000);

  it('without bind, every interface answers, loopback included (the default, as before)', async () => {
    await clearHosts(estate, [host]);
    const run = await runDeploy(estate, { environment: 'staging', hosts: [host], repository, version: 'v6.0.0' });
    expect(run.code, run.log).toBe(0);
    expect(await getFromHost(`http://${host}:50000/`)).toBe('answered v6.0.0');
    expect(await getFromHost('http://127.0.0.1:50000/')).toBe('answered v6.0.0');
  }, 300_000);
});

