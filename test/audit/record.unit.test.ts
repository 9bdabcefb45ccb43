/**
 * Audit records: the canonical bytes, the chain hash (checked against the shell pipeline the design document gives),
 * the caps and their exact boundaries, and the redaction table: what an investigator needs is kept, no secret is.
 */
import { describe, expect, it } from 'vitest';
import { Budget, CanonicalError, canonicalJson, cutString, encodedLength } from '../../src/audit/canonical.js';
import {
  chainHash,
  encodeRecord,
  type Entry,
  entryParts,
  type FrameChain,
  frameText,
  LineAssembler,
  LINE_SLAB_BYTES,
  GENESIS_HASH,
  MAX_ARGS,
  MAX_ENV_KEYS,
  MAX_MESSAGE_BYTES,
  MAX_NAME_BYTES,
  MAX_RECORD_BYTES,
  MAX_STRING_BYTES,
  PARAMS_BUDGET_BYTES,
  parseLine,
  REDACTION,
  type RequestEntry,
  type RequestFacts,
  redactParams,
  redactResult,
  requestEntry,
  requestParts,
  requestText,
  Scrubber,
} from '../../src/audit/record.js';
import { NumberLiterals } from '../../src/server/rpc/request.js';
import { SERVED_METHODS } from '../helpers/methods.js';

const none = new Scrubber([]);
const LOG = 'a'.repeat(32);
const chain = (seq: number, prev = GENESIS_HASH) => ({ seq, ts: '2025-01-02T03:04:05.678Z', log: LOG, prev });

describe('canonical JSON', () => {
  it('sorts keys by UTF-16 code units at every level, omits undefined members, and has no white space', () => {
    expect(canonicalJson({ b: 1, a: { z: [3, { y: null, x: true }], é: 'e', Z: 'upper' }, c: undefined })).toBe(
      '{"a":{"Z":"upper","z":[3,{"x":true,"y":null}],"é":"e"},"b":1}',
    );
  });

  it('writes strings as JSON.stringify does and numbers as plain integers', () => {
    expect(canonicalJson({ s: 'q"\\\n\t\u0001\u007f€😀' })).toBe('{"s":"q\\"\\\\\\n\\t\\u0001\u007f€😀"}');
    expect(canonicalJson(-0)).toBe('0');
    expect(canonicalJson(Number.MAX_SAFE_INTEGER)).toBe('9007199254740991');
  });

  it('refuses what has no canonical form: fractions, unsafe integers, bigints, functions', () => {
    for (const bad of [1.5, 2 ** 53, Number.NaN, 1n, () => 1]) expect(() => canonicalJson({ v: bad })).toThrow(CanonicalError);
  });
});

describe('cutString', () => {
  it('keeps a string of exactly the cap and cuts one byte more, saying how many bytes went', () => {
    expect(cutString('x'.repeat(100), 100)).toBe('x'.repeat(100));
    const cut = cutString('x'.repeat(101), 100);
    expect(encodedLength(cut)).toBeLessThanOrEqual(100);
    const m = /^(x*)…\[cut (\d+) bytes\]$/.exec(cut)!;
    expect(m[1]!.length + Number(m[2])).toBe(101);
  });

  it('counts encoded bytes (a control character costs six) and cuts on code point boundaries', () => {
    const controls = '\u0001'.repeat(100);
    const cut = cutString(controls, 120);
    expect(encodedLength(cut)).toBeLessThanOrEqual(120);
    const kept = cut.slice(0, cut.indexOf('…'));
    expect(kept).toBe('\u0001'.repeat(kept.length));
    expect(cut.slice(kept.length)).toBe(`…[cut ${100 - kept.length} bytes]`);
    const emoji = cutString('😀'.repeat(50), 60);
    expect(emoji.isWellFormed()).toBe(true);
    const m = /^((?:😀)*)…\[cut (\d+) bytes\]$/u.exec(emoji)!;
    expect(Buffer.byteLength(m[1]!) + Number(m[2])).toBe(200);
  });

  it('a shared budget bounds many strings together', () => {
    const b = new Budget(1000);
    const kept = Array.from({ length: 50 }, () => b.take('y'.repeat(200), 500));
    const total = kept.reduce((n, s) => n + encodedLength(s), 0);
    // Every string past the budget is reduced to its marker; the markers are the only overshoot.
    expect(total).toBeLessThanOrEqual(1000 + 50 * 20);
    expect(kept.at(-1)).toBe('…[cut 200 bytes]');
    expect(b.spent).toBe(true);
  });
});

describe('the chain hash', () => {
  it('is SHA-256 over prev (64 hex characters) then the body, and the line carries it last', () => {
    const entry: Entry = { kind: 'stop', reason: 'shutdown' };
    const { line, hash } = encodeRecord(entry, chain(7, 'f'.repeat(64)));
    const body = `${line.slice(0, line.indexOf(',"hash":'))}}`;
    expect(body).toBe(`{"kind":"stop","log":"${LOG}","prev":"${'f'.repeat(64)}","reason":"shutdown","seq":7,"ts":"2025-01-02T03:04:05.678Z"}`);
    expect(line).toBe(`${body.slice(0, -1)},"hash":"${hash}"}\n`);
    expect(hash).toBe(chainHash('f'.repeat(64), body));
  });

  it('parseLine accepts the line and refuses a changed byte, white space, a duplicate key and a missing hash', () => {
    const { line } = encodeRecord({ kind: 'stop', reason: 'shutdown' }, chain(1));
    const text = line.trimEnd();
    const ok = parseLine(text);
    expect(ok.ok && ok.record.seq === 1 && ok.record.kind === 'stop').toBe(true);

    expect(parseLine(text.replace('shutdown', 'shutdowN'))).toEqual({
      ok: false,
      reason: 'hash does not match the record: its bytes were changed',
      seq: 1,
      log: LOG,
    });
    // Re-hashed after an edit that a lenient reader would not notice: still refused, as not canonical.
    const rehash = (body: string) => `${body.slice(0, -1)},"hash":"${chainHash(GENESIS_HASH, body)}"}`;
    const body = `${text.slice(0, text.indexOf(',"hash":'))}}`;
    for (const variant of [body.replace('"kind":', ' "kind":'), body.replace('{"kind":"stop",', '{"kind":"stop","kind":"exit",')]) {
      const r = parseLine(rehash(variant));
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.reason).toMatch(/canonical/);
    }
    expect(parseLine(body).ok).toBe(false);
    expect(parseLine('').ok).toBe(false);
  });
});

describe('the fast encoder', () => {
  it('writes exactly the canonical form for every kind of record, whatever order the wire used', () => {
    const reversed = (o: Record<string, unknown>) => Object.fromEntries(Object.entries(o).reverse());
    const entries: Entry[] = [
      { kind: 'header', format: 1, file: 3, reason: 'rotate', pid: 7, version: 'v' },
      { kind: 'exit', processId: 'p', pid: 9, exitCode: -1, signal: 'SIGKILL', killedBy: 'client', ms: 5, stdoutBytes: 1, stderrBytes: 0 },
      { kind: 'stop', reason: 'shutdown' },
    ];
    const samples: Record<string, [unknown, unknown]> = {
      'process.spawn': [
        reversed({ id: 'p', command: 'c', args: ['a'], cwd: '/', env: { Z: '1', A: '2' }, wantPid: true }),
        { success: true, pid: 3 },
      ],
      'process.stdin': [reversed({ id: 'p', data: 'AAAA', offset: 2 ** 60, eof: true }), { success: true, applied: 3, duplicate: true }],
      'process.killAndWait': [
        { id: 'p', timeoutMs: 'x' },
        { found: true, died: true, escalated: true },
      ],
      'files.read': [
        { path: '/x', maxBytes: 5 },
        { content: 'abc', exists: true },
      ],
      'git.worktree_create': [reversed({ worktreePath: '/r/w', branchName: 'b', baseRepo: '/r' }), { success: false, error: 'e', errorCode: 'c' }],
      'process.list': [{}, { processes: [1, 2] }],
      'nosuch.method': [{ a: 1 }, {}],
    };
    for (const [method, [params, result]] of Object.entries(samples)) {
      for (const authenticated of [true, false]) {
        entries.push(
          requestEntry(
            facts({
              method,
              params,
              authenticated,
              reply: { result },
              caller: Object.assign(Object.create(null), { runId: 'r', identity: 'i', driver: 'd' }),
              peer: { uid: 1, startTime: '5', pid: 2, kind: 'unix', comm: 'x', pids: [2, 3] },
            }),
            new Scrubber(['tok-0123456789']),
          ),
        );
      }
    }
    entries.push(
      requestEntry(
        facts({ reply: { error: { code: -32602, message: 'Invalid params' } }, peer: { origin: null, port: 5, address: '::1', kind: 'ws' } }),
        none,
      ),
    );
    for (const [i, e] of entries.entries()) {
      const c = { ...chain(i + 1), ...(i % 2 ? { lost: 2, refused: 1 } : {}) };
      const { line } = encodeRecord(e, c);
      const parsed = parseLine(line.trimEnd());
      expect(parsed.ok, `${e.kind} ${(e as { method?: string }).method ?? ''}: ${parsed.ok ? '' : parsed.reason}`).toBe(true);
      expect(line).toBe(`${canonicalJson({ ...e, ...c }).slice(0, -1)},"hash":"${chainHash(c.prev, canonicalJson({ ...e, ...c }))}"}\n`);
    }
  });
});

describe('redaction', () => {
  it('has a rule for every method the daemon serves, and for session.identify', () => {
    const missing = [...SERVED_METHODS, 'session.identify'].filter((m) => REDACTION[m] === undefined);
    expect(missing, `add these methods to REDACTION in src/audit/record.ts`).toEqual([]);
  });

  it('process.spawn keeps id, command, args, cwd, env keys and wantPid, never env values', () => {
    const params = {
      id: 'p1',
      Command: 'sh', // keys match case-insensitively, as the handler reads them
      args: ['-c', 'echo hi', null],
      cwd: '~/work',
      env: { SECRET_TOKEN: 'value-that-must-not-appear', PATH: '/bin' },
      wantPid: true,
      unknownMember: 'ignored',
    };
    const kept = redactParams('process.spawn', params, undefined, none);
    expect(kept).toEqual({ id: 'p1', command: 'sh', args: ['-c', 'echo hi', ''], cwd: '~/work', envKeys: ['PATH', 'SECRET_TOKEN'], wantPid: true });
    expect(JSON.stringify(kept)).not.toContain('value-that-must-not-appear');
  });

  it('process.stdin keeps the byte count and offset, never the data, for base64 text and for bytes', () => {
    const data = Buffer.from('top secret stdin').toString('base64');
    expect(redactParams('process.stdin', { id: 'p', data, offset: 4, eof: true }, undefined, none)).toEqual({
      id: 'p',
      dataBytes: 16,
      offset: 4,
      eof: true,
    });
    expect(redactParams('process.stdin', { id: 'p', data: new Uint8Array(5) }, undefined, none)).toEqual({ id: 'p', dataBytes: 5 });
  });

  it('an offset past 2^53 is kept as its decimal text', () => {
    const text = '{"params":{"id":"p","offset":18446744073709551615}}';
    const literals = new NumberLiterals(text, 'params');
    const kept = redactParams('process.stdin', JSON.parse(text).params, literals, none);
    expect(kept).toEqual({ id: 'p', offset: '18446744073709552000' });
  });

  it('mistyped params keep what binds and name what did not', () => {
    expect(redactParams('process.spawn', { id: 'p', command: 5, args: ['x'] }, undefined, none)).toEqual({
      id: 'p',
      args: ['x'],
      invalid: ['command'],
    });
    expect(redactParams('process.kill', 'nonsense', undefined, none)).toEqual({ invalid: ['params'] });
    expect(redactParams('process.kill', null, undefined, none)).toEqual({});
  });

  it('files.* and git.* keep their paths; server.* keep nothing; unknown methods keep nothing at all', () => {
    expect(redactParams('files.read', { path: '/etc/passwd', maxBytes: 10 }, undefined, none)).toEqual({ path: '/etc/passwd', maxBytes: 10 });
    expect(
      redactParams('git.worktree_create', { baseRepo: '/r', branchName: 'b', worktreePath: '/r/.claude/worktrees/b', path: 'x' }, undefined, none),
    ).toEqual({
      baseRepo: '/r',
      branchName: 'b',
      worktreePath: '/r/.claude/worktrees/b',
    });
    expect(redactParams('server.ping', { anything: 'at all' }, undefined, none)).toEqual({});
    expect(redactParams('nosuch.method', { password: 'hunter2' }, undefined, none)).toBeNull();
  });

  it('results keep sizes and outcomes, never contents', () => {
    expect(redactResult('files.read', { content: 'secret file body', exists: true }, none)).toEqual({ contentBytes: 16, exists: true });
    expect(redactResult('git.worktree_create', { success: false, error: 'not a git repository', errorCode: 'not_a_repo' }, none)).toEqual({
      success: false,
      error: 'not a git repository',
      errorCode: 'not_a_repo',
    });
    expect(redactResult('process.spawn', { success: true, pid: 42, startTime: 1.5 }, none)).toEqual({ pid: 42 });
    expect(redactResult('server.capabilities', { version: 'x' }, none)).toBeUndefined();
  });

  it('args: each cut at MAX_STRING_BYTES, at most MAX_ARGS of them, all within the params budget', () => {
    const exact = 'a'.repeat(MAX_STRING_BYTES);
    expect((redactParams('process.spawn', { id: 'p', command: 'c', args: [exact] }, undefined, none)!.args as string[])[0]).toBe(exact);
    const over = (redactParams('process.spawn', { id: 'p', command: 'c', args: [`${exact}b`] }, undefined, none)!.args as string[])[0]!;
    expect(over).toMatch(/…\[cut \d+ bytes\]$/);
    expect(encodedLength(over)).toBeLessThanOrEqual(MAX_STRING_BYTES);

    const many = Array.from({ length: MAX_ARGS + 5 }, (_, i) => `arg${i}`);
    const kept = redactParams('process.spawn', { id: 'p', command: 'c', args: many }, undefined, none)!.args as string[];
    expect(kept.length).toBe(MAX_ARGS + 1);
    expect(kept.at(-1)).toBe('…[+5 args]');
    const atLimit = redactParams('process.spawn', { id: 'p', command: 'c', args: many.slice(0, MAX_ARGS) }, undefined, none)!.args as string[];
    expect(atLimit).toEqual(many.slice(0, MAX_ARGS));

    const env = Object.fromEntries(Array.from({ length: MAX_ENV_KEYS + 1 }, (_, i) => [`K${String(i).padStart(4, '0')}`, 'v']));
    const keys = redactParams('process.spawn', { id: 'p', command: 'c', env }, undefined, none)!.envKeys as string[];
    expect(keys.length).toBe(MAX_ENV_KEYS + 1);
    expect(keys.at(-1)).toBe('…[+1 keys]');

    const huge = Array.from({ length: MAX_ARGS }, () => 'z'.repeat(MAX_STRING_BYTES));
    const all = redactParams('process.spawn', { id: 'p', command: 'c', cwd: 'd', args: huge }, undefined, none)!;
    const args = all.args as string[];
    const strings = args.reduce((n, s) => n + encodedLength(s) + 3, 0);
    // The budget stops the list; one marker counts what was not kept.
    expect(strings).toBeLessThanOrEqual(PARAMS_BUDGET_BYTES + 64);
    expect(args.at(-1)).toMatch(/^…\[\+\d+ args\]$/);
    expect(Number(/\d+/.exec(args.at(-1)!)![0]) + args.length - 1).toBe(MAX_ARGS);
  });
});

function facts(over: Partial<RequestFacts> = {}): RequestFacts {
  return {
    conn: 3,
    transport: 'unix/ndjson',
    peer: { kind: 'unix', pid: 10, uid: 1000, comm: 'node', startTime: '123' },
    caller: Object.assign(Object.create(null), { driver: 'ci', identity: 'alice@example.com' }),
    authenticated: true,
    method: 'process.spawn',
    idJson: '1',
    params: { id: 'p1', command: 'sh', args: ['-c', 'echo'] },
    literals: undefined,
    reply: { result: { success: true } },
    startedAt: 100.2,
    endedAt: 103.9,
    ...over,
  };
}

describe('request records', () => {
  it('carry conn, transport, peer, caller, method, id, params, outcome and whole milliseconds', () => {
    const e = requestEntry(facts(), none);
    expect(e).toMatchObject({
      kind: 'request',
      conn: 3,
      transport: 'unix/ndjson',
      caller: { driver: 'ci', identity: 'alice@example.com' },
      authenticated: true,
      method: 'process.spawn',
      id: '1',
      params: { id: 'p1', command: 'sh', args: ['-c', 'echo'] },
      outcome: 'ok',
      ms: 3,
    });
    const failed = requestEntry(facts({ reply: { error: { code: -32602, message: 'Command is required' } } }), none);
    expect(failed.outcome).toEqual({ code: -32602, message: 'Command is required' });
  });

  it('an unauthenticated request keeps what the daemon saw, not what the client claimed', () => {
    const e = requestEntry(
      facts({ authenticated: false, reply: { error: { code: -32001, message: 'Unauthorized: invalid or missing auth token' } } }),
      none,
    );
    expect(e.caller).toBeNull();
    expect(e.params).toBeNull();
    expect(e.method).toBe('process.spawn');
  });

  it('the token is scrubbed from every recorded string, caller included', () => {
    const token = 'tok-0123456789abcdef';
    const e = requestEntry(
      facts({
        params: { id: 'p1', command: 'curl', args: ['-H', `Authorization: ${token}`] },
        caller: Object.assign(Object.create(null), { driver: 'ci', identity: token }),
        idJson: JSON.stringify(token),
      }),
      new Scrubber([token]),
    );
    expect(JSON.stringify(e)).not.toContain(token);
    expect((e.params!.args as string[])[1]).toBe('Authorization: [token]');
  });

  it('wire strings outside params are capped: method and id at MAX_NAME_BYTES, a message at MAX_MESSAGE_BYTES', () => {
    const e = requestEntry(
      facts({
        method: `x.${'m'.repeat(1000)}`,
        idJson: JSON.stringify('i'.repeat(1000)),
        reply: { error: { code: -32603, message: 'e'.repeat(5000) } },
      }),
      none,
    );
    expect(encodedLength(e.method)).toBeLessThanOrEqual(MAX_NAME_BYTES);
    expect(encodedLength(e.id)).toBeLessThanOrEqual(MAX_NAME_BYTES);
    expect(encodedLength((e.outcome as { message: string }).message)).toBeLessThanOrEqual(MAX_MESSAGE_BYTES);
  });

  it('the largest record the caps allow fits MAX_RECORD_BYTES as a line, without the safety net', () => {
    const caller = Object.assign(
      Object.create(null),
      Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`f${i}`.padEnd(32, 'x'), '"'.repeat(256)])),
      { driver: '"'.repeat(256), identity: '"'.repeat(256) },
    );
    const e = requestEntry(
      facts({
        caller,
        method: 'process.spawn',
        idJson: JSON.stringify('\u0001'.repeat(1000)),
        params: {
          id: '\u0001'.repeat(1000),
          command: '\u0001'.repeat(10_000),
          cwd: '\u0001'.repeat(10_000),
          args: Array.from({ length: 1000 }, () => '\u0001'.repeat(10_000)),
          env: Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`${'\u0001'.repeat(300)}${i}`, 'v'])),
        },
        reply: { error: { code: -32603, message: '\u0001'.repeat(10_000) } },
      }),
      none,
    );
    expect(e.params).not.toHaveProperty('cut');
    const { line } = encodeRecord(e, { ...chain(Number.MAX_SAFE_INTEGER), lost: Number.MAX_SAFE_INTEGER, refused: Number.MAX_SAFE_INTEGER });
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
  });

  it('a success with large params and a large result shares one budget and fits too', () => {
    const big = '\u0001'.repeat(10_000);
    const e = requestEntry(
      facts({
        method: 'git.worktree_create',
        params: { baseRepo: big, branchName: big, worktreePath: big, sourceBranch: big },
        reply: { result: { success: false, path: big, sourceBranch: big, error: big, errorCode: big } },
      }),
      none,
    );
    expect(e.params).not.toHaveProperty('cut');
    expect(e.result).toBeDefined();
    expect(Buffer.byteLength(encodeRecord(e, chain(1)).line)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
  });

  it('the safety net replaces params and result by their size when a record would not fit', () => {
    const e: RequestEntry = { ...requestEntry(facts(), none), params: { blob: 'b'.repeat(MAX_RECORD_BYTES) }, result: { x: 1 } };
    const { line } = encodeRecord(e, chain(1));
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(MAX_RECORD_BYTES);
    const parsed = parseLine(line.trimEnd());
    expect(parsed.ok).toBe(true);
    if (parsed.ok && parsed.record.kind === 'request') {
      expect(parsed.record.params).toEqual({ cut: Buffer.byteLength(JSON.stringify({ params: e.params, result: e.result })) });
      expect(parsed.record.result).toBeUndefined();
      expect(parsed.record.method).toBe('process.spawn');
    }
  });
});

describe('the request path and the writer thread', () => {
  // The request path makes a record's frame text (requestText); the writer thread adds prev, seq and the hash
  // (LineAssembler). Together they must make exactly the line encodeRecord makes of the same record.
  const token = 'tok-0123456789abcdef';
  const scrubber = new Scrubber([token]);
  const callers = [
    undefined,
    Object.freeze(Object.assign(Object.create(null), { driver: 'ci', identity: 'alice@example.com' })),
    Object.freeze(Object.assign(Object.create(null), { runId: `run ${token}`, identity: 'bob', driver: 'd' })),
  ];
  const samples: Partial<RequestFacts>[] = [
    { method: 'server.ping', params: undefined, reply: { result: { pong: true } } },
    { method: 'session.identify', params: { caller: { driver: 'x', identity: 'y' } }, reply: { result: { ok: true } } },
    {
      method: 'process.spawn',
      params: { id: 'p1', command: 'sh', args: ['-c', `echo ${token}`], env: { SECRET: 'v', A: 'b' } },
      reply: { result: { success: true, pid: 7 } },
    },
    { method: 'process.stdin', params: { id: 'p1', data: 'aGVsbG8=', offset: 5 }, reply: { result: { success: true, applied: 10 } } },
    { method: 'process.stdin', params: { id: 'p1', data: 'x', offset: 2 ** 60 }, reply: { error: { code: -32602, message: 'Invalid base64 data' } } },
    { method: 'files.read', params: { path: '/tmp/ré😀', maxBytes: 9 }, reply: { result: { exists: true, content: 'secret contents' } } },
    { method: 'process.list', params: {}, reply: { result: { processes: [{ id: 'a' }] } } },
    { method: 'nosuch.method', params: { a: 1 }, reply: { error: { code: -32601, message: 'Unknown namespace: nosuch' } } },
    { method: '\u0001é"', idJson: JSON.stringify('id\n"x"'), reply: { error: { code: -32601, message: 'Invalid method format: \u0001é"' } } },
    {
      method: 'git.worktree_create',
      params: { baseRepo: 'x'.repeat(9000), branchName: 'b'.repeat(400) },
      reply: { result: { success: true, path: 'p'.repeat(9000) } },
    },
    {
      method: 'process.spawn',
      idJson: '{"a":[1,2]}',
      params: { id: 'p', command: 'c', args: Array.from({ length: 300 }, () => 'é'.repeat(3000)) },
      reply: { result: { success: true } },
    },
  ];
  const peers: RequestFacts['peer'][] = [
    { kind: 'unix', pid: 10, uid: 1000, comm: 'node', startTime: '123' },
    { kind: 'unix', pid: null, uid: null, unknown: 'the other end is this daemon' },
    { kind: 'ws', address: '::1', port: 5, origin: 'https://app.example' },
  ];
  const gaps: Omit<FrameChain, 'log' | 'ts'>[] = [{}, { lost: 3 }, { refused: 2 }, { lost: 1, refused: 9_007_199_254_740_991 }];

  it('requestText equals the reference path, and the assembled line equals encodeRecord, for every sample', () => {
    const assembler = new LineAssembler();
    let prev = GENESIS_HASH;
    let seq = 0;
    let n = 0;
    for (const sample of samples) {
      for (const authenticated of [true, false]) {
        for (const caller of callers) {
          const peer = peers[n % peers.length]!;
          const f = facts({ ...sample, authenticated, caller, peer, transport: n % 2 ? 'ws/msgpack' : 'unix/ndjson' });
          const fc: FrameChain = { log: LOG, ts: '2025-01-02T03:04:05.678Z', ...gaps[n % gaps.length] };
          n++;
          const text = requestText(f, scrubber, canonicalJson(peer), String(f.conn), fc);
          expect(text).toBe(frameText(requestParts(requestEntry(f, scrubber)), fc));
          expect(text).not.toContain(token);
          // The frame as the ring holds it: somewhere inside a larger buffer.
          const frame = Buffer.concat([Buffer.from('junk\0'), Buffer.from(text), Buffer.from('\0junk')]);
          seq++;
          const a = assembler.assemble(frame, 5, frame.length - 5, seq, prev);
          const want = encodeRecord(requestEntry(f, scrubber), { ...fc, seq, prev });
          expect(a.slab.toString('utf8', a.at, a.at + a.bytes)).toBe(want.line);
          expect(a.hash).toBe(want.hash);
          expect(a.bytes).toBeLessThanOrEqual(MAX_RECORD_BYTES);
          prev = a.hash;
        }
      }
    }
  });

  it('exits, headers and stops too; consecutive lines lie next to each other in a slab, and a new slab starts when one is full', () => {
    const entries: Entry[] = [
      { kind: 'exit', processId: 'p', pid: 9, exitCode: -1, signal: 'SIGKILL', killedBy: 'client', ms: 5, stdoutBytes: 1, stderrBytes: 0 },
      { kind: 'exit', processId: 'é😀', pid: 1, exitCode: 0, signal: null, killedBy: null, ms: 0, stdoutBytes: 2 ** 40, stderrBytes: 7 },
      { kind: 'header', format: 1, file: 3, reason: 'rotate', pid: 7, version: 'v' },
      { kind: 'stop', reason: 'shutdown' },
    ];
    const assembler = new LineAssembler();
    let prev = GENESIS_HASH;
    let last: { slab: Buffer; at: number; bytes: number } | undefined;
    let slabs = 0;
    // Enough records to fill a slab and start the next.
    const count = Math.ceil(LINE_SLAB_BYTES / 300) + 10;
    for (let seq = 1; seq <= count; seq++) {
      const e = entries[seq % entries.length]!;
      const fc: FrameChain = { log: LOG, ts: '2025-01-02T03:04:05.678Z', ...gaps[seq % gaps.length] };
      const frame = Buffer.from(frameText(entryParts(e), fc));
      const a = assembler.assemble(frame, 0, frame.length, seq, prev);
      const want = encodeRecord(e, { ...fc, seq, prev });
      expect(a.slab.toString('utf8', a.at, a.at + a.bytes)).toBe(want.line);
      if (last === undefined || last.slab !== a.slab) slabs++;
      else expect(a.at).toBe(last.at + last.bytes);
      last = a;
      prev = a.hash;
    }
    expect(slabs).toBe(2);
  });

  it('refuses a frame that is not A NUL B NUL C', () => {
    const assembler = new LineAssembler();
    for (const bad of [',"a":1', ',"a":1\0', '"a":1\0\0']) {
      const b = Buffer.from(bad);
      expect(() => assembler.assemble(b, 0, b.length, 1, GENESIS_HASH)).toThrow(/not A NUL B NUL C/);
    }
  });
});
