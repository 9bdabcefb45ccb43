/**
 * The validation gate, in order: parse → auth → version → method → params (claustrum-wire.md §1–3, issue 2 "The
 * wire"). Every expectation is a whole reply line, compared byte for byte, because clients match on these texts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon, sleep } from '../../helpers/daemon.js';
import type { RpcClient } from '../../helpers/rpc.js';
import { errorLine, exchange, line, PARSE_ERROR } from '../../helpers/wire.js';

let d: Daemon;
let c: RpcClient;
beforeAll(async () => {
  d = await Daemon.start();
  c = await d.client();
});
afterAll(() => d.stop());

const UNAUTHORIZED = 'Unauthorized: invalid or missing auth token';
const pong = (idJson: string) => `{"jsonrpc":"2.0","id":${idJson},"result":{"pong":true}}`;

describe('parse errors (-32700, id null)', () => {
  it.each([
    ['an empty array', '[]'],
    ['a batch array', '[{"jsonrpc":"2.0","id":1,"method":"server.ping"}]'],
    ['an array of a number', '[1]'],
    ['a number', '123'],
    ['a string', '"x"'],
    ['a boolean', 'true'],
    ['broken JSON', '{not json'],
    ['a partial object', '{"jsonrpc":"2.0","id":7,'],
    ['a line of spaces only', '    '],
    ['two values on one line', '{}{}'],
    ['an object followed by garbage', '{"jsonrpc":"2.0"} x'],
    ['a number id that overflows float64', '{"jsonrpc":"2.0","id":1e400,"method":"server.ping"}'],
  ])('%s', async (_what, text) => {
    expect(await exchange(c, `${text}\n`)).toBe(PARSE_ERROR);
  });

  it('is sent even when the line carries a valid id and token around the damage', async () => {
    expect(await exchange(c, `{"jsonrpc":"2.0","id":5,"method":"server.ping","auth":${JSON.stringify(d.token)}\n`)).toBe(PARSE_ERROR);
  });

  // Judgement call, see the report: the brief lists a number-typed auth among the -32001 cases, but the reference
  // decodes the request into a struct whose Auth is a string, and Go's Unmarshal error on a mistyped member is
  // answered with the parse error (rpc.go: `json.Unmarshal(raw, &req) != nil → Parse error`). Parity wins.
  it('is what a mistyped envelope member gets (number auth, number jsonrpc, number method), as in the reference', async () => {
    const tok = JSON.stringify(d.token);
    expect(await exchange(c, `{"jsonrpc":"2.0","id":1,"method":"server.ping","auth":123}\n`)).toBe(PARSE_ERROR);
    expect(await exchange(c, `{"jsonrpc":2,"id":1,"method":"server.ping","auth":${tok}}\n`)).toBe(PARSE_ERROR);
    expect(await exchange(c, `{"jsonrpc":"2.0","id":1,"method":5,"auth":${tok}}\n`)).toBe(PARSE_ERROR);
  });

  // Go's decoder refuses a document nested deeper than 10,000 levels, the request object itself being the first,
  // wherever the nesting is; json.Unmarshal validates the whole line before decoding a field.
  describe("nesting past Go's 10,000-level limit", () => {
    const nested = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    const tok = () => JSON.stringify(d.token);

    it('an id 9,999 arrays deep (10,000 levels with the request) is echoed', async () => {
      const reply = await exchange(c, `{"jsonrpc":"2.0","id":${nested(9999)},"method":"server.ping","auth":${tok()}}\n`);
      expect(reply).toBe(pong(nested(9999)));
    });

    it('a deep id without auth is answered (-32001, id echoed), and the daemon survives it', async () => {
      for (const n of [5000, 9999]) {
        const pairs = Math.floor(n / 2) - 1;
        const idJson = `${'{"a":['.repeat(pairs)}1${']}'.repeat(pairs)}`;
        expect(await exchange(c, `{"jsonrpc":"2.0","id":${idJson},"method":"server.ping"}\n`)).toBe(errorLine(idJson, -32001, UNAUTHORIZED));
      }
      expect(d.alive).toBe(true);
    });

    it('an id 10,000 arrays deep is a parse error', async () => {
      expect(await exchange(c, `{"jsonrpc":"2.0","id":${nested(10_000)},"method":"server.ping","auth":${tok()}}\n`)).toBe(PARSE_ERROR);
    });

    it('deep nesting in an ignored member or in server.* params is a parse error too', async () => {
      expect(await exchange(c, `{"jsonrpc":"2.0","id":1,"method":"server.ping","extra":${nested(10_000)},"auth":${tok()}}\n`)).toBe(PARSE_ERROR);
      expect(await exchange(c, `{"jsonrpc":"2.0","id":1,"method":"server.ping","params":{"a":${nested(9999)}},"auth":${tok()}}\n`)).toBe(PARSE_ERROR);
      expect(await exchange(c, `{"jsonrpc":"2.0","id":1,"method":"server.ping","params":${nested(9999)},"auth":${tok()}}\n`)).toBe(pong('1'));
    });

    it('brackets inside strings are not nesting', async () => {
      const text = `{"jsonrpc":"2.0","id":"${'['.repeat(20_000)}","method":"server.ping","params":{"pad":"${'{'.repeat(20_000)}\\"["},"auth":${tok()}}\n`;
      expect(await exchange(c, text)).toBe(pong(JSON.stringify('['.repeat(20_000))));
    });
  });

  it('leaves the connection usable', async () => {
    await exchange(c, '{oops\n');
    expect(await exchange(c, `${line(d.token, { id: 'after', method: 'server.ping' })}\n`)).toBe(pong('"after"'));
  });
});

describe('blank lines and line endings', () => {
  it('answers nothing to a blank line or a lone \\r, then serves the next request', async () => {
    const before = c.lines.length;
    c.sendRaw('\n');
    c.sendRaw('\r\n');
    c.sendRaw('\n\n\r\n');
    expect(await exchange(c, `${line(d.token, { id: 'next', method: 'server.ping' })}\n`)).toBe(pong('"next"'));
    expect(c.lines.length).toBe(before + 1);
  });

  it('tolerates CRLF line endings', async () => {
    expect(await exchange(c, `${line(d.token, { id: 'crlf', method: 'server.ping' })}\r\n`)).toBe(pong('"crlf"'));
  });

  it('serves several requests written in one chunk, each answered once', async () => {
    const ids = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    const chunk = ids.map((id) => `${line(d.token, { id: `many-${id}`, method: 'server.ping' })}\n`).join('');
    const before = c.lines.length;
    c.sendRaw(chunk);
    await c.waitFor((m) => m.id === 'many-10');
    await sleep(50);
    const got = c.lines.slice(before).map((l) => JSON.parse(l).id);
    expect(got.sort()).toEqual(ids.map((id) => `many-${id}`).sort());
  });

  it('reassembles a request written one byte at a time, a multi-byte character split across writes', async () => {
    const text = `${line(d.token, { id: 'é€😀', method: 'server.ping' })}\n`;
    const bytes = Buffer.from(text);
    const before = c.lines.length;
    for (let i = 0; i < bytes.length; i++) {
      c.sendRaw(bytes.subarray(i, i + 1));
      if (i % 16 === 0) await sleep(1);
    }
    await c.waitFor((m) => m.id === 'é€😀');
    expect(c.lines[before]).toBe(pong('"é€😀"'));
  });

  it('answers parse and auth errors even when the client half-closes right after the line', async () => {
    for (const [text, reply] of [
      ['[]', PARSE_ERROR],
      ['{}', errorLine('null', -32001, UNAUTHORIZED)],
      ['{"jsonrpc":"2.0","id":4,"method":"server.ping","auth":"wrong"}', errorLine('4', -32001, UNAUTHORIZED)],
    ] as const) {
      const e = await d.client();
      e.socket.end(`${text}\n`);
      await e.closed;
      expect(e.lines).toEqual([reply]);
    }
  });

  it('treats bytes before EOF with no final newline as one more line', async () => {
    const e = await d.client();
    e.sendRaw(line(d.token, { id: 'eof', method: 'server.ping' }));
    e.socket.end();
    await e.closed;
    expect(e.lines).toEqual([pong('"eof"')]);
  });
});

describe('auth (-32001), checked before the version', () => {
  const tok = () => JSON.stringify(d.token);
  it.each([
    ['{}', '{}', 'null'],
    ['null', 'null', 'null'],
    ['a version alone', '{"jsonrpc":"2.0"}', 'null'],
    ['no auth', '{"jsonrpc":"2.0","id":5,"method":"server.ping"}', '5'],
    ['auth null', '{"jsonrpc":"2.0","id":5,"method":"server.ping","auth":null}', '5'],
    ['empty auth', '{"jsonrpc":"2.0","id":5,"method":"server.ping","auth":""}', '5'],
    ['a wrong token', '{"jsonrpc":"2.0","id":"w","method":"server.ping","auth":"wrong"}', '"w"'],
    ['a very long wrong token', `{"jsonrpc":"2.0","id":6,"method":"server.ping","auth":"${'z'.repeat(100_000)}"}`, '6'],
    ['auth and version both bad', '{"jsonrpc":"1.0","id":7,"method":"process.spawn","auth":"nope"}', '7'],
    ['auth bad and version absent', '{"id":8,"method":"server.ping"}', '8'],
    ['an unknown method without auth', '{"jsonrpc":"2.0","id":9,"method":"nope"}', '9'],
  ])('%s', async (_what, text, idJson) => {
    expect(await exchange(c, `${text}\n`)).toBe(errorLine(idJson, -32001, UNAUTHORIZED));
  });

  it('refuses the token with a trailing newline, another case, a prefix, or the token in the wrong field', async () => {
    const cases = [
      { jsonrpc: '2.0', id: 1, method: 'server.ping', auth: `${d.token}\n` },
      { jsonrpc: '2.0', id: 2, method: 'server.ping', auth: d.token.toUpperCase() },
      { jsonrpc: '2.0', id: 3, method: 'server.ping', auth: d.token.slice(0, -1) },
      { jsonrpc: '2.0', id: 4, method: 'server.ping', token: d.token },
      { jsonrpc: '2.0', id: 5, method: 'server.ping', params: { auth: d.token } },
    ];
    for (const msg of cases) {
      expect(await exchange(c, `${JSON.stringify(msg)}\n`)).toBe(errorLine(String(msg.id), -32001, UNAUTHORIZED));
    }
  });

  it('matches the auth key case-insensitively, as Go struct decoding does', async () => {
    expect(await exchange(c, `{"jsonrpc":"2.0","id":1,"method":"server.ping","AUTH":${tok()}}\n`)).toBe(pong('1'));
  });

  it('takes the last of repeated keys, as both Go and JSON.parse do', async () => {
    const tok = JSON.stringify(d.token);
    expect(await exchange(c, `{"jsonrpc":"2.0","id":1,"id":2,"method":"server.ping","auth":"wrong","auth":${tok}}\n`)).toBe(pong('2'));
    expect(await exchange(c, `{"jsonrpc":"2.0","id":3,"method":"server.ping","auth":${tok},"auth":"wrong"}\n`)).toBe(
      errorLine('3', -32001, UNAUTHORIZED),
    );
  });

  it('never writes the token into the log, whatever was sent', () => {
    expect(d.log()).not.toContain(d.token);
    expect(d.log()).toContain('Unauthorized request: method=server.ping');
  });
});

describe('version (-32600), after auth', () => {
  it.each([
    ['absent', { id: 1, method: 'server.ping' }],
    ['"1.0"', { jsonrpc: '1.0', id: 1, method: 'server.ping' }],
    ['"2"', { jsonrpc: '2', id: 1, method: 'server.ping' }],
    ['null', { jsonrpc: null, id: 1, method: 'server.ping' }],
    ['"2.0 "', { jsonrpc: '2.0 ', id: 1, method: 'server.ping' }],
  ])('jsonrpc %s', async (_what, fields) => {
    const text = JSON.stringify({ ...fields, auth: d.token });
    expect(await exchange(c, `${text}\n`)).toBe(errorLine('1', -32600, 'Invalid JSON-RPC version'));
  });

  it('comes before the method check', async () => {
    const text = JSON.stringify({ jsonrpc: '1.0', id: 2, method: 'bogus', auth: d.token });
    expect(await exchange(c, `${text}\n`)).toBe(errorLine('2', -32600, 'Invalid JSON-RPC version'));
  });
});

describe('method (-32601)', () => {
  it.each([
    ['bogus', 'Invalid method format: bogus'],
    ['', 'Invalid method format: '],
    ['x.y', 'Unknown namespace: x'],
    ['launcher.resolve', 'Unknown namespace: launcher'],
    ['plugins.prune', 'Unknown namespace: plugins'],
    ['.ping', 'Unknown namespace: '],
    ['process.bogus', 'Unknown method: process.bogus'],
    ['process.spawn.extra', 'Unknown method: process.spawn.extra'],
    ['server.version', 'Unknown method: server.version'],
    ['Server.ping', 'Unknown namespace: Server'],
  ])('%j', async (method, message) => {
    expect(await exchange(c, `${line(d.token, { id: 3, method })}\n`)).toBe(errorLine('3', -32601, message));
  });

  it('treats an absent method as the empty one', async () => {
    expect(await exchange(c, `${line(d.token, { id: 4 })}\n`)).toBe(errorLine('4', -32601, 'Invalid method format: '));
  });

  it('answers an unknown method before looking at its params (absent or mistyped)', async () => {
    expect(await exchange(c, `${line(d.token, { id: 5, method: 'process.bogus' })}\n`)).toBe(errorLine('5', -32601, 'Unknown method: process.bogus'));
    expect(await exchange(c, `${line(d.token, { id: 6, method: 'process.bogus', params: 'x' })}\n`)).toBe(
      errorLine('6', -32601, 'Unknown method: process.bogus'),
    );
  });
});

describe('the echoed id', () => {
  it.each([
    ['1.0', '1'],
    ['1e2', '100'],
    ['-5', '-5'],
    ['0.5', '0.5'],
    ['12345678901234567890', '12345678901234567000'],
    ['"abc"', '"abc"'],
    ['"1"', '"1"'],
    ['true', 'true'],
    ['null', 'null'],
    ['[3,1,2]', '[3,1,2]'],
    ['{"b":1,"a":2}', '{"a":2,"b":1}'],
    ['{"z":{"y":1,"x":[{"d":1,"c":2}]},"a":null}', '{"a":null,"z":{"x":[{"c":2,"d":1}],"y":1}}'],
    ['"\\u00e9\\n"', '"é\\n"'],
  ])('%s comes back as %s', async (sent, echoed) => {
    const text = `{"jsonrpc":"2.0","id":${sent},"method":"server.ping","auth":${JSON.stringify(d.token)}}\n`;
    expect(await exchange(c, text)).toBe(pong(echoed));
  });

  it('is null when absent', async () => {
    expect(await exchange(c, `${line(d.token, { method: 'server.ping' })}\n`)).toBe(pong('null'));
  });

  it('is echoed the same way on error replies', async () => {
    const text = `{"jsonrpc":"2.0","id":{"b":1.0,"a":1e2},"method":"server.ping","auth":"bad"}\n`;
    expect(await exchange(c, text)).toBe(errorLine('{"a":100,"b":1}', -32001, UNAUTHORIZED));
  });

  // Go's decoder replaces every byte of an invalid UTF-8 sequence with its own U+FFFD (utf8.DecodeRune reports
  // width 1), where a WHATWG decoder folds a truncated sequence into one.
  it.each([
    ['a stray continuation byte', [0x80], '\ufffd'],
    ['two invalid lead bytes', [0xff, 0xfe], '\ufffd\ufffd'],
    ['a truncated 3-byte sequence', [0xe2, 0x82], '\ufffd\ufffd'],
    ['a truncated 4-byte sequence', [0xf0, 0x9f, 0x98], '\ufffd\ufffd\ufffd'],
    ['an encoded surrogate', [0xed, 0xa0, 0x80], '\ufffd\ufffd\ufffd'],
    ['an overlong encoding', [0xc0, 0xaf], '\ufffd\ufffd'],
    ['a valid sequence after a truncated one', [0xe2, 0x82, 0x41, 0xc3, 0xa9], '\ufffd\ufffdAé'],
  ])('replaces invalid UTF-8 in a string id byte by byte, as Go does: %s', async (_what, bytes, echoed) => {
    const head = Buffer.from('{"jsonrpc":"2.0","id":"');
    const tail = Buffer.from(`","method":"server.ping","auth":${JSON.stringify(d.token)}}\n`);
    const reply = await exchange(c, Buffer.concat([head, Buffer.from(bytes), tail]));
    expect(JSON.parse(reply).id).toBe(echoed);
  });

  it('matches the id key case-insensitively', async () => {
    expect(await exchange(c, `{"jsonrpc":"2.0","ID":42,"method":"server.ping","auth":${JSON.stringify(d.token)}}\n`)).toBe(pong('42'));
  });
});

describe('the daemon after all of the above', () => {
  it('is alive and still answers on a fresh connection', async () => {
    const e = await d.client();
    expect(await e.call('server.ping')).toEqual({ pong: true });
    expect(d.alive).toBe(true);
  });
});
