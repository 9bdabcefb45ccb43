/**
 * The presentation-only `[keyword] k:v …` parser and renderer: the seed's example, quoting, limits at their exact
 * boundary, a round trip over random values, audit records as HUD lines, and that the file imports nothing (the
 * client library exports it as it is).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatEnvelope, MAX_HUD_FIELDS, MAX_HUD_LINE_CHARS, parseEnvelope, renderRecordHud } from '../../src/client/hud.js';
import { ROOT } from '../helpers/daemon.js';
import { seeded } from '../helpers/random.js';

describe('parseEnvelope', () => {
  it("parses the seed's line", () => {
    const e = parseEnvelope('[fs_ops] action:write target:/src/lib.rs size:124B actor:alice@example.com')!;
    expect(e.subsystem).toBe('fs_ops');
    expect({ ...e.fields }).toEqual({ action: 'write', target: '/src/lib.rs', size: '124B', actor: 'alice@example.com' });
    expect(e.words).toEqual([]);
  });

  it('takes quoted values, values with colons, bare words, and keeps the last of a repeated key', () => {
    const e = parseEnvelope('  [net] url:http://h:80/x msg:"two words \\"q\\"" retrying k:1 k:2\t')!;
    expect({ ...e.fields }).toEqual({ url: 'http://h:80/x', msg: 'two words "q"', k: '2' });
    expect(e.words).toEqual(['retrying']);
  });

  it('is not an envelope: plain text, a missing keyword, an unfinished quote', () => {
    for (const line of ['hello world', '[] a:b', '[x]a:b', '[bad keyword] a:b', '[x] a:"open', '[x] a:"x"y', '']) {
      expect(parseEnvelope(line), line).toBeUndefined();
    }
    expect(parseEnvelope('[x]')).toEqual({ subsystem: 'x', fields: {}, words: [] });
  });

  it(`takes ${MAX_HUD_FIELDS} fields and lines of ${MAX_HUD_LINE_CHARS} characters, not one more`, () => {
    const fields = (n: number) => Array.from({ length: n }, (_, i) => `k${i}:v`).join(' ');
    expect(Object.keys(parseEnvelope(`[x] ${fields(MAX_HUD_FIELDS)}`)!.fields).length).toBe(MAX_HUD_FIELDS);
    expect(parseEnvelope(`[x] ${fields(MAX_HUD_FIELDS + 1)}`)).toBeUndefined();
    const exact = `[x] a:${'v'.repeat(MAX_HUD_LINE_CHARS - 6)}`;
    expect(exact.length).toBe(MAX_HUD_LINE_CHARS);
    expect(parseEnvelope(exact)?.fields.a?.length).toBe(MAX_HUD_LINE_CHARS - 6);
    expect(parseEnvelope(`${exact}v`)).toBeUndefined();
  });

  it('a __proto__ key is only a key', () => {
    const e = parseEnvelope('[x] __proto__:polluted constructor:c')!;
    expect(e.fields.__proto__).toBe('polluted');
    expect(Object.getPrototypeOf(e.fields)).toBeNull();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('formatEnvelope then parseEnvelope gives the fields back, whatever the values', () => {
    const rand = seeded(7);
    // Any code point, control characters, quotes, backslashes and line separators included.
    const char = () => String.fromCodePoint(rand() < 0.3 ? Math.floor(rand() * 0x80) : Math.floor(rand() * 0x2100));
    for (let i = 0; i < 300; i++) {
      const fields: [string, string][] = [];
      for (let k = 0; k < Math.floor(rand() * 6); k++) {
        fields.push([
          `f${k}`,
          Array.from({ length: Math.floor(rand() * 30) }, char)
            .join('')
            .toWellFormed(),
        ]);
      }
      const line = formatEnvelope('audit.x', fields);
      const back = parseEnvelope(line);
      expect(back, line).toBeDefined();
      expect(Object.entries(back!.fields)).toEqual(fields);
      expect(line).not.toMatch(/[\n\r]/);
    }
  });
});

describe('renderRecordHud', () => {
  it('renders a request with who, what and how it ended', () => {
    const line = renderRecordHud({
      seq: 12,
      ts: '2025-01-02T03:04:05.678Z',
      log: 'a'.repeat(32),
      kind: 'request',
      conn: 3,
      transport: 'unix/ndjson',
      peer: { kind: 'unix', pid: 4242, uid: 1000, comm: 'node' },
      caller: { driver: 'ci', identity: 'alice@example.com' },
      authenticated: true,
      method: 'process.spawn',
      id: '7',
      params: { id: 'p1', command: 'sh', args: ['-c', 'echo hi'], envKeys: ['PATH'] },
      outcome: { code: -32603, message: 'exec: "sh": executable file not found in $PATH' },
      ms: 2,
      prev: '0'.repeat(64),
      hash: 'f'.repeat(64),
    });
    expect(line).toBe(
      '[audit.request] seq:12 ts:2025-01-02T03:04:05.678Z conn:3 transport:unix/ndjson pid:4242 uid:1000 comm:node caller.driver:ci caller.identity:alice@example.com method:process.spawn id:7 id:p1 command:sh args:"-c \\"echo hi\\"" envKeys:PATH outcome:-32603 error:"exec: \\"sh\\": executable file not found in $PATH" ms:2',
    );
    expect(parseEnvelope(line)?.subsystem).toBe('audit.request');
  });

  it('renders exits, headers and the drop marker', () => {
    expect(
      renderRecordHud({
        seq: 3,
        ts: 't',
        kind: 'exit',
        processId: 'p',
        pid: 9,
        exitCode: -1,
        signal: 'SIGKILL',
        killedBy: 'client',
        ms: 5,
        stdoutBytes: 1,
        stderrBytes: 0,
      }),
    ).toBe('[audit.exit] seq:3 ts:t processId:p pid:9 exitCode:-1 signal:SIGKILL killedBy:client ms:5 stdoutBytes:1 stderrBytes:0');
    expect(renderRecordHud({ seq: 1, ts: 't', kind: 'header', file: 2, reason: 'rotate', pid: 1, version: 'v', log: 'l', lost: 4 })).toBe(
      '[audit.header] seq:1 ts:t LOST:4 file:2 reason:rotate pid:1 version:v log:l',
    );
  });
});

describe('hud.ts', () => {
  it('imports nothing, so the client library can export it as it is', () => {
    const source = readFileSync(path.join(ROOT, 'src/client/hud.ts'), 'utf8');
    expect(source).not.toMatch(/^\s*import\s/m);
    expect(source).not.toMatch(/\brequire\(|\bimport\(/);
  });
});
