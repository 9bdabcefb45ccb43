/**
 * The stdin fast path against the general path it shortcuts (decodeLine → bindParams → decodeBase64Strict): whenever
 * the fast path answers, the general path must give the same envelope, the same bound params and the same bytes; and
 * on ordinary requests it must answer, or it would be a fast path in name only.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  asDecodedRequest,
  DATA_SLICE_CHARS,
  parseStdinLine,
  STDIN_FAST_PATH_MIN_LINE_BYTES,
  type StdinRequest,
} from '../../../../src/server/rpc/codec/stdin-fast.js';
import { decodeBase64Strict } from '../../../../src/process/stdin.js';
import { decodeLineGeneral as decodeLine } from '../../../../src/server/rpc/codec/ndjson.js';
import { bindParams } from '../../../../src/server/rpc/params.js';
import { NOT_A_REQUEST } from '../../../../src/server/rpc/request.js';
import { seeded } from '../../../helpers/random.js';

/** process.stdin's params shape, as src/server/rpc/methods/process.ts defines it. */
const STDIN_SHAPE = { id: 'string', data: 'bytes', offset: 'uint64', eof: 'bool' } as const;

/** What the daemon makes of a line, through the general path, up to the stdin handler's decoded data. */
type Outcome =
  | { kind: 'blank' | 'parseError' | 'otherMethod' | 'invalidParams' | 'invalidBase64' }
  | {
      kind: 'stdin';
      id: { json: string; value: unknown };
      jsonrpc: string;
      auth: string;
      params: { id: string | undefined; offset: number | undefined; eof: boolean | undefined };
      data: Buffer;
    };

function general(line: Buffer): Outcome {
  const req = decodeLine(line);
  if (req === null) return { kind: 'blank' };
  if (req === NOT_A_REQUEST) return { kind: 'parseError' };
  if (req.method !== 'process.stdin') return { kind: 'otherMethod' };
  if (req.params === undefined) return { kind: 'invalidParams' };
  const bound = bindParams(req.params, STDIN_SHAPE, req.literals);
  if (bound === undefined) return { kind: 'invalidParams' };
  const data = stdinBytes(bound.data);
  if (data === undefined) return { kind: 'invalidBase64' };
  return {
    kind: 'stdin',
    id: { json: req.id.json, value: req.id.value },
    jsonrpc: req.jsonrpc,
    auth: req.auth,
    params: { id: bound.id, offset: bound.offset, eof: bound.eof },
    data,
  };
}

/** decodeStdinData of src/server/methods/process.ts. */
function stdinBytes(data: string | Uint8Array | undefined): Buffer | undefined {
  if (data === undefined) return Buffer.alloc(0);
  if (typeof data !== 'string') return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  return decodeBase64Strict(data);
}

/** The fast path's answer in the same shape, also checked through asDecodedRequest → bindParams (the wiring). */
function fast(line: Buffer): Outcome | undefined {
  const r = parseStdinLine(line);
  if (r === undefined) return undefined;
  const viaGeneralBinding = bindParams(asDecodedRequest(r).params, STDIN_SHAPE, asDecodedRequest(r).literals);
  expect(viaGeneralBinding).toBeDefined();
  const direct = {
    kind: 'stdin' as const,
    id: { json: r.id.json, value: r.id.value },
    jsonrpc: r.jsonrpc,
    auth: r.auth,
    params: { id: r.params.id, offset: r.params.offset, eof: r.params.eof },
    data: r.params.data,
  };
  const wired = {
    ...direct,
    params: { id: viaGeneralBinding!.id, offset: viaGeneralBinding!.offset, eof: viaGeneralBinding!.eof },
    data: stdinBytes(viaGeneralBinding!.data)!,
  };
  expectSame(wired, direct, line);
  return direct;
}

function expectSame(actual: Outcome, expected: Outcome, line: Buffer): void {
  const where = () => `line: ${JSON.stringify(line.toString('latin1').slice(0, 300))}`;
  expect(actual.kind, where()).toBe(expected.kind);
  if (actual.kind !== 'stdin' || expected.kind !== 'stdin') return;
  expect(actual.id.json, where()).toBe(expected.id.json);
  expect(Object.is(actual.id.value, expected.id.value) || actual.id.value === expected.id.value, where()).toBe(true);
  expect(actual.jsonrpc, where()).toBe(expected.jsonrpc);
  expect(actual.auth, where()).toBe(expected.auth);
  expect(actual.params, where()).toEqual(expected.params);
  expect(actual.data.equals(expected.data), where()).toBe(true);
}

/** The property: the fast path either declines or agrees with the general path exactly. */
function agrees(line: Buffer): boolean {
  const f = fast(line);
  if (f !== undefined) expectSame(f, general(line), line);
  return f !== undefined;
}

// ---- generators ----

/** Deterministic bytes of a given length: big payloads stay cheap to shrink (a seed and a length). */
function bytesOf(seed: number, length: number): Buffer {
  const rnd = seeded(seed);
  const b = Buffer.allocUnsafe(length);
  for (let i = 0; i < length; i++) b[i] = Math.floor(rnd() * 256);
  return b;
}

/** Raw data lengths: small, around a slice boundary (3 bytes per 4 characters), and up to four slices. */
const dataLength = fc.oneof(
  { weight: 4, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 2, arbitrary: fc.integer({ min: (DATA_SLICE_CHARS / 4) * 3 - 4, max: (DATA_SLICE_CHARS / 4) * 3 + 4 }) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 4 * (DATA_SLICE_CHARS / 4) * 3 }) },
);

const validBase64 = fc.tuple(fc.integer(), dataLength).map(([seed, n]) => bytesOf(seed, n).toString('base64'));

/** A change to base64 text, in JSON source form: some keep it valid for the general path (escapes), most do not. */
const corruption = fc.constantFrom(
  '-',
  '_',
  '=',
  ' ',
  '!',
  'é',
  '\u0100',
  '\\\\',
  '\\n',
  '\\r',
  '\\r\\n',
  '\\/',
  '\\u0041',
  '\\"',
  '\t',
  '\u0000',
  '\r',
  'A',
  'AA',
  'AAAA',
  '',
);

const corruptBase64 = fc
  .tuple(validBase64, corruption, fc.double({ min: 0, max: 1, noNaN: true }), fc.constantFrom('insert', 'replace', 'unpad', 'pad'))
  .map(([text, c, where, how]) => {
    const at = Math.floor(where * text.length);
    switch (how) {
      case 'insert':
        return text.slice(0, at) + c + text.slice(at);
      case 'replace':
        return text.slice(0, at) + c + text.slice(at + 1);
      case 'unpad':
        return text.replace(/=+$/, '');
      default:
        return `${text}=`;
    }
  });

/** A JSON string literal of any text (escaped as JSON.stringify does: quotes, backslashes, control characters). */
const anyStringLiteral = fc.string({ unit: 'binary', maxLength: 12 }).map((s) => JSON.stringify(s));
const plainStringLiteral = fc.string({ unit: fc.constantFrom(...'abcXYZ019-_.:/ é€😀'), maxLength: 12 }).map((s) => `"${s}"`);

const idValue = fc.oneof(
  fc.integer().map(String),
  fc.constantFrom(
    '0',
    '-0',
    '1.5',
    '1.0',
    '1e2',
    '1E+2',
    '-12.5e-3',
    '1e400',
    '9007199254740993',
    '18446744073709551616',
    '01',
    '1.',
    '.5',
    '+1',
    '-',
  ),
  plainStringLiteral,
  anyStringLiteral,
  fc.constantFrom('true', 'false', 'null', '{}', '[1]', '{"a":1}', '"\\u00e9"', 'nul', 'tru'),
);

const offsetValue = fc.oneof(
  fc.nat().map(String),
  fc.bigInt({ min: 0n, max: (1n << 64n) + 10n }).map(String),
  fc.constantFrom('18446744073709551615', '18446744073709551616', '0', '-0', '-1', '1.0', '1e2', '007', '"5"', 'null', 'true', '1.5', '[]'),
);

/** Present mostly (`often`) or rarely (`rarely`); null means the member is left out. */
const often = <T>(a: fc.Arbitrary<T>) => fc.option(a, { freq: 6 });
const rarely = <T>(a: fc.Arbitrary<T>) => fc.oneof({ weight: 6, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: a });

/** One member: its key as written (sometimes a case variant or an escape) and its value. */
type Member = readonly [string, string];

const paramsMembers = fc.record({
  id: often(fc.oneof(plainStringLiteral, anyStringLiteral, fc.constantFrom('null', '5', '"p1"', '{}'))),
  data: often(
    fc.oneof(
      { weight: 6, arbitrary: validBase64.map((s) => `"${s}"`) },
      { weight: 3, arbitrary: corruptBase64.map((s) => `"${s}"`) },
      { weight: 1, arbitrary: fc.constantFrom('null', '5', '""', '"QQ=="', '["QQ=="]', 'true') },
    ),
  ),
  offset: often(offsetValue),
  eof: often(fc.constantFrom('true', 'false', 'null', '1', '"true"')),
  unknown: rarely(
    fc.constantFrom<Member>(
      ['x', '1'],
      ['wantPid', 'true'],
      ['extra', '"s"'],
      ['nested', '{"a":1}'],
      ['arr', '[]'],
      ['neg', '-1.5e3'],
      ['n', 'null'],
    ),
  ),
  variant: rarely(
    fc.constantFrom<Member>(['ID', '"p"'], ['Data', '"QQ=="'], ['OFFSET', '1'], ['EOF', 'true'], ['eoF', 'false'], ['\\u0069d', '"p"'], ['ſ', '1']),
  ),
});

const topMembers = fc.record({
  jsonrpc: often(fc.constantFrom('"2.0"', '"2.0"', '"2.0"', '"1.0"', 'null', '5', '"2.\\u0030"', '""')),
  id: often(idValue),
  method: often(
    fc.constantFrom(
      '"process.stdin"',
      '"process.stdin"',
      '"process.stdin"',
      '"process.stdin"',
      '"process.stdin"',
      '"process.stdin"',
      '"process.spawn"',
      '"Process.stdin"',
      '"process.stdin "',
      '"process\\u002estdin"',
      'null',
      '1',
    ),
  ),
  auth: often(fc.oneof(plainStringLiteral, anyStringLiteral, fc.constantFrom('null', 'true', '"tok"'))),
  unknown: rarely(fc.constantFrom<Member>(['extra', '1'], ['x', '"y"'], ['obj', '{}'], ['list', '[1,2]'])),
  variant: rarely(fc.constantFrom<Member>(['Method', '"x"'], ['ID', '3'], ['PARAMS', '{}'], ['jsonRPC', '"2.0"'], ['Auth', '"t"'])),
});

/** JSON whitespace, mostly none (LF only rarely: LineSplitter never leaves one in a line, but JSON allows it). */
const gap = fc.oneof({ weight: 8, arbitrary: fc.constant('') }, { weight: 2, arbitrary: fc.constantFrom(' ', '\t', '\r', ' \t\r ', '\n') });

/** Members in a shuffled order, sometimes one of them twice, joined with random whitespace. */
function objectText(members: Member[]): fc.Arbitrary<string> {
  return fc
    .tuple(
      fc.shuffledSubarray(members, { minLength: members.length, maxLength: members.length }),
      rarely(fc.nat()),
      fc.array(gap, { minLength: 4 * members.length + 4, maxLength: 4 * members.length + 4 }),
    )
    .map(([order, dup, gaps]) => {
      const list = [...order];
      // A key repeated, with its own value or another member's: JSON.parse keeps the last.
      if (dup !== null && list.length > 0) list.push([list[dup % list.length]![0], list[(dup >> 4) % list.length]![1]]);
      let g = 0;
      const w = () => gaps[g++ % gaps.length]!;
      return `${w()}{${list.map(([k, v]) => `${w()}"${k}"${w()}:${w()}${v}${w()}`).join(',')}}${w()}`;
    });
}

function entries(rec: Record<string, string | Member | null>): Member[] {
  const out: Member[] = [];
  for (const [k, v] of Object.entries(rec)) {
    if (v === null) continue;
    if (typeof v === 'string') out.push([k, v]);
    else out.push(v);
  }
  return out;
}

/** Requests over the whole range: valid stdin requests, near misses, other methods, odd params. */
const requestLine = fc
  .tuple(
    topMembers,
    paramsMembers,
    fc.oneof({ weight: 12, arbitrary: fc.constant('object') }, { weight: 1, arbitrary: fc.constantFrom('absent', 'null', '[]', '"x"') }),
  )
  .chain(([top, params, paramsForm]) =>
    objectText(entries(params)).chain((paramsText) => {
      const t = entries(top);
      if (paramsForm === 'object') t.push(['params', paramsText]);
      else if (paramsForm !== 'absent') t.push(['params', paramsForm]);
      return objectText(t);
    }),
  )
  .map((text) => Buffer.from(text, 'utf8'));

/** A request the fast path is for: nothing unusual in it. */
/** The members of a request the fast path is for: nothing unusual in it. */
interface Parts {
  readonly top: Member[];
  readonly params: Member[];
  readonly spaced: boolean;
}

const ordinaryParts: fc.Arbitrary<Parts> = fc
  .record({
    id: fc.oneof(fc.nat().map(String), plainStringLiteral, fc.constant('null')),
    auth: plainStringLiteral,
    pid: plainStringLiteral,
    data: validBase64,
    offset: fc.option(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(String)),
    eof: fc.option(fc.boolean()),
  })
  .chain((r) => {
    const params: Member[] = [
      ['id', r.pid],
      ['data', `"${r.data}"`],
    ];
    if (r.offset !== null) params.push(['offset', r.offset]);
    if (r.eof !== null) params.push(['eof', String(r.eof)]);
    const top: Member[] = [
      ['jsonrpc', '"2.0"'],
      ['id', r.id],
      ['method', '"process.stdin"'],
      ['auth', r.auth],
    ];
    return fc.record({
      params: fc.shuffledSubarray(params, { minLength: params.length, maxLength: params.length }),
      top: fc.shuffledSubarray(top, { minLength: top.length, maxLength: top.length }),
      spaced: fc.boolean(),
    });
  });

function build(p: Parts): Buffer {
  const sep = p.spaced ? ' ' : '';
  const obj = (m: Member[]) => `{${m.map(([k, v]) => `"${k}":${sep}${v}`).join(`,${sep}`)}}`;
  return Buffer.from(obj([...p.top, ['params', obj(p.params)]]), 'utf8');
}

const ordinaryLine = ordinaryParts.map(build);

/**
 * An ordinary request with one twist: a character of its data replaced (raw, as it would sit in the line), a member
 * repeated with another value, or a key in another case.
 */
const twistedLine = fc
  .tuple(
    ordinaryParts,
    fc.oneof(
      fc.record({
        kind: fc.constant('char' as const),
        where: fc.double({ min: 0, max: 1, noNaN: true }),
        c: fc.constantFrom('-', '_', '=', '+', '/', 'A', ' ', '!', 'é', '\\\\', '\\n', '\\/', '\t', '\u0000', '\r', '"', '\u007f'),
      }),
      fc.record({
        kind: fc.constant('repeat' as const),
        inParams: fc.boolean(),
        member: fc.constantFrom<Member>(
          ['data', '"QQ=="'],
          ['offset', '5'],
          ['id', '"other"'],
          ['eof', 'true'],
          ['auth', '"x"'],
          ['jsonrpc', '"1.0"'],
          ['method', '"process.stdin"'],
        ),
        first: fc.boolean(),
      }),
      fc.record({ kind: fc.constant('case' as const), inParams: fc.boolean(), which: fc.nat() }),
      fc.record({
        kind: fc.constant('bytes' as const),
        inParams: fc.boolean(),
        // Valid UTF-8 (é, €, 😀) and the invalid kinds Go and WHATWG replace differently: truncated, surrogate, stray.
        bytes: fc.constantFrom(
          [0xc3, 0xa9],
          [0xe2, 0x82, 0xac],
          [0xf0, 0x9f, 0x98, 0x80],
          [0xe2, 0x82],
          [0xf0, 0x9f, 0x98],
          [0xc3],
          [0xff],
          [0x80],
          [0xed, 0xa0, 0x80],
          [0xc0, 0xaf],
        ),
      }),
    ),
  )
  .map(([parts, t]) => {
    const top = [...parts.top];
    const params = [...parts.params];
    if (t.kind === 'char') {
      const i = params.findIndex(([k]) => k === 'data');
      const v = params[i]![1];
      const at = 1 + Math.floor(t.where * (v.length - 2));
      params[i] = ['data', v.slice(0, at) + t.c + v.slice(at + 1)];
    } else if (t.kind === 'repeat') {
      const list = t.inParams ? params : top;
      if (t.first) list.unshift(t.member);
      else list.push(t.member);
    } else if (t.kind === 'case') {
      const list = t.inParams ? params : top;
      const i = t.which % list.length;
      const [k, v] = list[i]!;
      list[i] = [k.length > 1 ? k[0]!.toUpperCase() + k.slice(1) : k.toUpperCase(), v];
    }
    if (t.kind !== 'bytes') return build({ top, params, spaced: parts.spaced });
    // Raw bytes inside the auth token or the process id, spliced in after the text is encoded.
    const list = t.inParams ? params : top;
    const i = list.findIndex(([k]) => k === (t.inParams ? 'id' : 'auth'));
    list[i] = [list[i]![0], `"a${MARK}b"`];
    const b = build({ top, params, spaced: parts.spaced });
    const at = b.indexOf(MARK);
    return Buffer.concat([b.subarray(0, at), Buffer.from(t.bytes), b.subarray(at + MARK.length)]);
  });

const MARK = '~~bytes~~';

/** Byte-level damage to a line: flips, cuts, duplicated spans, invalid UTF-8, a line of random bytes. */
const hostileLine = fc.oneof(
  fc
    .tuple(
      fc.oneof(requestLine, ordinaryLine),
      fc.array(
        fc.tuple(
          fc.constantFrom('set', 'delete', 'insert', 'truncate', 'dup'),
          fc.double({ min: 0, max: 1, noNaN: true }),
          fc.constantFrom(0x80, 0xc3, 0xe2, 0xff, 0x00, 0x22, 0x5c, 0x7b, 0x7d, 0x2c, 0x3a, 0x20, 0x41, 0x3d, 0x30),
        ),
        { minLength: 1, maxLength: 3 },
      ),
    )
    .map(([line, edits]) => {
      let b = line;
      for (const [how, where, byte] of edits) {
        const at = Math.floor(where * b.length);
        if (how === 'set' && b.length > 0) {
          b = Buffer.from(b);
          b[Math.min(at, b.length - 1)] = byte;
        } else if (how === 'delete') b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
        else if (how === 'insert') b = Buffer.concat([b.subarray(0, at), Buffer.from([byte]), b.subarray(at)]);
        else if (how === 'truncate') b = b.subarray(0, at);
        else b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + 8), b.subarray(at)]);
      }
      return b;
    }),
  fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a)),
  fc.json().map((s) => Buffer.from(s)),
);

// ---- properties ----

describe('parseStdinLine agrees with the general path', () => {
  it('answers every ordinary stdin request, exactly as the general path does', () => {
    fc.assert(
      fc.property(ordinaryLine, (line) => {
        expect(agrees(line), `declined: ${line.toString('latin1').slice(0, 200)}`).toBe(true);
      }),
      { numRuns: 400 },
    );
  });

  it('declines or agrees on generated requests, valid and near-valid', () => {
    let answered = 0;
    let runs = 0;
    fc.assert(
      fc.property(requestLine, (line) => {
        runs++;
        if (agrees(line)) answered++;
      }),
      { numRuns: 3000 },
    );
    // The generator is mostly unusual on purpose; a fast path that declined everything would still pass the above.
    expect(answered / runs).toBeGreaterThan(0.02);
  });

  it('declines or agrees on ordinary requests with one twist', () => {
    fc.assert(
      fc.property(twistedLine, (line) => {
        agrees(line);
      }),
      { numRuns: 1500 },
    );
  });

  it('declines or agrees on damaged and random bytes', () => {
    fc.assert(
      fc.property(hostileLine, (line) => {
        agrees(line);
      }),
      { numRuns: 3000 },
    );
  });
});

// ---- exact cases and boundaries ----

const b64 = (n: number, seed = 1) => bytesOf(seed, n).toString('base64');
const line = (params: string, top = '"jsonrpc":"2.0","id":7,"method":"process.stdin","auth":"t"') =>
  Buffer.from(`{${top},"params":${params}}`, 'utf8');
const decided = (l: Buffer): StdinRequest | undefined => {
  agrees(l);
  return parseStdinLine(l);
};

describe('parseStdinLine: exact cases', () => {
  it('decodes the envelope and the bytes', () => {
    const raw = bytesOf(3, 1000);
    const r = decided(line(`{"id":"p1","data":"${raw.toString('base64')}","offset":4096,"eof":true}`))!;
    expect(r.id).toEqual({ json: '7', value: 7 });
    expect(r.jsonrpc).toBe('2.0');
    expect(r.method).toBe('process.stdin');
    expect(r.auth).toBe('t');
    expect(r.params).toMatchObject({ id: 'p1', offset: 4096, offsetLiteral: '4096', eof: true });
    expect(r.params.data.equals(raw)).toBe(true);
  });

  it('decodes data lengths at the slice boundary exactly, padding in a last slice of one group', () => {
    const perSlice = (DATA_SLICE_CHARS / 4) * 3;
    for (const n of [perSlice - 2, perSlice - 1, perSlice, perSlice + 1, perSlice + 2, perSlice + 3, 2 * perSlice, 2 * perSlice + 1]) {
      const raw = bytesOf(n, n);
      const r = decided(line(`{"id":"p","data":"${raw.toString('base64')}"}`));
      expect(r, `raw length ${n}`).toBeDefined();
      expect(r!.params.data.equals(raw), `raw length ${n}`).toBe(true);
    }
  });

  it('refuses a bad character on either side of a slice boundary, and padding that ends a slice early', () => {
    const text = b64((DATA_SLICE_CHARS / 4) * 3 * 2);
    for (const at of [0, DATA_SLICE_CHARS - 1, DATA_SLICE_CHARS, DATA_SLICE_CHARS + 1, text.length - 1]) {
      for (const bad of ['-', '_', '=', '!', '\u00e9']) {
        if (bad === '=' && at === text.length - 1) continue; // valid padding there
        const l = line(`{"id":"p","data":"${text.slice(0, at)}${bad}${text.slice(at + 1)}"}`);
        expect(decided(l), `${bad} at ${at}`).toBeUndefined();
        expect(general(l).kind).toBe('invalidBase64');
      }
    }
    // A whole padded group closing the first slice: valid only at the very end.
    const early = line(`{"data":"${text.slice(0, DATA_SLICE_CHARS - 4)}QQ==${text.slice(DATA_SLICE_CHARS)}"}`);
    expect(decided(early)).toBeUndefined();
    expect(general(early).kind).toBe('invalidBase64');
  });

  it('takes offsets up to uint64 max and declines the next one up, which the general path refuses', () => {
    const max = decided(line('{"id":"p","data":"","offset":18446744073709551615}'))!;
    expect(max.params.offsetLiteral).toBe('18446744073709551615');
    expect(max.params.offset).toBe(Number(2n ** 64n - 1n));
    for (const bad of ['18446744073709551616', '99999999999999999999', '100000000000000000000', '-0', '-1', '1.0', '1e2']) {
      const l = line(`{"id":"p","data":"","offset":${bad}}`);
      expect(decided(l), bad).toBeUndefined();
      expect(general(l).kind, bad).toBe('invalidParams');
    }
    expect(decided(line('{"id":"p","offset":9007199254740993}'))!.params.offset).toBe(9007199254740992);
    expect(decided(line('{"id":"p","offset":0}'))!.params.offsetLiteral).toBe('0');
  });

  it.each([
    ['a case variant of a params key', '{"ID":"p","data":"QQ=="}'],
    ['a case variant of data', '{"id":"p","Data":"QQ=="}'],
    ['a duplicate key', '{"id":"p","data":"QQ==","data":"QUI="}'],
    ['an escaped key', '{"\\u0069d":"p","data":"QQ=="}'],
    ['a non-ASCII key', '{"id":"p","data":"QQ==","ſ":1}'],
    ['an escape in the process id', '{"id":"p\\u0031","data":"QQ=="}'],
    ['an escape in the data', '{"id":"p","data":"QQ\\u003d="}'],
    ['a newline escape the strict decoder would skip', '{"id":"p","data":"QU\\nJD"}'],
    ['an object inside params', '{"id":"p","data":"QQ==","env":{}}'],
    ['an array inside params', '{"id":"p","data":"QQ==","args":[]}'],
    ['null params', 'null'],
  ])('declines %s', (_what, params) => {
    expect(decided(line(params))).toBeUndefined();
  });

  it.each([
    ['a case variant of method', '"jsonrpc":"2.0","id":1,"Method":"process.stdin","auth":"t"'],
    ['another method', '"jsonrpc":"2.0","id":1,"method":"process.spawn","auth":"t"'],
    ['an object id', '"jsonrpc":"2.0","id":{"a":1},"method":"process.stdin","auth":"t"'],
    ['an id Go cannot hold', '"jsonrpc":"2.0","id":1e400,"method":"process.stdin","auth":"t"'],
    ['a numeric jsonrpc', '"jsonrpc":2,"id":1,"method":"process.stdin","auth":"t"'],
    ['invalid UTF-8 in auth', '"jsonrpc":"2.0","id":1,"method":"process.stdin","auth":"\xff"'],
  ])('declines a line with %s', (_what, top) => {
    const l = Buffer.from(`{${top},"params":{"id":"p","data":"QQ=="}}`, 'latin1');
    expect(decided(l)).toBeUndefined();
  });

  it('echoes ids the way the general path re-encodes them', () => {
    for (const [id, json] of [
      ['1.0', '1'],
      ['1E2', '100'],
      ['-0', '-0'],
      ['"é"', '"é"'],
      ['null', 'null'],
      ['true', 'true'],
    ]) {
      expect(decided(line('{"id":"p"}', `"jsonrpc":"2.0","id":${id},"method":"process.stdin","auth":"t"`))!.id.json).toBe(json);
    }
    expect(decided(line('{"id":"p"}', '"jsonrpc":"2.0","method":"process.stdin","auth":"t"'))!.id).toEqual({ json: 'null', value: null });
  });

  it('accepts whitespace wherever JSON does, a trailing CR, unknown scalar members and null members', () => {
    const raw = bytesOf(9, 300);
    const text = ` \t{ "jsonrpc" : "2.0" ,"id":"x", "method":"process.stdin","auth":null,"extra":-1.5e3,"params" : { "id" : "p" , "data" : "${raw.toString('base64')}" , "wantPid":true,"eof":null } }\r`;
    const r = decided(Buffer.from(text));
    expect(r).toMatchObject({ auth: '', id: { json: '"x"' }, params: { id: 'p', eof: undefined, offset: undefined } });
    expect(r!.params.data.equals(raw)).toBe(true);
  });

  it('gives the caller a buffer from its allocator, exactly the decoded size', () => {
    const raw = bytesOf(5, 5000);
    const spare = Buffer.alloc(8192);
    const r = parseStdinLine(line(`{"id":"p","data":"${raw.toString('base64')}"}`), () => spare)!;
    expect(r.params.data.buffer).toBe(spare.buffer);
    expect(r.params.data.length).toBe(5000);
    expect(r.params.data.equals(raw)).toBe(true);
    expect(() => parseStdinLine(line(`{"id":"p","data":"${raw.toString('base64')}"}`), () => Buffer.alloc(10))).toThrow(RangeError);
  });

  it('states the line length its caller should start using it at', () => {
    expect(STDIN_FAST_PATH_MIN_LINE_BYTES).toBe(16 * 1024);
    expect(DATA_SLICE_CHARS).toBe(64 * 1024);
  });
});
