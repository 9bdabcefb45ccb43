import { describe, expect, it } from 'vitest';
import { decodeLine } from '../../../src/server/rpc/codec/ndjson.js';
import { bindParams } from '../../../src/server/rpc/params.js';
import { encodeId, NOT_A_REQUEST, type DecodedRequest } from '../../../src/server/rpc/request.js';

const decode = (text: string) => decodeLine(Buffer.from(text));
const req = (text: string) => {
  const r = decode(text);
  if (r === null || r === NOT_A_REQUEST) throw new Error(`not a request: ${text}`);
  return r as DecodedRequest;
};

describe('decodeLine', () => {
  it.each([
    '[]',
    '123',
    '"x"',
    '{not json',
    '   ',
    '{}{}',
    'true',
    '[1]',
    '{"jsonrpc":2}',
    '{"method":7}',
    '{"auth":123}',
    '{"id":1e400}',
    '{"id":[1e400]}',
  ])('is a parse error: %s', (text) => {
    expect(decode(text)).toBe(NOT_A_REQUEST);
  });

  it('skips blank lines and a lone CR', () => {
    expect(decode('')).toBeNull();
    expect(decode('\r')).toBeNull();
  });

  it('decodes null and {} into empty fields (they then fail auth)', () => {
    for (const t of ['null', '{}'])
      expect(req(t)).toMatchObject({ id: { json: 'null', value: null }, jsonrpc: '', method: '', auth: '', params: undefined });
  });

  it('tolerates a trailing CR', () => {
    expect(req('{"jsonrpc":"2.0","method":"server.ping"}\r').method).toBe('server.ping');
  });

  it('treats null string fields as absent', () => {
    expect(req('{"jsonrpc":null,"method":null,"auth":null}')).toMatchObject({ jsonrpc: '', method: '', auth: '' });
  });

  it('matches keys case-insensitively, preferring the exact spelling', () => {
    const r = req('{"JSONRPC":"2.0","Method":"server.ping","ID":7,"AUTH":"t","Params":{"x":1}}');
    expect(r).toMatchObject({ jsonrpc: '2.0', method: 'server.ping', id: { json: '7', value: 7 }, auth: 't', params: { x: 1 } });
    expect(req('{"Id":1,"id":2}').id.json).toBe('2');
  });

  it('distinguishes absent params from null params', () => {
    expect(req('{"method":"a.b"}').params).toBeUndefined();
    expect(req('{"method":"a.b","params":null}').params).toBeNull();
  });

  it('replaces invalid UTF-8 with U+FFFD when decoding', () => {
    const line = Buffer.concat([Buffer.from('{"id":"a'), Buffer.from([0xff]), Buffer.from('b"}')]);
    const r = decodeLine(line) as DecodedRequest;
    expect(JSON.parse(r.id.json)).toBe('a\ufffdb');
  });

  it('survives deep nesting without a stack overflow', () => {
    expect(decode('['.repeat(200_000) + ']'.repeat(200_000))).toBe(NOT_A_REQUEST);
    expect(decode(`{"id":${'['.repeat(20_000)}${']'.repeat(20_000)}}`)).toBe(NOT_A_REQUEST);
  });
});

describe('encodeId: the id echoed as Go re-encodes it', () => {
  it.each([
    ['1.0', '1'],
    ['1e2', '100'],
    ['12345678901234567890', '12345678901234567000'],
    ['-0', '-0'],
    ['0.1', '0.1'],
    ['1e21', '1e+21'],
    ['1e-7', '1e-7'],
    ['"a<b>&c"', '"a<b>&c"'],
    ['{"b":1,"a":{"d":2,"c":3}}', '{"a":{"c":3,"d":2},"b":1}'],
    ['[3,{"z":1,"y":2}]', '[3,{"y":2,"z":1}]'],
    ['null', 'null'],
    ['true', 'true'],
  ])('%s → %s', (sent, echoed) => {
    expect(encodeId(JSON.parse(sent))).toBe(echoed);
  });

  it('sorts keys by code point (UTF-8 byte order), not UTF-16 order', () => {
    expect(encodeId({ '\u{1F600}': 1, '\uFFFD': 2 })).toBe('{"\uFFFD":2,"\u{1F600}":1}');
  });

  it('turns a lone surrogate into U+FFFD, as Go decodes it', () => {
    expect(encodeId('\ud800x')).toBe('"\ufffdx"');
  });
});

describe('bindParams', () => {
  const shape = { id: 'string', offset: 'uint64', on: 'bool', args: 'stringArray', env: 'stringMap', n: 'int64' } as const;
  const bind = (params: string) => {
    const r = req(`{"method":"a.b","params":${params}}`);
    return bindParams(r.params, shape, r.literals);
  };

  it('binds well-typed members and ignores unknown ones', () => {
    expect(bind('{"id":"x","offset":4,"on":true,"args":["a",null],"env":{"K":"v","N":null},"n":-3,"extra":[1,{"deep":true}]}')).toEqual({
      id: 'x',
      offset: 4,
      on: true,
      args: ['a', ''],
      env: Object.assign(Object.create(null), { K: 'v', N: '' }),
      n: -3,
    });
  });

  it('treats null params and null members as absent', () => {
    expect(bind('null')).toEqual({ id: undefined, offset: undefined, on: undefined, args: undefined, env: undefined, n: undefined });
    expect(bind('{"id":null,"offset":null}')).toMatchObject({ id: undefined, offset: undefined });
  });

  it.each([
    '"x"',
    '[]',
    '5',
    '{"id":5}',
    '{"offset":"4"}',
    '{"offset":-1}',
    '{"offset":4.5}',
    '{"offset":4.0}',
    '{"offset":1e2}',
    '{"offset":18446744073709551616}',
    '{"offset":true}',
    '{"on":"true"}',
    '{"on":1}',
    '{"args":"a"}',
    '{"args":[1]}',
    '{"env":{"A":1}}',
    '{"env":["A"]}',
    '{"n":9223372036854775808}',
  ])('refuses %s (Invalid params, never coerced)', (params) => {
    expect(bind(params)).toBeUndefined();
  });

  it('accepts uint64 up to 2^64-1, written exactly', () => {
    expect(bind('{"offset":18446744073709551615}')!.offset).toBe(2 ** 64);
    expect(bind('{"offset":0}')!.offset).toBe(0);
    expect(bind('{"n":-9223372036854775808}')!.n).toBe(-(2 ** 63));
  });

  it('reads the literal of the member actually bound, past huge strings and escapes', () => {
    const big = 'A'.repeat(1 << 20);
    expect(bind(`{"id":"${big}","x":"\\"offset\\":1.5","offset":7}`)!.offset).toBe(7);
    expect(bind(`{"nested":{"offset":1.5},"offset":7}`)!.offset).toBe(7);
    expect(bind(`{"off\\u0073et":7}`)!.offset).toBe(7);
    expect(bind(`{"off\\u0073et":7.0}`)).toBeUndefined();
  });

  it('never lets __proto__ reach a prototype', () => {
    const r = bind('{"env":{"__proto__":"x","constructor":"y"},"__proto__":{"polluted":1}}')!;
    expect(Object.getPrototypeOf(r.env)).toBeNull();
    expect(r.env!.__proto__).toBe('x');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });
});
