/**
 * The page's DOM-free modules (console/src): line model, formatting and parsing, daemon figures, the wire checks and
 * the codec. Run in Node: they are the same files esbuild bundles.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Packr } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { decodeMessage, encodeRequest } from '../../console/src/codec.js';
import { formatArgv, formatBytes, formatDuration, parseArgs, parseEnv, parseEscapes } from '../../console/src/format.js';
import { fromFallback, fromServerInfo, pickNumber, rate } from '../../console/src/info.js';
import { describeExit, LogModel, MAX_LINE_CHARS, MAX_LOG_LINES } from '../../console/src/logmodel.js';
import { classify } from '../../console/src/wire.js';

describe('the page bundle', () => {
  it('imports only its own files and its three browser packages (no daemon code, nothing of Node)', () => {
    const dir = path.join(path.dirname(fileURLToPath(import.meta.url)), '../../console/src');
    const bad: string[] = [];
    for (const file of readdirSync(dir)) {
      const text = readFileSync(path.join(dir, file), 'utf8');
      for (const m of text.matchAll(/(?:from|import)\s*\(?\s*['"]([^'"]+)['"]/g)) {
        const spec = m[1]!;
        const ok = /^\.\/[\w-]+\.js$/.test(spec) || ['msgpackr', '@xterm/xterm', '@xterm/addon-fit'].includes(spec);
        if (!ok) bad.push(`console/src/${file} imports ${spec}`);
      }
    }
    expect(bad).toEqual([]);
  });
});

const bytes = (s: string) => new TextEncoder().encode(s);
const texts = (m: LogModel) => m.since(0).entries.map((e) => ('text' in e ? `${e.kind}:${e.text}` : `${e.kind}:${e.fromSeq}-${e.toSeq}`));

describe('LogModel', () => {
  it('splits lines across frames, keeps the unfinished one apart, and tells the streams apart', () => {
    const m = new LogModel();
    m.data('stdout', 1, bytes('one\ntw'));
    expect(texts(m)).toEqual(['stdout:one']);
    expect(m.partials()).toEqual([{ kind: 'stdout', text: 'tw' }]);
    m.data('stdout', 2, bytes('o\nthree'));
    // stderr writing ends stdout's unfinished line (the streams interleave at frame boundaries).
    m.data('stderr', 3, bytes('oops\n'));
    expect(texts(m)).toEqual(['stdout:one', 'stdout:two', 'stdout:three', 'stderr:oops']);
    expect([m.frames, m.bytes, m.lastSeq]).toEqual([3, 18, 3]);
  });

  it('decodes a UTF-8 character cut between frames, drops escapes, keeps what a carriage return leaves', () => {
    const m = new LogModel();
    const euro = bytes('€\n');
    m.data('stdout', 1, euro.subarray(0, 2));
    m.data('stdout', 2, euro.subarray(2));
    m.data('stdout', 3, bytes('\x1b[31mred\x1b[0m \x1b]0;title\x07done\r\n'));
    m.data('stdout', 4, bytes('10%\r50%\r100%\n'));
    expect(texts(m)).toEqual(['stdout:€', 'stdout:red done', 'stdout:100%']);
  });

  it(`cuts a line at exactly MAX_LINE_CHARS (${MAX_LINE_CHARS})`, () => {
    const m = new LogModel();
    m.data('stdout', 1, bytes(`${'a'.repeat(MAX_LINE_CHARS)}\n`));
    expect(m.since(0).entries).toHaveLength(1);
    m.data('stdout', 2, bytes('b'.repeat(MAX_LINE_CHARS + 1)));
    expect(m.since(0).entries).toHaveLength(2);
    expect(m.partials()).toEqual([{ kind: 'stdout', text: 'b' }]);
  });

  it(`keeps the newest MAX_LOG_LINES (${MAX_LOG_LINES}) entries, dropping a quarter at a time`, () => {
    const m = new LogModel();
    const limit = MAX_LOG_LINES + (MAX_LOG_LINES >> 2);
    m.data('stdout', 1, bytes('x\n'.repeat(limit)));
    expect([m.start, m.end]).toEqual([0, limit]);
    m.data('stdout', 2, bytes('last\n'));
    expect([m.start, m.end]).toEqual([limit + 1 - MAX_LOG_LINES, limit + 1]);
    expect(m.since(0).from).toBe(m.start);
    expect(m.range(m.end - 2, m.end).entries.map((e) => ('text' in e ? e.text : ''))).toEqual(['x', 'last']);
  });

  it('records gaps and the exit as entries of their own, after the unfinished lines', () => {
    const m = new LogModel();
    m.data('stdout', 1, bytes('partial'));
    m.gap(2, 9);
    m.exit(10, describeExit(-1, 'SIGKILL', 'client'));
    expect(texts(m)).toEqual(['stdout:partial', 'gap:2-9', 'exit:killed by SIGKILL (killed on request)']);
    expect(m.lastSeq).toBe(10);
    expect(m.exited).toBe(true);
    expect(describeExit(3)).toBe('exited with code 3');
  });
});

describe('format', () => {
  it('parses escapes into bytes and refuses malformed ones by position', () => {
    expect([...parseEscapes('a\\tb\\n\\r\\e\\0\\\\\\x41é')]).toEqual([97, 9, 98, 10, 13, 27, 0, 92, 0x41, 0xc3, 0xa9]);
    expect(() => parseEscapes('x\\q')).toThrow('unknown escape \\q at position 2');
    expect(() => parseEscapes('\\x4')).toThrow('\\x at position 1 needs two hex digits');
    expect(() => parseEscapes('end\\')).toThrow('a lone \\ at the end');
  });

  it('parses argv one per line and env KEY=VALUE, with errors naming the line', () => {
    expect(parseArgs('')).toEqual([]);
    expect(parseArgs('-c\necho "a b"\n\nlast\n')).toEqual(['-c', 'echo "a b"', '', 'last']);
    expect(parseEnv('A=1\n\nB=x=y\r\nC=')).toEqual({ A: '1', B: 'x=y', C: '' });
    expect(() => parseEnv('A=1\nnope')).toThrow('environment line 2: want KEY=VALUE, got "nope"');
    expect(() => parseEnv('=v')).toThrow('environment line 1');
  });

  it('formats sizes, durations and command lines', () => {
    expect([formatBytes(1023), formatBytes(1536), formatBytes(50 * 1048576)]).toEqual(['1023 B', '1.5 KiB', '50 MiB']);
    expect([formatDuration(4_900), formatDuration(192_000), formatDuration(7_500_000), formatDuration(3 * 86_400_000 + 4 * 3_600_000)]).toEqual([
      '4s',
      '3m 12s',
      '2h 5m',
      '3d 4h',
    ]);
    expect(formatArgv('sh', ['-c', "echo 'hi' there", ''])).toBe(`sh -c 'echo '\\''hi'\\'' there' ''`);
  });
});

describe('daemon figures', () => {
  it('reads server.info wherever its counters are, and says n/a for what is missing', () => {
    const f = fromServerInfo({
      version: '1.2.3',
      instance: 'abcd',
      uptime: 10,
      processes: { running: 2, total: 5 },
      connections: 3,
      replayBytes: 4096,
      spawns: 17,
      outputBytes: 9000,
      audit: { head: 'f00d', tail: [{ seq: 1, method: 'process.spawn' }] },
    });
    expect(f).toMatchObject({
      version: '1.2.3',
      instance: 'abcd',
      processes: 5,
      running: 2,
      connections: 3,
      replayBytes: 4096,
      spawns: 17,
      output: 9000,
    });
    expect(Date.now() - f.startedAt!).toBeGreaterThanOrEqual(10_000);
    expect(f.auditHead).toBe('f00d');
    expect(f.auditTail).toEqual(['{"seq":1,"method":"process.spawn"}']);
    expect(fromServerInfo({}).connections).toBeUndefined();
    expect(pickNumber({ a: { b: 2 } }, 'x', 'a.b')).toBe(2);
  });

  it('falls back to capabilities and the list, counting frames', () => {
    const state = { keys: new Set<string>(), spawns: 0 };
    const entry = {
      id: 'a',
      running: true,
      pid: 1,
      startTime: 1,
      command: 'x',
      args: [],
      cwd: '/',
      startedAt: 5,
      firstSeq: 1,
      lastSeq: 40,
      stdinApplied: 0,
    };
    const f = fromFallback(
      { version: 'v', methods: [], instanceId: 'i', startedAt: 1, features: [] },
      [entry, { ...entry, id: 'b', running: false, lastSeq: 2 }],
      state,
    );
    expect(f).toMatchObject({ version: 'v', processes: 2, running: 1, spawns: 2, output: 42, outputUnit: 'frames', connections: undefined });
    // The next poll: b was pruned, c is new; the count grows by one and only the listed processes are remembered.
    const g = fromFallback(undefined, [entry, { ...entry, id: 'c' }], state);
    expect([g.spawns, state.keys.size]).toEqual([3, 2]);
  });

  it('computes a rate only between two samples of a total that did not go down', () => {
    expect(rate({ at: 1000, value: 10 }, 3000, 30)).toBe(10);
    expect(rate({ at: 1000, value: 10 }, 3000, 5)).toBeUndefined();
    expect(rate(undefined, 3000, 5)).toBeUndefined();
    expect(rate({ at: 3000, value: 1 }, 3000, 5)).toBeUndefined();
  });
});

describe('wire checks and codec', () => {
  const packr = new Packr({ useRecords: false, variableMapSize: true });

  it('types every frame the daemon sends, and refuses malformed ones', () => {
    const data = new Uint8Array([1, 2]);
    expect(classify({ type: 'stream', processId: 'p', stream: 'stdout', seq: 1, data })).toEqual({
      kind: 'frame',
      frame: { type: 'stream', processId: 'p', stream: 'stdout', seq: 1, data },
    });
    expect(classify({ type: 'stream', processId: 'p', stream: 'exit', seq: 2, exitCode: -1, signal: 'SIGTERM', killedBy: 'client' })).toMatchObject({
      kind: 'frame',
      frame: { stream: 'exit', exitCode: -1, signal: 'SIGTERM', killedBy: 'client' },
    });
    expect(classify({ type: 'stream', processId: 'p', stream: 'resize', seq: 3, cols: 80, rows: 24 })).toMatchObject({
      frame: { cols: 80, rows: 24 },
    });
    expect(classify({ type: 'stream', processId: 'p', stream: 'screen', seq: 4, cols: 80, rows: 24, data: 'x' })).toMatchObject({
      frame: { data: 'x' },
    });
    expect(classify({ type: 'gap', processId: 'p', fromSeq: 5, toSeq: 9 })).toEqual({
      kind: 'frame',
      frame: { type: 'gap', processId: 'p', fromSeq: 5, toSeq: 9 },
    });
    expect(classify({ type: 'stream', processId: 'p', stream: 'stdout', seq: 1, data: 'base64?' }).kind).toBe('invalid');
    expect(classify({ type: 'stream', processId: 'p', stream: 'stdout', seq: -1, data })).toMatchObject({ kind: 'invalid' });
    expect(classify({ type: 'gap', processId: 'p', fromSeq: 'x', toSeq: 9 }).kind).toBe('invalid');
    // A later daemon's new frame or message kind is ignored, not an error.
    expect(classify({ type: 'stream', processId: 'p', stream: 'future', seq: 1 }).kind).toBe('unknown');
    expect(classify({ type: 'notice' }).kind).toBe('unknown');
    expect(classify([1]).kind).toBe('invalid');
    expect(classify({ jsonrpc: '2.0', id: 3, result: { pong: true } })).toEqual({ kind: 'result', id: 3, result: { pong: true } });
    expect(classify({ jsonrpc: '2.0', id: 3, error: { code: -32001, message: 'no' } })).toEqual({
      kind: 'error',
      id: 3,
      error: { code: -32001, message: 'no' },
    });
    expect(classify({ jsonrpc: '1.0', id: 3, result: 1 }).kind).toBe('invalid');
  });

  it('decodes what msgpackr encodes with the daemon options, and encodes requests it reads back', () => {
    const frame = packr.pack({ type: 'stream', processId: 'p', stream: 'stderr', seq: 70000, data: Buffer.from('hi') });
    const got = decodeMessage(frame);
    expect(got.kind).toBe('frame');
    if (got.kind === 'frame' && got.frame.type === 'stream' && got.frame.stream === 'stderr')
      expect(Buffer.from(got.frame.data).toString()).toBe('hi');
    expect(decodeMessage(new Uint8Array([0xc1])).kind).toBe('invalid');
    const req = encodeRequest({
      jsonrpc: '2.0',
      id: 7,
      method: 'process.stdin',
      params: { id: 'p', data: new Uint8Array([0, 255]), offset: 3 },
      auth: 't',
    });
    expect(packr.unpack(req)).toEqual({
      jsonrpc: '2.0',
      id: 7,
      method: 'process.stdin',
      params: { id: 'p', data: Buffer.from([0, 255]), offset: 3 },
      auth: 't',
    });
    // A map header first, as the daemon's format sniffing expects.
    expect(req[0]! >= 0x80 && req[0]! <= 0x8f).toBe(true);
  });
});
