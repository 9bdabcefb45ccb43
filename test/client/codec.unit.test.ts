/**
 * The client's NDJSON encoding of requests that carry bytes (`process.stdin`): written as one Buffer without
 * JSON.stringify touching the bytes (src/client/codec.ts). It must mean exactly what the plain JSON encoding means,
 * and the daemon's stdin fast path (src/server/rpc/codec/stdin-fast.ts) must take it.
 */
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ndjson } from '../../src/client/codec.js';
import { STDIN_CHUNK_BYTES } from '../../src/client/stdin.js';
import type { WireRequest } from '../../src/client/wire.js';
import { parseStdinLine } from '../../src/server/rpc/codec/stdin-fast.js';

/** What the request means on the wire: bytes as standard base64, everything else as JSON has it. */
function meaning(request: WireRequest): unknown {
  return JSON.parse(
    JSON.stringify(request, function (this: Record<string, unknown>, key, value) {
      const raw = this[key];
      return raw instanceof Uint8Array ? Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64') : value;
    }),
  );
}

function stdinRequest(params: Record<string, unknown>, auth = 'token-0123'): WireRequest {
  return { jsonrpc: '2.0', id: 41, method: 'process.stdin', params, auth };
}

function encodeLine(request: WireRequest): Buffer {
  const line = ndjson.encode(request);
  expect(line.at(-1)).toBe(10);
  expect(line.indexOf(10)).toBe(line.length - 1);
  return line.subarray(0, -1);
}

describe('ndjson.encode of a request with bytes', () => {
  it.each([0, 1, 2, 3, 4, 57, 1000, STDIN_CHUNK_BYTES - 1, STDIN_CHUNK_BYTES])('means the same as plain JSON with %i bytes of data', (n) => {
    const req = stdinRequest({ id: 'p1', data: randomBytes(n), offset: 123_456_789 });
    expect(JSON.parse(encodeLine(req).toString('utf8'))).toEqual(meaning(req));
  });

  it('encodes only the bytes of a view into a larger buffer', () => {
    const whole = randomBytes(4096);
    const view = new Uint8Array(whole.buffer, whole.byteOffset + 100, 999);
    const line = encodeLine(stdinRequest({ id: 'p1', data: view, offset: 0 }));
    expect(Buffer.from(JSON.parse(line.toString('utf8')).params.data, 'base64')).toEqual(Buffer.from(view));
  });

  it('keeps strings that need escaping or are not ASCII, in the envelope and the params', () => {
    const req = stdinRequest({ id: 'é "quoted" \\ \n\u0000 ☃ 𝄞', data: Buffer.from('hi'), offset: 2, eof: true }, 'tök"en');
    expect(JSON.parse(encodeLine(req).toString('utf8'))).toEqual(meaning(req));
  });

  it('writes data as the only param when it is the only one', () => {
    const req = stdinRequest({ data: Buffer.from([0, 255, 128]) });
    expect(JSON.parse(encodeLine(req).toString('utf8'))).toEqual(meaning(req));
  });

  it('is taken by the daemon’s stdin fast path with the same id, offset, eof and bytes', () => {
    const data = randomBytes(STDIN_CHUNK_BYTES);
    const parsed = parseStdinLine(encodeLine(stdinRequest({ id: 'proc-7', data, offset: 5 * STDIN_CHUNK_BYTES, eof: true })));
    expect(parsed).toBeDefined();
    expect(parsed?.method).toBe('process.stdin');
    expect(parsed?.auth).toBe('token-0123');
    expect(parsed?.params.id).toBe('proc-7');
    expect(parsed?.params.offset).toBe(5 * STDIN_CHUNK_BYTES);
    expect(parsed?.params.eof).toBe(true);
    expect(parsed?.params.data.equals(data)).toBe(true);
  });
});

describe('STDIN_CHUNK_BYTES', () => {
  it("keeps a full chunk's base64 string under V8's 128 KiB large-object threshold, and one more byte group over it would not", () => {
    const V8_LARGE_OBJECT_BYTES = 128 * 1024;
    const STRING_HEADER_BYTES = 16;
    const base64Chars = (n: number) => Math.ceil(n / 3) * 4;
    expect(Buffer.from(randomBytes(STDIN_CHUNK_BYTES)).toString('base64')).toHaveLength(base64Chars(STDIN_CHUNK_BYTES));
    expect(base64Chars(STDIN_CHUNK_BYTES) + STRING_HEADER_BYTES).toBeLessThanOrEqual(V8_LARGE_OBJECT_BYTES);
    // The chunk is the largest whole KiB under the threshold: 96 KiB is 131,072 characters, over it.
    expect(base64Chars(STDIN_CHUNK_BYTES + 1024) + STRING_HEADER_BYTES).toBeGreaterThan(V8_LARGE_OBJECT_BYTES);
  });
});

describe('ndjson.encode of a request without bytes', () => {
  it('is the plain JSON line', () => {
    const req: WireRequest = {
      jsonrpc: '2.0',
      id: 3,
      method: 'process.spawn',
      params: { id: 'x', command: 'sh', args: ['-c', 'echo "é"'] },
      auth: 't',
    };
    expect(ndjson.encode(req).toString('utf8')).toBe(`${JSON.stringify(req)}\n`);
  });

  it('is the plain JSON line when data is a string, not bytes', () => {
    const req = stdinRequest({ id: 'p', data: 'aGk=', offset: 0 });
    expect(ndjson.encode(req).toString('utf8')).toBe(`${JSON.stringify(req)}\n`);
  });
});
