/**
 * A streaming tar reader: headers and entry bodies pulled from an async byte source (a gunzip stream), holding at
 * most one source chunk plus one 512-byte block at a time, never the archive.
 *
 * It reads what Go's archive/tar reads, with the same outcomes where the extractor can see them: V7, USTAR (with its
 * name prefix), GNU (long names and long link names through `L`/`K` entries) and PAX (`x` records for path,
 * linkpath and size; a `g` global header is handed to the caller as an entry of its own, as Go does). An old-style
 * regular file (typeflag NUL) becomes `0`, or `5` when its name ends in `/`. The end is two zero blocks, or the end of
 * input at a block boundary. Failures carry Go's texts: `archive/tar: invalid tar header`,
 * `archive/tar: header field too long`, `unexpected EOF`.
 */
import { goString } from '../util/gotext.js';

export const BLOCK_SIZE = 512;
/** The largest PAX record set or GNU long name accepted (Go's maxSpecialFileSize): 1 MiB. */
export const TAR_MAX_SPECIAL_FILE_BYTES = 1 << 20;

export const ERR_HEADER = 'archive/tar: invalid tar header';
export const ERR_FIELD_TOO_LONG = 'archive/tar: header field too long';
export const ERR_UNEXPECTED_EOF = 'unexpected EOF';

/** A malformed or truncated archive; the message is Go's text. */
export class TarError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TarError';
  }
}

export interface TarEntry {
  /** The entry name as bytes decoded to text (invalid UTF-8 bytes become U+FFFD). */
  readonly name: string;
  readonly linkname: string;
  /** One character: `0` file, `5` directory, `1` hard link, `2` symlink, `3`/`4` devices, `6` FIFO, `g`, … */
  readonly typeflag: string;
  /** Bytes of content that follow the header (0 for header-only kinds such as directories and links). */
  readonly size: number;
  readonly mode: number;
}

const EMPTY = Buffer.alloc(0);
const HEADER_ONLY = new Set(['1', '2', '3', '4', '5', '6']);

/** Pulls bytes from an async iterable of chunks, on demand. */
class ByteSource {
  readonly #it: AsyncIterator<Buffer>;
  #buf: Buffer = EMPTY;
  #done = false;

  constructor(src: AsyncIterable<Buffer>) {
    this.#it = src[Symbol.asyncIterator]();
  }

  /** Up to `max` bytes (at least one unless the input has ended). */
  async chunk(max: number): Promise<Buffer> {
    while (this.#buf.length === 0) {
      if (this.#done) return EMPTY;
      const r = await this.#it.next();
      if (r.done) {
        this.#done = true;
        return EMPTY;
      }
      this.#buf = Buffer.isBuffer(r.value) ? r.value : Buffer.from(r.value);
    }
    const n = Math.min(max, this.#buf.length);
    const out = this.#buf.subarray(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** Exactly `n` bytes, or fewer only when the input ends first. */
  async read(n: number): Promise<Buffer> {
    const parts: Buffer[] = [];
    let got = 0;
    while (got < n) {
      const c = await this.chunk(n - got);
      if (c.length === 0) break;
      parts.push(c);
      got += c.length;
    }
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts, got);
  }

  /** Discards `n` bytes; returns how many were there. */
  async skip(n: number): Promise<number> {
    let left = n;
    while (left > 0) {
      const c = await this.chunk(Math.min(left, 1 << 20));
      if (c.length === 0) break;
      left -= c.length;
    }
    return n - left;
  }
}

export class TarReader {
  readonly #src: ByteSource;
  /** Content bytes of the current entry not yet consumed, then its padding to the block size. */
  #remaining = 0;
  #pad = 0;
  #ended = false;

  constructor(source: AsyncIterable<Buffer>) {
    this.#src = new ByteSource(source);
  }

  /** The next entry, or null at the end of the archive. Unread content of the previous entry is skipped. */
  async next(): Promise<TarEntry | null> {
    if (this.#ended) return null;
    let pax: Map<string, string> | undefined;
    let longName: string | undefined;
    let longLink: string | undefined;
    for (;;) {
      if (!(await this.#finishCurrent())) return this.#end();
      const blk = await this.#readHeaderBlock();
      if (blk === null) return this.#end();
      const raw = parseHeader(blk);
      this.#setCurrent(HEADER_ONLY.has(raw.typeflag) ? 0 : raw.size);
      switch (raw.typeflag) {
        case 'x':
        case 'g': {
          const records = parsePax(await this.#readSpecial());
          if (raw.typeflag === 'g') return { ...mergePax(raw, records), typeflag: 'g', size: 0 };
          pax = records;
          continue;
        }
        case 'L':
          longName = cString(await this.#readSpecial());
          continue;
        case 'K':
          longLink = cString(await this.#readSpecial());
          continue;
        default: {
          let hdr = pax ? mergePax(raw, pax) : raw;
          if (longName) hdr = { ...hdr, name: longName };
          if (longLink) hdr = { ...hdr, linkname: longLink };
          if (hdr.typeflag === '\0') hdr = { ...hdr, typeflag: hdr.name.endsWith('/') ? '5' : '0' };
          // A PAX-described sparse file is not expanded here; it is reported as the GNU sparse kind.
          if (pax && [...pax.keys()].some((k) => k.startsWith('GNU.sparse.'))) hdr = { ...hdr, typeflag: 'S' };
          this.#setCurrent(HEADER_ONLY.has(hdr.typeflag) ? 0 : hdr.size);
          return { ...hdr, size: this.#remaining };
        }
      }
    }
  }

  /** The content of the current entry, in source-sized chunks. A short archive fails with `unexpected EOF`. */
  async *body(): AsyncGenerator<Buffer, void, void> {
    while (this.#remaining > 0) {
      const c = await this.#src.chunk(this.#remaining);
      if (c.length === 0) throw new TarError(ERR_UNEXPECTED_EOF);
      this.#remaining -= c.length;
      yield c;
    }
  }

  /** Skips what is left of the current entry and its padding; false when the input ends inside the padding. */
  async #finishCurrent(): Promise<boolean> {
    if (this.#remaining > 0) {
      const n = this.#remaining;
      this.#remaining = 0;
      if ((await this.#src.skip(n)) < n) throw new TarError(ERR_UNEXPECTED_EOF);
    }
    if (this.#pad > 0) {
      const n = this.#pad;
      this.#pad = 0;
      // Go reads the padding with tryReadFull: input that ends inside it is the end of the archive.
      if ((await this.#src.skip(n)) < n) return false;
    }
    return true;
  }

  #end(): null {
    this.#ended = true;
    return null;
  }

  #setCurrent(size: number): void {
    this.#remaining = size;
    this.#pad = (BLOCK_SIZE - (size % BLOCK_SIZE)) % BLOCK_SIZE;
  }

  /** A header block; null at a clean end (no input, or two zero blocks). */
  async #readHeaderBlock(): Promise<Buffer | null> {
    const blk = await this.#src.read(BLOCK_SIZE);
    if (blk.length === 0) return null;
    if (blk.length < BLOCK_SIZE) throw new TarError(ERR_UNEXPECTED_EOF);
    if (!isZero(blk)) return blk;
    const second = await this.#src.read(BLOCK_SIZE);
    if (second.length === 0) return null;
    if (second.length < BLOCK_SIZE) throw new TarError(ERR_UNEXPECTED_EOF);
    if (isZero(second)) return null;
    throw new TarError(ERR_HEADER);
  }

  /** The whole content of a PAX or GNU long-name entry, bounded by TAR_MAX_SPECIAL_FILE_BYTES. */
  async #readSpecial(): Promise<Buffer> {
    const n = this.#remaining;
    if (n > TAR_MAX_SPECIAL_FILE_BYTES) throw new TarError(ERR_FIELD_TOO_LONG);
    this.#remaining = 0;
    const data = await this.#src.read(n);
    if (data.length < n) throw new TarError(ERR_UNEXPECTED_EOF);
    return data;
  }
}

function isZero(b: Buffer): boolean {
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

/** Bytes up to the first NUL, as text. */
function cString(b: Buffer): string {
  const nul = b.indexOf(0);
  return decodeName(nul === -1 ? b : b.subarray(0, nul));
}

function decodeName(b: Buffer): string {
  return goString(b);
}

const MAGIC_USTAR = 'ustar\0';
const MAGIC_GNU = 'ustar ';
const VERSION_GNU = ' \0';
const TRAILER_STAR = 'tar\0';

type Format = 'v7' | 'ustar' | 'gnu' | 'star';

/** Parses and validates one header block (Go's readHeader); throws ERR_HEADER on a bad checksum or field. */
export function parseHeader(blk: Buffer): TarEntry {
  const p = new FieldParser();
  const chksum = p.octal(blk.subarray(148, 156));
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < BLOCK_SIZE; i++) {
    const c = i >= 148 && i < 156 ? 0x20 : blk[i]!;
    unsigned += c;
    signed += c >= 0x80 ? c - 0x100 : c;
  }
  if (p.failed || (chksum !== unsigned && chksum !== signed)) throw new TarError(ERR_HEADER);

  const magic = blk.toString('latin1', 257, 263);
  const version = blk.toString('latin1', 263, 265);
  const trailer = blk.toString('latin1', 508, 512);
  let format: Format = 'v7';
  if (magic === MAGIC_USTAR) format = trailer === TRAILER_STAR ? 'star' : 'ustar';
  else if (magic === MAGIC_GNU && version === VERSION_GNU) format = 'gnu';

  let name = p.string(blk.subarray(0, 100));
  const mode = p.numeric(blk.subarray(100, 108));
  p.numeric(blk.subarray(108, 116)); // uid
  p.numeric(blk.subarray(116, 124)); // gid
  const size = p.numeric(blk.subarray(124, 136));
  p.numeric(blk.subarray(136, 148)); // mtime
  const typeflag = String.fromCharCode(blk[156]!);
  const linkname = p.string(blk.subarray(157, 257));
  if (format !== 'v7') {
    if (typeflag === '3' || typeflag === '4') {
      p.numeric(blk.subarray(329, 337));
      p.numeric(blk.subarray(337, 345));
    }
    let prefix = '';
    if (format === 'ustar') prefix = p.string(blk.subarray(345, 500));
    else if (format === 'star') prefix = p.string(blk.subarray(345, 476));
    else {
      if (blk[345] !== 0) p.numeric(blk.subarray(345, 357)); // atime
      if (blk[357] !== 0) p.numeric(blk.subarray(357, 369)); // ctime
    }
    if (prefix !== '') name = `${prefix}/${name}`;
  }
  if (p.failed || size < 0) throw new TarError(ERR_HEADER);
  return { name, linkname, typeflag, size, mode };
}

class FieldParser {
  failed = false;

  string(b: Buffer): string {
    return cString(b);
  }

  /** Go's parseNumeric: base-256 when the top bit is set, else octal. */
  numeric(b: Buffer): number {
    if (b.length > 0 && (b[0]! & 0x80) !== 0) {
      const inv = (b[0]! & 0x40) !== 0 ? 0xff : 0;
      let x = 0n;
      for (let i = 0; i < b.length; i++) {
        let c = b[i]! ^ inv;
        if (i === 0) c &= 0x7f;
        if (x >> 56n > 0n) return this.#fail();
        x = (x << 8n) | BigInt(c);
      }
      if (x >> 63n > 0n) return this.#fail();
      const v = inv === 0xff ? -(x + 1n) : x;
      if (v > BigInt(Number.MAX_SAFE_INTEGER) || v < -BigInt(Number.MAX_SAFE_INTEGER)) return this.#fail();
      return Number(v);
    }
    return this.octal(b);
  }

  octal(b: Buffer): number {
    let start = 0;
    let end = b.length;
    while (start < end && (b[start] === 0x20 || b[start] === 0)) start++;
    while (end > start && (b[end - 1] === 0x20 || b[end - 1] === 0)) end--;
    if (start === end) return 0;
    const text = cString(b.subarray(start, end));
    if (!/^[0-7]+$/.test(text)) return this.#fail();
    const v = parseInt(text, 8);
    if (!Number.isSafeInteger(v)) return this.#fail();
    return v;
  }

  #fail(): number {
    this.failed = true;
    return 0;
  }
}

/** Go's parsePAX: `<len> <key>=<value>\n` records; any malformed record is ERR_HEADER. */
export function parsePax(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let s = data.toString('latin1');
  while (s.length > 0) {
    const sp = s.indexOf(' ');
    if (sp === -1) throw new TarError(ERR_HEADER);
    const nStr = s.slice(0, sp);
    if (!/^[+-]?\d+$/.test(nStr)) throw new TarError(ERR_HEADER);
    let n = Number(nStr);
    if (!Number.isSafeInteger(n) || n < 5 || n > s.length) throw new TarError(ERR_HEADER);
    const rest = s.slice(sp + 1);
    n -= nStr.length + 1;
    if (n <= 0) throw new TarError(ERR_HEADER);
    const rec = rest.slice(0, n - 1);
    if (rest.slice(n - 1, n) !== '\n') throw new TarError(ERR_HEADER);
    s = rest.slice(n);
    const eq = rec.indexOf('=');
    if (eq === -1) throw new TarError(ERR_HEADER);
    const k = rec.slice(0, eq);
    const v = rec.slice(eq + 1);
    if (k === '') throw new TarError(ERR_HEADER);
    const valueChecked = k === 'path' || k === 'linkpath' || k === 'uname' || k === 'gname';
    if ((valueChecked ? v : k).includes('\0')) throw new TarError(ERR_HEADER);
    out.set(k, v);
  }
  return out;
}

const PAX_INT = /^[+-]?\d+$/;
const PAX_TIME = /^[+-]?\d*(?:\.\d*)?$/;

/** Go's mergePAX for the records the extractor uses; an unparsable number is ERR_HEADER. */
function mergePax(hdr: TarEntry, pax: Map<string, string>): TarEntry {
  let { name, linkname, size } = hdr;
  for (const [k, v] of pax) {
    if (v === '') continue;
    const text = () => decodeName(Buffer.from(v, 'latin1'));
    switch (k) {
      case 'path':
        name = text();
        break;
      case 'linkpath':
        linkname = text();
        break;
      case 'uid':
      case 'gid':
        if (!PAX_INT.test(v)) throw new TarError(ERR_HEADER);
        break;
      case 'atime':
      case 'mtime':
      case 'ctime':
        if (!PAX_TIME.test(v) || !/\d/.test(v)) throw new TarError(ERR_HEADER);
        break;
      case 'size': {
        if (!PAX_INT.test(v)) throw new TarError(ERR_HEADER);
        const n = Number(v);
        if (!Number.isSafeInteger(n) || n < 0) throw new TarError(ERR_HEADER);
        size = n;
        break;
      }
    }
  }
  return { ...hdr, name, linkname, size };
}
