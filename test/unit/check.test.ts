// The load balancer rows of command: check, against HaproxyRuntime itself over a fake socket
// tunnel that answers Runtime API commands as HAProxy 2.6 does: a socket at level operator, a
// backup server not flagged backup, TCP-only checks, a missing server, a missing backend.
import { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { checkLoadBalancer, checkTable, type CheckRow } from '../../src/commands/check.js';
import { parseConfig } from '../../src/config/parse.js';
import { canaryRefusal } from '../../src/pipeline/preflight.js';
import { HaproxyRuntime, type SocketTunnel } from '../../src/drivers/haproxy.js';
import { LoadBalancers } from '../../src/drivers/load-balancers.js';

const env = parseConfig('deploy.yml', `
app: demo
image: registry.example.com/clay/demo
container: { port: 3000 }
haproxy: { host: 10.0.0.10, backend: app }
environments:
  staging: { hosts: [10.0.0.11, 10.0.0.12] }
`).environments.staging!;

interface Server { name: string; addr: string; port: number; backup?: boolean; check?: string; status?: string; tcp?: boolean }

const GOOD: Server[] = [
  { name: 'h1-master', addr: '10.0.0.11', port: 50000 },
  { name: 'h1-backup', addr: '10.0.0.11', port: 50001, backup: true },
  { name: 'h2-master', addr: '10.0.0.12', port: 50000 },
  { name: 'h2-backup', addr: '10.0.0.12', port: 50001, backup: true },
];

/** What HAProxy answers on the admin socket for these servers, at this level. */
function haproxy(servers: Server[] | undefined, level = 'admin'): Record<string, string> {
  if (!servers) return { 'show cli level': `${level}\n`, 'show stat app 4 -1': 'No such proxy.\n', 'show servers state app': "Can't find backend.\n" };
  return {
    'show cli level': `${level}\n`,
    'show info': 'Name: HAProxy\nVersion: 2.6.12\nPid: 4242\nUptime_sec: 360\n',
    'show stat app 4 -1': [
      '# pxname,svname,scur,status,bck,lastchg,check_status,addr,req_tot',
      // mode tcp leaves the HTTP counters empty
      ...servers.map((s) => `app,${s.name},0,${s.status ?? 'UP'},${s.backup ? 1 : 0},5,${s.check ?? 'L7OK'},${s.addr}:${s.port},${s.tcp ? '' : 12}`),
      'app,BACKEND,0,UP,0,5,,,',
      '',
    ].join('\n'),
    'show servers state app': ['1', '# be_id be_name srv_id srv_name srv_addr srv_fqdn srv_port', ...servers.map((s, i) => `2 app ${i + 1} ${s.name} ${s.addr} - ${s.port}`), ''].join('\n'),
  };
}

function runtime(answers: Record<string, string>, sent: string[] = []): HaproxyRuntime {
  const tunnel: SocketTunnel = {
    host: '10.0.0.10',
    failure: undefined,
    dispose: () => undefined,
    forwardStreamLocal: async () => {
      let command = '';
      return new Duplex({
        read() {},
        write(chunk: Buffer, _encoding, done) {
          command += chunk.toString();
          done();
        },
        final(done) {
          sent.push(command.trim());
          // Commands joined by ";" are answered one after another, each ending with a blank line.
          this.push(command.trim().split(';').map((one) => `${answers[one] ?? 'Unknown command.\n'}\n`).join(''));
          this.push(null);
          done();
        },
      });
    },
  };
  return new HaproxyRuntime(tunnel, '/run/haproxy/admin.sock', 'app');
}

const run = (answers: Record<string, string>, sent?: string[]) => checkLoadBalancer('10.0.0.10', runtime(answers, sent), env, '/run/haproxy/admin.sock');
const byCheck = (rows: CheckRow[]) => Object.fromEntries(rows.map((r) => [r.check, r]));

describe('check: a load balancer', () => {
  it('passes a backend with a master and a flagged backup per host, HTTP-checked, at level admin, sending only show commands', async () => {
    const sent: string[] = [];
    const rows = await run(haproxy(GOOD), sent);
    expect(rows.map((r) => `${r.verdict} ${r.check}`)).toEqual([
      'pass admin socket at level admin',
      'pass backend app',
      'pass HTTP counters (receipt, canary)',
      'pass master server for 10.0.0.11:50000',
      'pass backup server for 10.0.0.11:50001',
      'pass master server for 10.0.0.12:50000',
      'pass backup server for 10.0.0.12:50001',
    ]);
    expect(sent.every((command) => command.startsWith('show '))).toBe(true);
  });

  it('fails a socket at level operator, with the stats socket line as the fix', async () => {
    const row = byCheck(await run(haproxy(GOOD, 'operator')))['admin socket at level admin']!;
    expect(row.verdict).toBe('fail');
    expect(row.detail).toContain('level operator');
    expect(row.fix).toContain('stats socket /run/haproxy/admin.sock mode 660 group haproxy level admin');
  });

  it('fails a missing backup server, naming the server line to add', async () => {
    const rows = byCheck(await run(haproxy(GOOD.filter((s) => s.name !== 'h2-backup'))));
    expect(rows['backup server for 10.0.0.12:50001']).toMatchObject({
      verdict: 'fail',
      fix: 'add to backend app: server 10.0.0.12-backup 10.0.0.12:50001 check backup; reload HAProxy',
    });
    expect(rows['master server for 10.0.0.12:50000']!.verdict).toBe('pass');
  });

  it('fails a backup server not flagged backup, and a TCP-only or absent health check', async () => {
    const servers = GOOD.map((s) =>
      s.name === 'h1-backup' ? { ...s, backup: false } : s.name === 'h2-master' ? { ...s, check: 'L4OK' } : s.name === 'h2-backup' ? { ...s, check: '', status: 'no check' } : s,
    );
    const rows = byCheck(await run(haproxy(servers)));
    expect(rows['backup server for 10.0.0.11:50001']).toMatchObject({ verdict: 'fail', fix: expect.stringContaining('add backup to its line') });
    expect(rows['master server for 10.0.0.12:50000']).toMatchObject({ verdict: 'fail', fix: expect.stringContaining('option httpchk GET /healthcheck') });
    expect(rows['backup server for 10.0.0.12:50001']).toMatchObject({ verdict: 'fail', detail: expect.stringContaining('no health check') });
    expect(rows['master server for 10.0.0.11:50000']!.verdict).toBe('pass');
  });

  it('fails a missing backend and checks no server of it', async () => {
    const rows = await run(haproxy(undefined));
    expect(rows.map((r) => `${r.verdict} ${r.check}`)).toEqual(['pass admin socket at level admin', 'fail backend app']);
    expect(rows[1]!.fix).toContain('command: haproxy-config');
  });

  it('fails a backend in mode tcp when a canary would judge its (absent) HTTP counters, and only then', async () => {
    const tcp = haproxy(GOOD.map((s) => ({ ...s, tcp: true })));
    expect(byCheck(await run(tcp))['HTTP counters (receipt, canary)']).toMatchObject({ verdict: 'pass', detail: 'none (mode tcp): the receipt will show no requests' });
    const withCanary = { ...env, canary: { hold: 30, 'max-error-rate': 1, 'min-requests': 20 } };
    const rows = byCheck(await checkLoadBalancer('10.0.0.10', runtime(tcp), withCanary, '/run/haproxy/admin.sock'));
    expect(rows['HTTP counters (receipt, canary)']).toMatchObject({ verdict: 'fail', fix: expect.stringContaining('mode http in backend app') });
  });

  it('the deploy\'s own pre-flight refuses a canary over a backend in mode tcp, from one reading, and only then', async () => {
    const withCanary = { ...env, canary: { hold: 30, 'max-error-rate': 1, 'min-requests': 20 } };
    const locate = async (servers: Server[]) =>
      (await LoadBalancers.locate([{ host: '10.0.0.10', runtime: runtime(haproxy(servers)) }], env.hosts, env.ports)).fleet.counters(1000);
    const tcp = await locate(GOOD.map((s) => ({ ...s, tcp: true })));
    expect(canaryRefusal(withCanary, tcp)).toBe(
      'environments.staging.canary: HAProxy backend app counts no HTTP requests on 10.0.0.10 (mode tcp), so the canary would judge nothing; set mode http in that backend, or remove the canary section',
    );
    expect(canaryRefusal(env, tcp)).toBeUndefined();
    const http = await locate(GOOD);
    expect(canaryRefusal(withCanary, http)).toBeUndefined();
    // The same answer names the process counting: a reload is told by its pid.
    expect(http.processes).toEqual(new Map([['10.0.0.10', { pid: 4242, uptimeSeconds: 360 }]]));
    expect(http.read.get('10.0.0.10')?.get('10.0.0.11:50000')?.requests).toBe(12);
  });

  it('prints one row per check, failures marked, with the fix', () => {
    const table = checkTable([
      { where: 'h1', check: 'SSH', verdict: 'pass', detail: 'deploy@h1:22', fix: '' },
      { where: 'h1', check: 'Docker Engine access', verdict: 'fail', detail: 'permission denied', fix: 'sudo usermod -aG docker deploy' },
    ]);
    const [header, ok, failed] = table.split('\n') as [string, string, string];
    expect(ok.split(/\s{2,}/)).toEqual(['ok', 'h1', 'SSH', 'deploy@h1:22']);
    expect(failed.split(/\s{2,}/)).toEqual(['FAIL', 'h1', 'Docker Engine access', 'permission denied', 'sudo usermod -aG docker deploy']);
    // Columns line up: each starts where its title does.
    for (const [title, cell] of [['check', 'Docker Engine access'], ['detail', 'permission denied'], ['fix', 'sudo usermod']] as const) {
      expect(failed.indexOf(cell)).toBe(header.indexOf(title));
    }
  });
});

describe('check: the spare servers of rollout.procedure no-gap', () => {
  const noGap = parseConfig('deploy.yml', `
app: demo
image: registry.example.com/clay/demo
container: { port: 3000 }
haproxy: { host: 10.0.0.10, backend: app }
rollout: { procedure: no-gap }
environments:
  staging: { hosts: [10.0.0.11, 10.0.0.12] }
`).environments.staging!;
  const SPARES: Server[] = [
    { name: 'h1-master-spare', addr: '10.0.0.11', port: 50002, status: 'MAINT' },
    { name: 'h1-backup-spare', addr: '10.0.0.11', port: 50003, backup: true, status: 'MAINT' },
    { name: 'h2-master-spare', addr: '10.0.0.12', port: 50002, status: 'MAINT' },
    { name: 'h2-backup-spare', addr: '10.0.0.12', port: 50003, backup: true, status: 'MAINT' },
  ];
  const spareRows = (rows: CheckRow[]) => rows.filter((r) => r.check.includes('spare server')).map((r) => `${r.verdict} ${r.check}`);

  it('passes each spare server the backend has, with its state', async () => {
    const rows = await checkLoadBalancer('10.0.0.10', runtime(haproxy([...GOOD, ...SPARES])), noGap, '/run/haproxy/admin.sock');
    expect(spareRows(rows)).toEqual([
      'pass master spare server for 10.0.0.11:50002',
      'pass backup spare server for 10.0.0.11:50003',
      'pass master spare server for 10.0.0.12:50002',
      'pass backup spare server for 10.0.0.12:50003',
    ]);
    expect(byCheck(rows)['backup spare server for 10.0.0.11:50003']!.detail).toBe('h1-backup-spare: MAINT');
  });

  it('fails each missing spare server with the line command: haproxy-config prints, as pre-flight names it', async () => {
    const rows = byCheck(await checkLoadBalancer('10.0.0.10', runtime(haproxy([...GOOD, ...SPARES.filter((s) => !s.name.startsWith('h2'))])), noGap, '/run/haproxy/admin.sock'));
    expect(rows['master spare server for 10.0.0.12:50002']).toMatchObject({
      verdict: 'fail',
      detail: '10.0.0.10 has no server for 10.0.0.12:50002 (master spare): rollout.procedure no-gap needs it',
      fix: 'add to backend app: server 10.0.0.12-master-spare 10.0.0.12:50002 disabled; reload HAProxy',
    });
    expect(rows['backup spare server for 10.0.0.12:50003']!.fix).toBe('add to backend app: server 10.0.0.12-backup-spare 10.0.0.12:50003 backup disabled; reload HAProxy');
    expect(rows['master spare server for 10.0.0.11:50002']!.verdict).toBe('pass');
    // The same wording as the deploy's pre-flight, which stops on it.
    const { sparesMissing } = await LoadBalancers.locate([{ host: '10.0.0.10', runtime: runtime(haproxy([...GOOD, ...SPARES.filter((s) => !s.name.startsWith('h2'))])) }], noGap.hosts, noGap.ports, { master: 50002, backup: 50003 });
    expect(sparesMissing).toEqual([
      '10.0.0.10 has no server for 10.0.0.12:50002 (master spare)',
      '10.0.0.10 has no server for 10.0.0.12:50003 (backup spare)',
    ]);
  });

  it('passes a server in MAINT that HAProxy does not check (the idle slot\'s), where it fails one UP without a check', async () => {
    const idle = GOOD.map((s) => (s.name === 'h1-master' ? { ...s, check: '', status: 'MAINT' } : s.name === 'h2-master' ? { ...s, check: '', status: 'no check' } : s));
    const rows = byCheck(await checkLoadBalancer('10.0.0.10', runtime(haproxy([...idle, ...SPARES.map((s) => (s.name === 'h1-master-spare' ? { ...s, status: 'UP' } : s))])), noGap, '/run/haproxy/admin.sock'));
    expect(rows['master server for 10.0.0.11:50000']).toMatchObject({ verdict: 'pass', detail: 'h1-master: MAINT, check none' });
    expect(rows['master server for 10.0.0.12:50000']).toMatchObject({ verdict: 'fail', detail: expect.stringContaining('no health check') });
  });

  it('checks no spare server without the opt-in', async () => {
    expect(spareRows(await run(haproxy(GOOD)))).toEqual([]);
  });
});
