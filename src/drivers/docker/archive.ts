// The one-file tar archives the engine's archive API takes and gives (PUT/GET
// /containers/{id}/archive): enough of POSIX ustar for a short file name and a small file.
const BLOCK = 512;

function field(header: Buffer, offset: number, length: number, text: string): void {
  header.write(text, offset, Math.min(length, Buffer.byteLength(text)), 'ascii');
}

/** A tar archive holding one regular file `name` (no directories; name under 100 bytes). */
export function oneFileTar(name: string, data: Buffer, mtimeSeconds = Math.floor(Date.now() / 1000)): Buffer {
  if (!/^[A-Za-z0-9._-]{1,99}$/.test(name)) throw new Error(`not a plain file name for a tar archive: ${name}`);
  const header = Buffer.alloc(BLOCK);
  field(header, 0, 100, name);
  field(header, 100, 8, '0000644\0');
  field(header, 108, 8, '0000000\0');
  field(header, 116, 8, '0000000\0');
  field(header, 124, 12, `${data.length.toString(8).padStart(11, '0')}\0`);
  field(header, 136, 12, `${mtimeSeconds.toString(8).padStart(11, '0')}\0`);
  field(header, 148, 8, '        ');
  field(header, 156, 1, '0');
  field(header, 257, 6, 'ustar\0');
  field(header, 263, 2, '00');
  let sum = 0;
  for (const byte of header) sum += byte;
  field(header, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  const padding = Buffer.alloc((BLOCK - (data.length % BLOCK)) % BLOCK);
  return Buffer.concat([header, data, padding, Buffer.alloc(2 * BLOCK)]);
}

/** The content of the first regular file in a tar archive (extended headers skipped), or undefined. */
export function firstFileOf(archive: Buffer): Buffer | undefined {
  for (let at = 0; at + BLOCK <= archive.length; ) {
    const header = archive.subarray(at, at + BLOCK);
    if (header.every((b) => b === 0)) return undefined;
    const size = parseInt(header.subarray(124, 136).toString('ascii').replace(/\0.*$/s, '').trim() || '0', 8);
    const type = String.fromCharCode(header[156]!);
    const start = at + BLOCK;
    if (type === '0' || type === '\0') return archive.subarray(start, start + size);
    at = start + Math.ceil(size / BLOCK) * BLOCK;
  }
  return undefined;
}
