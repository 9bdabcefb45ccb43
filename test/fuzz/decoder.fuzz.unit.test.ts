/**
 * Property fuzzing of the request decoder and params binding (reliability.md §3: claustrum's FuzzDispatch and
 * FuzzBindParams): any bytes decode to nothing, a parse error, or a request with string fields and an id that
 * re-encodes as JSON; binding gives a typed result or Invalid params, never a throw or a polluted prototype.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeMessage, packValue } from '../../src/server/rpc/codec/msgpack.js';
import { decodeLine } from '../../src/server/rpc/codec/ndjson.js';
import { bindParams, type Shape } from '../../src/server/rpc/params.js';
import { NOT_A_REQUEST, type DecodedRequest } from '../../src/server/rpc/request.js';
import { budget, FUZZ_TEST_TIMEOUT_MS } from './budget.js';

const KEYS = ['jsonrpc', 'JSONRPC', 'id', 'Id', 'method', 'METHOD', 'auth', 'params', 'Params', '__proto__', 'constructor', 'x'];
const value = fc.oneof(
  fc.jsonValue({ maxDepth: 3 }),
  fc.constantFrom('2.0', 'server.ping', 'process.spawn', '', '\u0000', '\ud800', Number.POSITIVE_INFINITY, -0, 2 ** 64, Number.MAX_SAFE_INTEGER + 2),
);
/** Objects shaped like requests: the envelope keys, case variants, and poison keys, with any values. */
const requestish = fc.dictionary(fc.constantFrom(...KEYS), value, { maxKeys: 8 });

function checkDecoded(d: DecodedRequest | typeof NOT_A_REQUEST | null): void {
  if (d === null || d === NOT_A_REQUEST) return;
  for (const f of [d.jsonrpc, d.method, d.auth]) expect(typeof f).toBe('string');
  expect(() => JSON.parse(d.id.json)).not.toThrow();
}

describe('decodeLine / decodeMessage (fuzz)', () => {
  it('any bytes: no throw; a request has string fields and a JSON id', { timeout: FUZZ_TEST_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (raw) => {
        checkDecoded(decodeLine(Buffer.from(raw)));
        checkDecoded(decodeMessage(Buffer.from(raw)));
      }),
      budget(),
    );
  });

  it('request-shaped JSON and MessagePack: no throw, same invariants', { timeout: FUZZ_TEST_TIMEOUT_MS }, () => {
    fc.assert(
      fc.property(requestish, (obj) => {
        checkDecoded(decodeLine(Buffer.from(JSON.stringify(obj) ?? 'null')));
        let packed: Buffer | undefined;
        try {
          packed = packValue(obj);
        } catch {
          return; // not encodable as MessagePack: nothing to send
        }
        checkDecoded(decodeMessage(packed));
      }),
      budget(),
    );
  });

  it('deep nesting in any field is a parse error or a request, never a stack overflow', () => {
    for (const depth of [100, 9_999, 10_000, 10_001, 100_000]) {
      const line = `{"jsonrpc":"2.0","id":${'['.repeat(depth)}${']'.repeat(depth)},"method":"server.ping"}`;
      expect(() => checkDecoded(decodeLine(Buffer.from(line)))).not.toThrow();
    }
  });
});

const SHAPES: Shape[] = [
  { id: 'string', command: 'string', args: 'stringArray', cwd: 'string', env: 'stringMap', wantPid: 'bool' },
  { id: 'string', data: 'bytes', offset: 'uint64', eof: 'bool' },
  { id: 'string', signal: 'string', timeoutMs: 'uint64', escalate: 'bool' },
  { path: 'string', maxBytes: 'int64', archivePath: 'string', destDir: 'string' },
];
const TYPE: Record<string, (v: unknown) => boolean> = {
  string: (v) => typeof v === 'string',
  bool: (v) => typeof v === 'boolean',
  uint64: (v) => Number.isInteger(v) && (v as number) >= 0,
  int64: (v) => Number.isInteger(v),
  stringArray: (v) => Array.isArray(v) && v.every((e) => typeof e === 'string'),
  stringMap: (v) => typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === null && Object.values(v).every((e) => typeof e === 'string'),
  bytes: (v) => typeof v === 'string' || v instanceof Uint8Array,
};

describe('bindParams (fuzz)', () => {
  it('any params: a typed result or Invalid params; no throw, no prototype pollution', { timeout: FUZZ_TEST_TIMEOUT_MS }, () => {
    const params = fc.oneof(
      fc.jsonValue({ maxDepth: 3 }),
      fc.dictionary(fc.constantFrom('id', 'args', 'env', 'offset', 'maxBytes', 'data', 'ID', '__proto__', 'constructor'), value, { maxKeys: 6 }),
    );
    fc.assert(
      fc.property(params, fc.constantFrom(...SHAPES), (p, shape) => {
        const parsed: unknown = JSON.parse(JSON.stringify(p) ?? 'null'); // as the wire delivers it: __proto__ an own key
        const bound = bindParams(parsed, shape);
        if (bound !== undefined) {
          for (const [k, kind] of Object.entries(shape)) {
            const v = (bound as Record<string, unknown>)[k];
            if (v !== undefined) expect(TYPE[kind]!(v), `${k}: ${kind}`).toBe(true);
          }
        }
        expect(Object.prototype).not.toHaveProperty('polluted');
        expect(({} as Record<string, unknown>).polluted).toBeUndefined();
      }),
      budget(),
    );
  });
});
