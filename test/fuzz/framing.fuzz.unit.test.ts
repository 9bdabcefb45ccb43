/**
 * Property fuzzing of both framings (reliability.md §3, §7): however the bytes are cut, LineSplitter and
 * MessageSplitter hand out exactly the messages that were sent, never hold more than their cap of an unfinished
 * one, and never throw on any bytes at all.
 */
import fc from 'fast-check';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/protocol/ndjson.js';
import { MessageSplitter } from '../../src/protocol/msgpack.js';
import { budget, FUZZ_TEST_TIMEOUT_MS } from './budget.js';

/** Cuts `bytes` at the given fractions (sorted, deduplicated) into chunks. */
function cut(bytes: Buffer, fractions: number[]): Buffer[] {
  const points = [...new Set(fractions.map((f) => Math.floor(f * bytes.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    if (p > at) out.push(bytes.subarray(at, p));
    at = Math.max(at, p);
  }
  if (at < bytes.length) out.push(bytes.subarray(at));
  return out;
}

const fractions = fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 40 });
const packr = new Packr({ useRecords: false, variableMapSize: true });

describe('LineSplitter (fuzz)', () => {
  it('any lines, any cuts: exactly the lines under the cap come out, and it stops at the first one over', { timeout: FUZZ_TEST_TIMEOUT_MS }, () => {
    const cap = 64;
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 20 }), fractions, (raw, fr) => {
        const lines = raw.map((l) => Buffer.from(l.filter((b) => b !== 10)));
        const bytes = Buffer.concat(lines.flatMap((l) => [l, Buffer.from('\n')]));
        const s = new LineSplitter(cap);
        const got: string[] = [];
        let open = true;
        for (const chunk of cut(bytes, fr)) {
          open = s.push(chunk, (line) => got.push(line.toString('hex')));
          expect(s.pendingBytes).toBeLessThanOrEqual(cap);
          if (!open) break;
        }
        const firstOver = lines.findIndex((l) => l.length > cap);
        const expected = (firstOver === -1 ? lines : lines.slice(0, firstOver)).map((l) => l.toString('hex'));
        expect(got).toEqual(expected);
        expect(open).toBe(firstOver === -1);
      }),
      budget(),
    );
  });
});

describe('MessageSplitter (fuzz)', () => {
  it('any MessagePack values, any cuts: exactly those values come out', { timeout: FUZZ_TEST_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue({ maxDepth: 4 }), { maxLength: 12 }), fractions, (values, fr) => {
        const encoded = values.map((v) => packr.pack(v));
        const s = new MessageSplitter(1_048_575);
        const got: string[] = [];
        for (const chunk of cut(Buffer.concat(encoded), fr)) expect(s.push(chunk, (m) => got.push(m.toString('hex')))).toBe(true);
        expect(got).toEqual(encoded.map((e) => e.toString('hex')));
        expect(s.pendingBytes).toBe(0);
      }),
      budget(),
    );
  });

  it('any bytes, any cuts: never throws, never holds more than the cap', { timeout: FUZZ_TEST_TIMEOUT_MS }, () => {
    const cap = 256;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 2000 }), fractions, (raw, fr) => {
        const s = new MessageSplitter(cap);
        for (const chunk of cut(Buffer.from(raw), fr)) {
          const open = s.push(chunk, (m) => expect(m.length).toBeLessThanOrEqual(cap));
          expect(s.pendingBytes).toBeLessThanOrEqual(cap);
          if (!open) break;
        }
      }),
      budget(),
    );
  });
});
