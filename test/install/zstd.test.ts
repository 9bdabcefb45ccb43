/**
 * The streaming zstd decoder, on blobs made by the real zstd tool: every backend this Node offers (fzstd always;
 * Node's zlib zstd where present), any chunking of the input, the frame walker's own checks, and the size cap.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { availableBackends, decodeZstd, decompressFile, DecompressError, FrameWalker, FZSTD_SAFE_WINDOW } from '../../src/install/zstd.js';
import { tempDir } from '../helpers/daemon.js';
import { sha256 } from '../helpers/install.js';

function compress(data: Buffer, ...flags: string[]): Buffer {
  return execFileSync('zstd', ['-q', '-c', ...flags], { input: data, maxBuffer: 1 << 28 });
}

/** Feeds `data` in chunks whose sizes come from `sizes` (cycled). */
async function* chunks(data: Buffer, sizes: readonly number[]): AsyncGenerator<Uint8Array> {
  for (let off = 0, i = 0; off < data.length; i++) {
    const n = sizes[i % sizes.length]!;
    yield data.subarray(off, off + n);
    off += n;
  }
}

async function decode(data: Buffer, backend: 'zlib' | 'fzstd', sizes: readonly number[] = [65536]): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of decodeZstd(chunks(data, sizes), backend)) out.push(Buffer.from(c));
  return Buffer.concat(out);
}

async function decodeError(data: Buffer, backend: 'zlib' | 'fzstd'): Promise<DecompressError> {
  try {
    await decode(data, backend);
  } catch (err) {
    expect(err).toBeInstanceOf(DecompressError);
    return err as DecompressError;
  }
  throw new Error('decoded without an error');
}

/** Text with long repeats and some noise: compresses into real compressed blocks with matches. */
function sample(size: number): Buffer {
  const words = ['claustrum ', 'supervisor ', 'frame ', 'window ', 'block ', 'zstd ', '\n'];
  const parts: string[] = [];
  let n = 0;
  let seed = 7;
  while (n < size) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    const w = words[seed % words.length]! + (seed % 13 === 0 ? String(seed) : '');
    parts.push(w);
    n += w.length;
  }
  return Buffer.from(parts.join('')).subarray(0, size);
}

const text = sample(3 << 20);
const random = randomBytes(300_000);

describe.each(availableBackends())('zstd backend %s', (backend) => {
  it.each([
    ['level 1', ['-1']],
    ['level 19', ['-19']],
    ['no checksum', ['--no-check']],
    ['long mode', ['--long=24']],
  ])('decodes what the zstd tool made (%s)', async (_name, flags) => {
    expect(sha256(await decode(compress(text, ...flags), backend))).toBe(sha256(text));
  });

  it('decodes incompressible input (raw blocks) and an empty input', async () => {
    expect((await decode(compress(random), backend)).equals(random)).toBe(true);
    expect((await decode(compress(Buffer.alloc(0)), backend)).length).toBe(0);
    expect((await decode(Buffer.alloc(0), backend)).length).toBe(0);
  });

  it('decodes several frames and skippable frames in a row', async () => {
    const skippable = Buffer.concat([Buffer.from([0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0]), Buffer.from('abc')]);
    const data = Buffer.concat([skippable, compress(text.subarray(0, 100_000)), compress(random), skippable, compress(Buffer.from('tail'))]);
    const want = Buffer.concat([text.subarray(0, 100_000), random, Buffer.from('tail')]);
    expect((await decode(data, backend)).equals(want)).toBe(true);
  });

  it('gives the same output however the input is cut', async () => {
    const data = Buffer.concat([compress(text.subarray(0, 400_000), '-3'), compress(random.subarray(0, 50_000), '--no-check')]);
    const want = Buffer.concat([text.subarray(0, 400_000), random.subarray(0, 50_000)]);
    for (const sizes of [[1], [2, 3, 5, 7], [17, 4096, 1], [131_072]]) {
      expect((await decode(data, backend, sizes)).equals(want), `chunk sizes ${sizes.join(',')}`).toBe(true);
    }
  });

  it('fails on input that is not zstd, and on a truncated frame', async () => {
    await decodeError(Buffer.from('#!/bin/sh\necho not zstd\n'), backend);
    const whole = compress(text.subarray(0, 200_000));
    await decodeError(whole.subarray(0, whole.length - 10), backend);
  });
});

describe('zstd with the fzstd backend', () => {
  it('words its errors as the reference decoder does', async () => {
    expect((await decodeError(Buffer.from('not zstd'), 'fzstd')).message).toBe('invalid input: magic number mismatch');
    const whole = compress(text.subarray(0, 200_000));
    expect((await decodeError(whole.subarray(0, whole.length - 10), 'fzstd')).message).toBe('unexpected EOF');
    expect((await decodeError(whole.subarray(0, 3), 'fzstd')).message).toBe('unexpected EOF');
  });

  it('checks each frame against its content checksum', async () => {
    // Incompressible input is stored in raw blocks: a flipped byte there decodes fine and only the checksum sees it.
    const data = Buffer.from(compress(random));
    data[data.length >> 1]! ^= 0xff;
    expect((await decodeError(data, 'fzstd')).message).toBe('CRC check failed');
  });

  it('refuses a window past 2^25 bytes in a frame without a checksum, and decodes it with one', async () => {
    // From a pipe the zstd tool cannot shrink the window to the input: --long=27 declares 128 MiB.
    const unchecked = compress(text.subarray(0, 10_000), '--long=27', '--no-check');
    const err = await decodeError(unchecked, 'fzstd');
    expect(err.message).toBe(
      `window size exceeded: the frame needs ${1 << 27} bytes, and a frame without a content checksum is decoded only up to ${FZSTD_SAFE_WINDOW}`,
    );
    const checked = compress(text.subarray(0, 10_000), '--long=27');
    expect((await decode(checked, 'fzstd')).equals(text.subarray(0, 10_000))).toBe(true);
  });
});

describe('FrameWalker', () => {
  it('reports each frame header and where each frame ends, and drops skippable frames', () => {
    const a = compress(text.subarray(0, 50_000));
    const b = compress(Buffer.from('hello'), '--no-check');
    const skippable = Buffer.from([0x50, 0x2a, 0x4d, 0x18, 1, 0, 0, 0, 0xee]);
    const data = Buffer.concat([a, skippable, b]);
    const events = new FrameWalker().walk(data);
    const starts = events.filter((e) => e.type === 'start');
    expect(starts.map((e) => (e.type === 'start' ? e.header.hasChecksum : undefined))).toEqual([true, false]);
    const ends = events.filter((e) => e.type === 'bytes' && e.last);
    expect(ends.map((e) => (e.type === 'bytes' ? e.checksum : 0))).toEqual([a.readUInt32LE(a.length - 4), undefined]);
    // Every byte of the two frames, and none of the skippable one, is in a prefix or a run.
    const total = events.reduce((n, e) => n + (e.type === 'start' ? e.prefix.length : e.data.length), 0);
    expect(total).toBe(a.length + b.length);
  });

  it('walks the same however the input is cut', () => {
    const data = Buffer.concat([compress(text.subarray(0, 20_000)), compress(Buffer.from('x'))]);
    for (const size of [1, 3, 4, 5, 1000]) {
      const walker = new FrameWalker();
      const events = [];
      for (let off = 0; off < data.length; off += size) events.push(...walker.walk(data.subarray(off, off + size)));
      expect(walker.atFrameBoundary()).toBe(true);
      const bytes = Buffer.concat(events.map((e) => (e.type === 'start' ? e.prefix : e.data)));
      expect(bytes.equals(data), `cut every ${size}`).toBe(true);
      expect(events.filter((e) => e.type === 'bytes' && e.last).length).toBe(2);
    }
  });
});

describe('decompressFile', () => {
  let dir: string;
  beforeAll(() => {
    dir = tempDir('claustrum-zstd-');
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('writes the whole output, and stops at the cap', async () => {
    const src = path.join(dir, 'in.zst');
    writeFileSync(src, compress(text));
    for (const backend of availableBackends()) {
      const out = path.join(dir, `out-${backend}`);
      const fh = await open(out, 'w');
      expect(await decompressFile(src, fh, text.length, backend)).toBe(text.length);
      await fh.close();
      expect(readFileSync(out).equals(text)).toBe(true);

      const capped = await open(path.join(dir, `capped-${backend}`), 'w');
      await expect(decompressFile(src, capped, text.length - 1, backend)).rejects.toThrow(`decompressed CLI exceeds ${text.length - 1} bytes`);
      await capped.close();
    }
  });
});
