// What the runner loads from the repository: dist/ must be JavaScript and license text only, so
// that every byte the action executes can be reviewed and rebuilt (scripts/bundle.mjs).
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(import.meta.dirname, '../..');
const DIST = join(ROOT, 'dist');

/** Magic numbers of executables and native libraries: ELF, PE (MZ), Mach-O, WebAssembly. */
const BINARY_MAGIC = [
  Buffer.from([0x7f, 0x45, 0x4c, 0x46]),
  Buffer.from('MZ'),
  Buffer.from([0xcf, 0xfa, 0xed, 0xfe]),
  Buffer.from([0xca, 0xfe, 0xba, 0xbe]),
  Buffer.from([0x00, 0x61, 0x73, 0x6d]),
];

describe('dist/', () => {
  const files = readdirSync(DIST, { recursive: true, encoding: 'utf8' }).sort();

  it('holds the bundle, its licenses and the ESM marker, nothing else', () => {
    expect(files).toEqual(['index.js', 'licenses.txt', 'package.json']);
  });

  it('holds no binary of any kind', () => {
    for (const file of files) {
      const head = readFileSync(join(DIST, file)).subarray(0, 4);
      expect(BINARY_MAGIC.some((magic) => head.subarray(0, magic.length).equals(magic)), file).toBe(false);
      expect(readFileSync(join(DIST, file)).includes(0), `${file} has NUL bytes`).toBe(false);
    }
  });

  it('never loads a native addon: ssh2 runs on its pure JavaScript fallback', () => {
    const bundle = readFileSync(join(DIST, 'index.js'), 'utf8');
    expect(bundle).not.toMatch(/require\([^)]*\.node["'`]\)/);
    expect(bundle).not.toContain('cpufeatures.node');
    expect(bundle).not.toContain('sshcrypto.node');
  });
});

describe('LICENSE', () => {
  it('is the MIT license package.json names', () => {
    const license = readFileSync(join(ROOT, 'LICENSE'), 'utf8');
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).license).toBe('MIT');
    expect(license).toMatch(/^MIT License\n\nCopyright \(c\) 2026 deploy-action contributors\n/);
    expect(license).toContain('THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND');
  });
});
