/**
 * Streaming zstd decompression for `-install`: a CLI is hundreds of MB, so neither the blob nor the CLI is ever whole
 * in memory, and the `-max-cli-bytes` cap is enforced while the bytes come out.
 *
 * Two backends. Node's own `zlib.createZstdDecompress` (libzstd: fast, verifies content checksums, any window up to
 * 2 GiB) is used when the running Node has it (22.15+ / 23.8+). Node 20 has not, so otherwise the pure-JS decoder
 * `fzstd` runs, wrapped by a frame walker of our own that
 *   - checks the magic number first (`invalid input: magic number mismatch`, the reference decoder's wording),
 *   - verifies each frame's content checksum (XXH64, via `xxhash-wasm`): fzstd skips it, and fzstd is documented to
 *     mis-decode back-references beyond 2^25 bytes, which we measured as silently wrong output on a 128 MiB window,
 *   - refuses a frame whose window exceeds 2^25 bytes when that frame carries no checksum to catch such an error,
 *   - feeds fzstd in small slices and hands each decoded block on before decoding more, so memory stays bounded by
 *     the window plus what one slice can expand to, and the consumer's pace (disk writes) is the decoder's pace.
 */
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { pipeline, Readable, type Transform } from 'node:stream';
import zlib from 'node:zlib';
import { Decompress } from 'fzstd';
import xxhash, { type XXHashAPI } from 'xxhash-wasm';
import { failureText } from '../protocol/failures.js';

/** An error whose text follows the cliError prefix `decompressing: `. */
export class DecompressError extends Error {}

/** fzstd's documented limit: back-references up to 2^25 bytes decode correctly (its README, "Considerations"). */
export const FZSTD_SAFE_WINDOW = 1 << 25;

/**
 * Compressed bytes handed to fzstd at a time. A zstd block decodes to at most 128 KiB and takes at least 4 bytes, so
 * one slice yields at most (SLICE / 4 + 1) × 128 KiB (32 MiB for RLE-only input) before the consumer can pause.
 */
const FZSTD_SLICE = 1024;

const ZSTD_MAGIC = 0xfd2fb528;
const SKIPPABLE_MAGIC = 0x184d2a50;
const SKIPPABLE_MASK = 0xfffffff0;

export type Backend = 'zlib' | 'fzstd';

type ZstdDecompressFactory = (options?: zlib.ZlibOptions & { params?: Record<number, number> }) => Transform;

/** Node's zstd decompressor, when this Node has one (`typeof zlib.createZstdDecompress`). */
function zlibZstd(): ZstdDecompressFactory | undefined {
  const f = (zlib as unknown as { createZstdDecompress?: unknown }).createZstdDecompress;
  return typeof f === 'function' ? (f as ZstdDecompressFactory) : undefined;
}

/** The backends this Node offers, preferred first. */
export function availableBackends(): Backend[] {
  return zlibZstd() ? ['zlib', 'fzstd'] : ['fzstd'];
}

/** Decompresses `source` (a zstd stream) chunk by chunk. Errors are DecompressError with the decoder's reason. */
export function decodeZstd(source: AsyncIterable<Uint8Array>, backend: Backend = availableBackends()[0]!): AsyncGenerator<Uint8Array> {
  return backend === 'zlib' ? zlibDecode(source) : fzstdDecode(source);
}

/**
 * Decompresses the file at `src` into `dest` (written from its current position), never holding more than a bounded
 * amount in memory. `capBytes` > 0 fails the run as soon as the output would exceed it. Returns the bytes written.
 */
export async function decompressFile(src: string, dest: FileHandle, capBytes: number, backend?: Backend): Promise<number> {
  let total = 0;
  for await (const chunk of decodeZstd(createReadStream(src, { highWaterMark: 1 << 16 }), backend)) {
    total += chunk.length;
    if (capBytes > 0 && total > capBytes) throw new DecompressError(failureText('decompress', 'tooLarge', { n: capBytes }));
    for (let off = 0; off < chunk.length; ) {
      const { bytesWritten } = await dest.write(chunk, off, chunk.length - off);
      off += bytesWritten;
    }
  }
  return total;
}

async function* zlibDecode(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const windowLogMax = (zlib.constants as unknown as Record<string, number | undefined>).ZSTD_d_windowLogMax;
  // The reference decoder accepts windows far beyond libzstd's default 128 MiB limit; so do we (2^31).
  const z = zlibZstd()!(windowLogMax === undefined ? {} : { params: { [windowLogMax]: 31 } });
  const input = Readable.from(source, { objectMode: false });
  pipeline(input, z, () => {
    // Errors surface through the iteration of z below.
  });
  try {
    for await (const chunk of z) yield chunk as Buffer;
  } catch (err) {
    throw err instanceof DecompressError ? err : new DecompressError(readable(err));
  } finally {
    z.destroy();
    input.destroy();
  }
}

function readable(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return /unexpected end of file/i.test(msg) ? failureText('decompress', 'unexpectedEof') : msg;
}

let xxhashApi: Promise<XXHashAPI> | undefined;

async function* fzstdDecode(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  const xxh = await (xxhashApi ??= xxhash());
  const out: Uint8Array[] = [];
  let hasher: ReturnType<XXHashAPI['create64']> | undefined;
  let decoder: Decompress | undefined;
  const push = (bytes: Uint8Array, final: boolean) => {
    try {
      decoder!.push(bytes, final);
    } catch (err) {
      throw fzstdError(err);
    }
  };
  const walker = new FrameWalker();
  for await (const chunk of source) {
    for (const ev of walker.walk(chunk)) {
      if (ev.type === 'start') {
        const h = ev.header;
        if (h.dictionaryId !== 0) throw new DecompressError(failureText('decompress', 'unknownDictionary'));
        if (!h.hasChecksum && h.windowSize > FZSTD_SAFE_WINDOW) {
          throw new DecompressError(failureText('decompress', 'windowTooLarge', { size: h.windowSize, max: FZSTD_SAFE_WINDOW }));
        }
        // One decoder per frame: its final push flushes exactly that frame (fzstd holds back a short frame until
        // more input or the end), so every output byte is attributed to its frame's checksum.
        const frameHasher = h.hasChecksum ? xxh.create64(0n) : undefined;
        hasher = frameHasher;
        decoder = new Decompress((data) => {
          if (data.length === 0) return;
          out.push(data);
          frameHasher?.update(data);
        });
        push(ev.prefix, false);
        continue;
      }
      // Each slice is pushed, and what it decoded handed on, before the next slice is decoded.
      const { data } = ev;
      if (data.length === 0 && ev.last) push(data, true);
      for (let off = 0; off < data.length; off += FZSTD_SLICE) {
        const end = Math.min(data.length, off + FZSTD_SLICE);
        push(data.subarray(off, end), ev.last && end === data.length);
        while (out.length > 0) yield out.shift()!;
      }
      while (out.length > 0) yield out.shift()!;
      if (ev.last) {
        decoder = undefined;
        if (ev.checksum !== undefined && hasher !== undefined) {
          const got = Number(hasher.digest() & 0xffffffffn);
          hasher = undefined;
          if (got !== ev.checksum) throw new DecompressError(failureText('decompress', 'checksum'));
        }
      }
    }
  }
  if (!walker.atFrameBoundary()) throw new DecompressError(failureText('decompress', 'unexpectedEof'));
}

function fzstdError(err: unknown): DecompressError {
  if (err instanceof DecompressError) return err;
  const code = (err as { code?: unknown }).code;
  if (code === 5) return new DecompressError(failureText('decompress', 'unexpectedEof'));
  return new DecompressError(failureText('decompress', 'invalidInput', { detail: err instanceof Error ? err.message : String(err) }));
}

export interface FrameHeader {
  readonly windowSize: number;
  readonly hasChecksum: boolean;
  readonly dictionaryId: number;
}

/**
 * What the walker saw in a chunk: a zstd frame starts (`prefix` is its magic number and header, to be decoded
 * first), or a run of that frame's bytes (block headers, blocks, checksum) goes by; `last` marks the run that ends the
 * frame, with the frame's content checksum when it has one. Skippable frames produce nothing.
 */
export type WalkEvent =
  | { readonly type: 'start'; readonly header: FrameHeader; readonly prefix: Uint8Array }
  | { readonly type: 'bytes'; readonly data: Uint8Array; readonly last: boolean; readonly checksum?: number };

type WalkState = 'magic' | 'skipSize' | 'skipData' | 'descriptor' | 'header' | 'blockHeader' | 'blockBody' | 'checksum';

/**
 * Follows the structure of a zstd stream (RFC 8878 §3.1) without decoding it: frame headers, block headers and
 * sizes, skippable frames, content checksums. It tells where each frame starts and ends, so each frame can go to its
 * own decoder and its output be checked against its own checksum.
 */
export class FrameWalker {
  #state: WalkState = 'magic';
  /** Bytes of the fixed-size field being collected. */
  #field: number[] = [];
  /** Bytes still to pass over (skipData, blockBody), or the size of the field being collected. */
  #left = 4;
  /** The current frame's magic number and header, until the header is complete. */
  #prefix: number[] = [];
  #descriptor = 0;
  #lastBlock = false;

  /** True between frames, where the input may end. */
  atFrameBoundary(): boolean {
    return this.#state === 'magic' && this.#field.length === 0;
  }

  walk(chunk: Uint8Array): WalkEvent[] {
    const events: WalkEvent[] = [];
    const inBody = (s: WalkState) => s === 'blockHeader' || s === 'blockBody' || s === 'checksum';
    let runStart = inBody(this.#state) ? 0 : -1;
    let pos = 0;
    const endFrame = (checksum?: number) => {
      const data = chunk.subarray(runStart, pos);
      events.push(checksum === undefined ? { type: 'bytes', data, last: true } : { type: 'bytes', data, last: true, checksum });
      runStart = -1;
      this.#expect('magic', 4);
    };
    const afterBlock = () => {
      if (!this.#lastBlock) this.#expect('blockHeader', 3);
      else if (this.#descriptor & 0x04) this.#expect('checksum', 4);
      else endFrame();
    };
    while (pos < chunk.length) {
      if (this.#state === 'skipData' || this.#state === 'blockBody') {
        const n = Math.min(this.#left, chunk.length - pos);
        pos += n;
        this.#left -= n;
        if (this.#left > 0) continue;
        if (this.#state === 'skipData') this.#expect('magic', 4);
        else afterBlock();
        continue;
      }
      this.#field.push(chunk[pos++]!);
      if (this.#field.length < this.#left) continue;
      const f = this.#field;
      this.#field = [];
      switch (this.#state) {
        case 'magic': {
          const magic = le(f, 0, 4);
          if (magic === ZSTD_MAGIC) {
            this.#prefix = f;
            this.#expect('descriptor', 1);
          } else if ((magic & SKIPPABLE_MASK) >>> 0 === SKIPPABLE_MAGIC) this.#expect('skipSize', 4);
          else throw new DecompressError(failureText('decompress', 'magicMismatch'));
          break;
        }
        case 'skipSize':
          this.#state = 'skipData';
          this.#left = le(f, 0, 4);
          if (this.#left === 0) this.#expect('magic', 4);
          break;
        case 'descriptor': {
          this.#descriptor = f[0]!;
          this.#prefix.push(f[0]!);
          const rest = this.#headerRestSize();
          if (rest > 0) {
            this.#expect('header', rest);
            break;
          }
          events.push({ type: 'start', header: this.#frameHeader([]), prefix: Uint8Array.from(this.#prefix) });
          this.#expect('blockHeader', 3);
          runStart = pos;
          break;
        }
        case 'header':
          this.#prefix.push(...f);
          events.push({ type: 'start', header: this.#frameHeader(f), prefix: Uint8Array.from(this.#prefix) });
          this.#expect('blockHeader', 3);
          runStart = pos;
          break;
        case 'blockHeader': {
          const h = le(f, 0, 3);
          this.#lastBlock = (h & 1) === 1;
          const type = (h >> 1) & 3;
          if (type === 3) throw new DecompressError(failureText('decompress', 'reservedBlock'));
          this.#state = 'blockBody';
          this.#left = type === 1 ? 1 : h >>> 3;
          if (this.#left === 0) afterBlock();
          break;
        }
        case 'checksum':
          endFrame(le(f, 0, 4));
          break;
      }
    }
    if (runStart >= 0 && pos > runStart) events.push({ type: 'bytes', data: chunk.subarray(runStart, pos), last: false });
    return events;
  }

  #expect(state: WalkState, size: number): void {
    this.#state = state;
    this.#left = size;
  }

  #singleSegment(): boolean {
    return (this.#descriptor & 0x20) !== 0;
  }

  #dictionaryIdSize(): number {
    return [0, 1, 2, 4][this.#descriptor & 3]!;
  }

  #contentSizeSize(): number {
    const flag = this.#descriptor >> 6;
    return flag === 0 ? (this.#singleSegment() ? 1 : 0) : 1 << flag;
  }

  #headerRestSize(): number {
    return (this.#singleSegment() ? 0 : 1) + this.#dictionaryIdSize() + this.#contentSizeSize();
  }

  #frameHeader(rest: readonly number[]): FrameHeader {
    let p = 0;
    let windowSize = 0;
    if (!this.#singleSegment()) {
      const wd = rest[p++]!;
      const base = 2 ** (10 + (wd >> 3));
      windowSize = base + (base / 8) * (wd & 7);
    }
    const dictionaryId = le(rest, p, this.#dictionaryIdSize());
    p += this.#dictionaryIdSize();
    if (this.#singleSegment()) {
      const size = this.#contentSizeSize();
      windowSize = le(rest, p, size) + (size === 2 ? 256 : 0);
    }
    return { windowSize, hasChecksum: (this.#descriptor & 0x04) !== 0, dictionaryId };
  }
}

/** A little-endian unsigned integer of up to 8 bytes (exact up to 2^53, which covers every size that matters). */
function le(bytes: readonly number[], at: number, n: number): number {
  let v = 0;
  for (let i = n - 1; i >= 0; i--) v = v * 256 + bytes[at + i]!;
  return v;
}
