// A container's output as text: the last lines (command: logs, a failed health check), and
// Docker's framing of a non-TTY container's log stream taken off.
import type { Engine } from './engine.js';

/** The last `lines` lines of a container's output (by id: names fall back to ID prefixes), stdout and stderr interleaved. */
export async function tailLogs(engine: Engine, id: string, name: string, lines: number): Promise<string> {
  const raw = await engine.call(`read the logs of ${name}`, (abortSignal) =>
    engine.docker.getContainer(id).logs({ stdout: true, stderr: true, tail: lines, follow: false, abortSignal }),
  );
  return demuxLogs(raw);
}

/**
 * The text of a non-TTY container's logs: Docker frames each chunk with an 8-byte header
 * (stream, 0, 0, 0, length). Anything else (a TTY container) is returned as it is.
 */
export function demuxLogs(raw: Buffer): string {
  const chunks: Buffer[] = [];
  let offset = 0;
  while (offset < raw.length) {
    const framed = offset + 8 <= raw.length && raw[offset]! <= 2 && raw.readUIntBE(offset + 1, 3) === 0;
    if (!framed) return offset === 0 ? raw.toString('utf8') : Buffer.concat([...chunks, raw.subarray(offset)]).toString('utf8');
    const size = raw.readUInt32BE(offset + 4);
    chunks.push(raw.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(chunks).toString('utf8');
}
