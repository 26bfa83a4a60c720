import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseServersState, parseStatCsv } from '../../src/drivers/haproxy.js';

// Captured from HAProxy 2.6.12 (Debian 12): one backend, h1-master drained, the others down.
const fixture = (name: string) => readFileSync(new URL(`fixtures/haproxy/${name}`, import.meta.url), 'utf8');

describe('parseServersState', () => {
  const rows = parseServersState(fixture('show-servers-state.txt'))!;

  it.each([
    ['h1-master', '127.0.0.1', '50000', '-', '8'],
    ['h1-backup', '127.0.0.1', '50001', '-', '0'],
    ['h2-master', '127.0.0.1', '50002', 'localhost', '0'],
  ])('%s: address %s, port %s, fqdn %s, admin state %s', (name, address, port, fqdn, admin) => {
    expect(rows.find((row) => row.srv_name === name)).toMatchObject({
      be_name: 'app',
      srv_addr: address,
      srv_port: port,
      srv_fqdn: fqdn,
      srv_admin_state: admin,
    });
  });

  it.each([
    ['an error answer', "Can't find backend.\n\n"],
    ['an empty answer', ''],
  ])('is undefined for %s', (_case, text) => {
    expect(parseServersState(text)).toBeUndefined();
  });

  it('reads columns by the header, whatever their order', () => {
    expect(parseServersState('1\n# srv_port srv_name srv_addr\n80 web 10.0.0.1\n\n')).toEqual([
      { srv_port: '80', srv_name: 'web', srv_addr: '10.0.0.1' },
    ]);
  });
});

describe('parseStatCsv', () => {
  const rows = parseStatCsv(fixture('show-stat.csv'))!;

  it.each([
    ['h1-master', 'DRAIN', '0', '0'],
    ['h1-backup', 'DOWN', '0', '0'],
    ['h2-master', 'DOWN', '0', '0'],
  ])('%s: status %s, scur %s, qcur %s', (name, status, scur, qcur) => {
    expect(rows.find((row) => row.svname === name)).toMatchObject({ pxname: 'app', status, scur, qcur });
  });

  it('keeps free-text columns whole', () => {
    expect(rows.find((row) => row.svname === 'h1-backup')?.last_chk).toBe('Connection refused');
  });

  it.each<[string, string, Record<string, string>[] | undefined]>([
    ['status with a space', '# pxname,svname,status,\nbe,s1,UP 1/3,\n', [{ pxname: 'be', svname: 's1', status: 'UP 1/3' }]],
    ['quoted comma', '# pxname,svname,last_chk\nbe,s1,"a, b"\n', [{ pxname: 'be', svname: 's1', last_chk: 'a, b' }]],
    ['escaped quote', '# pxname,svname,last_chk\nbe,s1,"say ""hi"""\n', [{ pxname: 'be', svname: 's1', last_chk: 'say "hi"' }]],
    ['error answer', 'No such proxy.\n\n', undefined],
  ])('%s', (_case, text, expected) => {
    expect(parseStatCsv(text)).toEqual(expected);
  });
});
