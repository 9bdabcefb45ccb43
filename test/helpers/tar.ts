/**
 * Tar archives written byte by byte, for entries the system tar will not make on request (`../` names kept as
 * given, hard links, FIFOs, broken checksums, truncations). USTAR headers; names up to 100 bytes.
 */
import { execFileSync } from 'node:child_process';
import { gzipSync } from 'node:zlib';

export interface TarSpec {
  readonly name: string;
  /** Typeflag character; `0` unless given. */
  readonly type?: string;
  readonly body?: string | Buffer;
  readonly linkname?: string;
  readonly mode?: number;
  /** Edits the header before its checksum is computed (a base-256 size, a GNU magic, …). */
  readonly patch?: (header: Buffer) => void;
}

function octal(n: number, width: number): string {
  return `${n.toString(8).padStart(width - 1, '0')}\0`;
}

/** One 512-byte USTAR header with a valid checksum. */
export function tarHeader(spec: TarSpec, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(spec.name, 0, 100, 'utf8');
  h.write(octal(spec.mode ?? 0o644, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(0, 12), 136, 'latin1');
  h.write(spec.type ?? '0', 156, 'latin1');
  if (spec.linkname) h.write(spec.linkname, 157, 100, 'utf8');
  h.write('ustar\0', 257, 'latin1');
  h.write('00', 263, 'latin1');
  spec.patch?.(h);
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** A whole archive: each entry's header and padded body, then (unless `end: false`) two zero blocks. */
export function tarBytes(entries: readonly TarSpec[], options: { end?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const body = e.body === undefined ? Buffer.alloc(0) : Buffer.from(e.body);
    parts.push(tarHeader(e, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  if (options.end !== false) parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function tgzBytes(entries: readonly TarSpec[], options: { end?: boolean } = {}): Buffer {
  return gzipSync(tarBytes(entries, options));
}

/** Runs the system tar (GNU tar) with `args` in `cwd`. */
export function systemTar(cwd: string, ...args: string[]): void {
  execFileSync('tar', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
}
