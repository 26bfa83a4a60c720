import { describe, expect, it } from 'vitest';
import { KnownHosts, fingerprint } from '../../src/drivers/ssh.js';

// Real keys; fingerprints as `ssh-keygen -lf` prints them, hashed names as `ssh-keygen -H` wrote them.
const ED25519 = 'AAAAC3NzaC1lZDI1NTE5AAAAIPvvhf10QzIjKDCVwNxt7L7czlKT+9j9zjqoEdoilHdT';
const ED25519_FP = 'SHA256:RA79aBVmtz0/WBnM+G0FTuXcLjk/+JCyT+7RnVND6H8';
const ECDSA =
  'AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBF1yUdppWKumM7HlTZZ6FpwwOApr/zlld+imXDW+ZHzjajq2oNKfVI+rBIH5wK2W6v28pPcP5WpM/nWSx2KXLnE=';
const ECDSA_FP = 'SHA256:hoo+oBYzzd+VAUajjEmxQGA3JNZmxzw1fa4+02S4Pgk';
const HASHED_H1 = '|1|XTQZFkeDqw7CeZZ4hKNrc9qJs00=|BfzS/sc2grtF6V4FDGxVYyTQ/PQ=';
const HASHED_H2_2222 = '|1|Pk+ty0fhQ4ZvHbQpIJkP63PS60U=|i+ZH6k3/bDQe27KrDau2+Vra+H8=';

const ed = Buffer.from(ED25519, 'base64');
const ec = Buffer.from(ECDSA, 'base64');

describe('fingerprint', () => {
  it.each([
    [ed, ED25519_FP],
    [ec, ECDSA_FP],
  ])('matches ssh-keygen (%#)', (blob, expected) => {
    expect(fingerprint(blob)).toBe(expected);
  });
});

type Verdict = 'trusted' | 'unknown' | 'changed' | 'revoked';

function verdict(knownHosts: string, host: string, port: number, key: Buffer): Verdict {
  const error = new KnownHosts(knownHosts).verify(host, port, key);
  if (!error) return 'trusted';
  if (error.message.includes('CHANGED')) return 'changed';
  if (error.message.includes('@revoked')) return 'revoked';
  return 'unknown';
}

describe('KnownHosts.verify', () => {
  it.each<[string, string, string, number, Buffer, Verdict]>([
    ['plain host', `10.0.0.1 ssh-ed25519 ${ED25519}`, '10.0.0.1', 22, ed, 'trusted'],
    ['plain host, other port', `10.0.0.1 ssh-ed25519 ${ED25519}`, '10.0.0.1', 2222, ed, 'unknown'],
    ['[host]:port', `[10.0.0.1]:2222 ssh-ed25519 ${ED25519}`, '10.0.0.1', 2222, ed, 'trusted'],
    ['[host]:port, port 22 asked', `[10.0.0.1]:2222 ssh-ed25519 ${ED25519}`, '10.0.0.1', 22, ed, 'unknown'],
    ['comma-separated list', `a.example,10.0.0.1,b.example ssh-ed25519 ${ED25519}`, '10.0.0.1', 22, ed, 'trusted'],
    ['case-insensitive name', `Host.Example.COM ssh-ed25519 ${ED25519}`, 'host.example.com', 22, ed, 'trusted'],
    ['wildcard', `*.example.com ssh-ed25519 ${ED25519}`, 'web1.example.com', 22, ed, 'trusted'],
    ['wildcard does not match the bare domain', `*.example.com ssh-ed25519 ${ED25519}`, 'example.com', 22, ed, 'unknown'],
    ['question mark', `web?.example.com ssh-ed25519 ${ED25519}`, 'web2.example.com', 22, ed, 'trusted'],
    ['negation wins', `*.example.com,!db.example.com ssh-ed25519 ${ED25519}`, 'db.example.com', 22, ed, 'unknown'],
    ['dots are literal', `10.0.0.1 ssh-ed25519 ${ED25519}`, '10x0x0x1', 22, ed, 'unknown'],
    ['hashed name', `${HASHED_H1} ssh-ed25519 ${ED25519}`, 'h1.example.com', 22, ed, 'trusted'],
    ['hashed name, other host', `${HASHED_H1} ssh-ed25519 ${ED25519}`, 'h9.example.com', 22, ed, 'unknown'],
    ['hashed [host]:port', `${HASHED_H2_2222} ssh-ed25519 ${ED25519}`, 'h2.example.com', 2222, ed, 'trusted'],
    ['different key of the same type', `10.0.0.1 ssh-ed25519 ${ED25519}`, '10.0.0.1', 22, Buffer.concat([ed.subarray(0, -1), Buffer.from([0])]), 'changed'],
    ['only another key type known', `10.0.0.1 ecdsa-sha2-nistp256 ${ECDSA}`, '10.0.0.1', 22, ed, 'changed'],
    ['one of several keys', `10.0.0.1 ecdsa-sha2-nistp256 ${ECDSA}\n10.0.0.1 ssh-ed25519 ${ED25519}`, '10.0.0.1', 22, ed, 'trusted'],
    ['type field must match the blob', `10.0.0.1 ecdsa-sha2-nistp256 ${ED25519}`, '10.0.0.1', 22, ed, 'changed'],
    ['comments and blank lines', `# 10.0.0.1 ssh-ed25519 ${ED25519}\n\n`, '10.0.0.1', 22, ed, 'unknown'],
    ['another host only', `10.0.0.2 ssh-ed25519 ${ED25519}`, '10.0.0.1', 22, ed, 'unknown'],
    ['revoked key', `@revoked * ssh-ed25519 ${ED25519}\n10.0.0.1 ssh-ed25519 ${ED25519}`, '10.0.0.1', 22, ed, 'revoked'],
    ['cert-authority lines vouch for nothing', `@cert-authority 10.0.0.1 ssh-ed25519 ${ED25519}`, '10.0.0.1', 22, ed, 'unknown'],
    ['CRLF line endings', `10.0.0.1 ssh-ed25519 ${ED25519}\r\n`, '10.0.0.1', 22, ed, 'trusted'],
  ])('%s', (_case, knownHosts, host, port, key, expected) => {
    expect(verdict(knownHosts, host, port, key)).toBe(expected);
  });

  it('names the host and the offered fingerprint for an unknown host', () => {
    const error = new KnownHosts('').verify('10.0.0.1', 2222, ed);
    expect(error?.message).toContain('[10.0.0.1]:2222');
    expect(error?.message).toContain(`ssh-ed25519 ${ED25519_FP}`);
    expect(error?.message).toContain('not in known_hosts');
  });

  it('says the key changed, with both fingerprints, for a mismatch', () => {
    const error = new KnownHosts(`10.0.0.1 ecdsa-sha2-nistp256 ${ECDSA}`).verify('10.0.0.1', 22, ed);
    expect(error?.message).toMatch(/10\.0\.0\.1: the host key has CHANGED/);
    expect(error?.message).toContain(`offered ssh-ed25519 ${ED25519_FP}`);
    expect(error?.message).toContain(`known_hosts has ecdsa-sha2-nistp256 ${ECDSA_FP}`);
  });
});

describe('KnownHosts.algorithms', () => {
  it.each([
    ['unknown host: no preference', '', []],
    ['ed25519 only', `h ssh-ed25519 ${ED25519}`, ['ssh-ed25519']],
    ['rsa maps to its signature algorithms', 'h ssh-rsa AAAA', ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']],
    ['in ssh2 preference order', `h ecdsa-sha2-nistp256 ${ECDSA}\nh ssh-ed25519 ${ED25519}`, ['ssh-ed25519', 'ecdsa-sha2-nistp256']],
    ['revoked keys are not offered', `@revoked h ssh-ed25519 ${ED25519}`, []],
    ['unsupported types are skipped', 'h sk-ssh-ed25519@openssh.com AAAA', []],
  ])('%s', (_case, knownHosts, expected) => {
    expect(new KnownHosts(knownHosts).algorithms('h', 22)).toEqual(expected);
  });
});
