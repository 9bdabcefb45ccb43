/**
 * The audit trail through the real daemon (issue 14, "Done when"): a scripted session over all three wires (Unix
 * NDJSON, Unix MessagePack, WebSocket text and binary) produces exactly the expected records — method, caller, peer,
 * outcome — in each connection's order, with the exits of its processes; no secret (the token, stdin bytes, an
 * environment value, a file's contents) appears anywhere in the log; the log verifies with -audit-verify; /info and
 * the metrics give its head.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';
import { Daemon, until } from '../helpers/daemon.js';
import { freePort, get } from '../helpers/http.js';
import { b64, type RpcClient } from '../helpers/rpc.js';
import { MsgpackClient, WsClient } from '../helpers/wire-clients.js';

const STDIN_SECRET = 'stdin-secret-7f3a9c0e';
const ENV_SECRET = 'env-secret-value-5d1e44';
const FILE_SECRET = 'file-secret-contents-91b2aa';

type Rec = Record<string, any>;

describe('the audit trail of a real daemon', () => {
  let d: Daemon;
  let files: string;
  let secretFile: string;
  let metricsPort = 0;
  let records: Rec[] = [];
  let logText = '';
  const peers: { ws?: number } = {};
  let info: Rec = {};
  let metricsText = '';

  beforeAll(async () => {
    files = mkdtempSync(path.join(tmpdir(), 'claustrum-audit-files-'));
    secretFile = path.join(files, 'notes.txt');
    writeFileSync(secretFile, FILE_SECRET);
    metricsPort = await freePort();
    d = await Daemon.start({ args: ['-audit', 'on', '-ws-addr', '127.0.0.1:0', '-metrics-addr', `127.0.0.1:${metricsPort}`, '-no-login-path'] });
    const ws = await until(() => /websocket: serving (ws:\/\/127\.0\.0\.1:\d+\/rpc)/.exec(d.log()), 10_000, 'the websocket listener');
    const token = d.token;

    // ---- Unix socket, NDJSON ----
    const a: RpcClient = await d.client();
    const exitCat = a.waitExit('cat1');
    const exitTok = a.waitExit('tok');
    expect((await a.request('server.ping')).result).toEqual({ pong: true });
    expect((await a.request('session.identify', { caller: { driver: 'windmill', identity: 'alice@example.com', runId: 'job_1' } })).result).toEqual({
      ok: true,
    });
    expect((await a.request('session.identify', { caller: { driver: 'x', identity: 'y' } })).error?.message).toMatch(/^Caller already declared/);
    expect((await a.request('process.spawn', { id: 'cat1', command: 'cat', env: { SECRET_ENV: ENV_SECRET } })).result).toMatchObject({
      success: true,
    });
    expect((await a.request('process.stdin', { id: 'cat1', data: b64(STDIN_SECRET), offset: 0, eof: true })).result).toMatchObject({
      applied: STDIN_SECRET.length,
    });
    expect((await a.request('files.read', { path: secretFile })).result).toMatchObject({ content: FILE_SECRET });
    expect((await a.request('server.ping', undefined, { caller: { driver: 'ci', identity: 'bob' } })).result).toEqual({ pong: true });
    expect((await a.request('server.ping', undefined, { caller: { driver: 'ci' } })).error).toEqual({
      code: -32602,
      message: 'Invalid caller: identity is required',
    });
    expect((await a.request('server.ping', undefined, { auth: 'not-the-token', caller: { driver: 'evil', identity: 'mallory' } })).error?.code).toBe(
      -32001,
    );
    expect((await a.request('nosuch.method', { [ENV_SECRET]: FILE_SECRET })).error?.code).toBe(-32601);
    expect((await a.request('process.spawn', { id: 'tok', command: 'sh', args: ['-c', `exit 3 # ${token}`] })).result).toMatchObject({
      success: true,
    });
    expect(await exitCat).toMatchObject({ exitCode: 0 });
    expect(await exitTok).toMatchObject({ exitCode: 3 });
    expect(a.output('cat1').toString()).toBe(STDIN_SECRET);

    // ---- Unix socket, MessagePack ----
    const b = await MsgpackClient.connect(d.socket, token);
    const exitSleeper = b.waitExit('sleeper');
    expect((await b.request('server.ping', undefined, { caller: { driver: 'mp', identity: 'carol' } })).result).toEqual({ pong: true });
    expect((await b.request('process.spawn', { id: 'sleeper', command: 'sleep', args: ['30'] })).result).toMatchObject({ success: true });
    expect((await b.request('process.stdin', { id: 'sleeper', data: Buffer.from(STDIN_SECRET), offset: 0 })).result).toMatchObject({
      applied: STDIN_SECRET.length,
    });
    expect((await b.request('process.kill', { id: 'sleeper' })).result).toMatchObject({ success: true });
    expect(await exitSleeper).toMatchObject({ signal: 'SIGTERM' });

    // ---- WebSocket: a text message, then binary ----
    const c = await WsClient.connect(ws[1]!, token);
    peers.ws = (c.ws as unknown as { _socket: { localPort: number } })._socket.localPort;
    expect((await c.request('session.identify', { caller: { driver: 'console', identity: 'dave' } })).result).toEqual({ ok: true });
    c.binary = true;
    expect((await c.request('server.ping')).result).toEqual({ pong: true });
    expect((await c.request('files.stat', { path: secretFile })).result).toMatchObject({ exists: true, size: FILE_SECRET.length });

    info = JSON.parse((await get(metricsPort, '/info')).body) as Rec;
    metricsText = (await get(metricsPort, '/metrics')).body;
    c.ws.close();
    b.socket.destroy();
    // A graceful stop: the daemon writes what is queued and a stop record.
    d.proc.kill('SIGTERM');
    await d.exited;
    logText = readFileSync(path.join(d.dir, 'audit.jsonl'), 'utf8');
    records = logText
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Rec);
  });

  afterAll(async () => {
    await d?.stop();
    rmSync(files, { recursive: true, force: true });
  });

  const requestsOf = (transport: string) => records.filter((r) => r.kind === 'request' && r.transport.startsWith(transport));
  const who = (r: Rec) => (r.caller === null ? null : r.caller.identity);
  const how = (r: Rec) => (r.outcome === 'ok' ? 'ok' : r.outcome.code);

  it('records the NDJSON connection exactly: method, caller, outcome, in its order', () => {
    const rs = requestsOf('unix/ndjson');
    expect(rs.map((r) => [r.method, who(r), how(r)])).toEqual([
      ['server.ping', null, 'ok'],
      ['session.identify', 'alice@example.com', 'ok'],
      ['session.identify', 'alice@example.com', -32602],
      ['process.spawn', 'alice@example.com', 'ok'],
      ['process.stdin', 'alice@example.com', 'ok'],
      ['files.read', 'alice@example.com', 'ok'],
      ['server.ping', 'bob', 'ok'],
      ['server.ping', 'alice@example.com', -32602],
      ['server.ping', null, -32001],
      ['nosuch.method', 'alice@example.com', -32601],
      ['process.spawn', 'alice@example.com', 'ok'],
    ]);
    expect(new Set(rs.map((r) => r.conn)).size).toBe(1);
    for (const r of rs) expect(r.peer).toMatchObject({ kind: 'unix', pid: process.pid, uid: process.getuid!() });
    expect(rs[1]!.caller).toEqual({ driver: 'windmill', identity: 'alice@example.com', runId: 'job_1' });
    expect(rs[3]!.params).toEqual({ command: 'cat', envKeys: ['SECRET_ENV'], id: 'cat1' });
    expect(rs[4]!.params).toEqual({ dataBytes: STDIN_SECRET.length, eof: true, id: 'cat1', offset: 0 });
    expect(rs[4]!.result).toEqual({ applied: STDIN_SECRET.length });
    expect(rs[5]!.params).toEqual({ path: secretFile });
    expect(rs[5]!.result).toEqual({ contentBytes: FILE_SECRET.length, exists: true });
    expect(rs[7]!.outcome).toEqual({ code: -32602, message: 'Invalid caller: identity is required' });
    // What a stranger claims is not recorded: no caller, no params.
    expect(rs[8]).toMatchObject({ authenticated: false, caller: null, params: null });
    expect(rs[9]!.params).toBeNull();
    expect(rs[10]!.params).toEqual({ args: ['-c', 'exit 3 # [token]'], command: 'sh', id: 'tok' });
  });

  it('records the MessagePack connection and the WebSocket one, each message with its own wire', () => {
    const mp = requestsOf('unix/msgpack');
    expect(mp.map((r) => [r.method, who(r), how(r)])).toEqual([
      ['server.ping', 'carol', 'ok'],
      ['process.spawn', null, 'ok'],
      ['process.stdin', null, 'ok'],
      ['process.kill', null, 'ok'],
    ]);
    expect(mp[2]!.params).toEqual({ dataBytes: STDIN_SECRET.length, id: 'sleeper', offset: 0 });
    for (const r of mp) expect(r.peer).toMatchObject({ kind: 'unix', pid: process.pid });
    const ws = requestsOf('ws/');
    expect(ws.map((r) => [r.transport, r.method, who(r), how(r)])).toEqual([
      ['ws/json', 'session.identify', 'dave', 'ok'],
      ['ws/msgpack', 'server.ping', 'dave', 'ok'],
      ['ws/msgpack', 'files.stat', 'dave', 'ok'],
    ]);
    for (const r of ws) expect(r.peer).toEqual({ kind: 'ws', address: '127.0.0.1', port: peers.ws, origin: null });
    expect(ws[2]!.result).toEqual({ exists: true, isDir: false, size: FILE_SECRET.length });
    expect(new Set([...mp, ...ws, ...requestsOf('unix/ndjson')].map((r) => r.conn)).size).toBe(3);
  });

  it('records each exit after its spawn: code, signal, who killed it, bytes out', () => {
    const seqOf = (pred: (r: Rec) => boolean) => records.find(pred)?.seq as number;
    const exits = records.filter((r) => r.kind === 'exit');
    expect(exits.map((r) => r.processId).sort()).toEqual(['cat1', 'sleeper', 'tok']);
    const exit = (id: string) => exits.find((r) => r.processId === id)!;
    expect(exit('cat1')).toMatchObject({ exitCode: 0, signal: null, killedBy: null, stdoutBytes: STDIN_SECRET.length, stderrBytes: 0 });
    expect(exit('tok')).toMatchObject({ exitCode: 3, signal: null, killedBy: null, stdoutBytes: 0 });
    expect(exit('sleeper')).toMatchObject({ exitCode: -1, signal: 'SIGTERM', killedBy: 'client' });
    for (const id of ['cat1', 'tok', 'sleeper']) {
      expect(exit(id).pid).toBeGreaterThan(0);
      expect(exit(id).seq).toBeGreaterThan(seqOf((r) => r.method === 'process.spawn' && r.params?.id === id));
    }
  });

  it('keeps no secret anywhere in the log', () => {
    for (const secret of [d.token, STDIN_SECRET, b64(STDIN_SECRET), ENV_SECRET, FILE_SECRET]) expect(logText, secret).not.toContain(secret);
  });

  it('is one chain from the start header to the stop record, which -audit-verify confirms', async () => {
    expect(records[0]).toMatchObject({ kind: 'header', reason: 'start', file: 1, seq: 1 });
    expect(records.at(-1)).toMatchObject({ kind: 'stop', reason: 'shutdown' });
    expect(records.map((r) => r.seq)).toEqual(records.map((_, i) => i + 1));
    const r = await runCli(['-audit-verify', path.join(d.dir, 'audit.jsonl')]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^ok: ${records.length} records in 1 files, log ${records[0]!.log}; head seq ${records.length} `, 'm'));
  });

  it('/info and the metrics give the head as it stood, which the log contains', () => {
    const byHash = new Map(records.map((r) => [r.hash, r]));
    expect(info.audit).toMatchObject({ log: records[0]!.log, dropped: 0, refused: 0, failing: null });
    expect(byHash.get(info.audit.head)?.seq).toBe(info.audit.seq);
    expect(JSON.stringify(info)).not.toContain(d.dir);
    const m = /^claustrum_audit_head_info\{log="([0-9a-f]{32})",hash="([0-9a-f]{64})"\} (\d+)$/m.exec(metricsText);
    expect(m).not.toBeNull();
    expect(byHash.get(m![2]!)?.seq).toBe(Number(m![3]));
    expect(metricsText).toMatch(/^claustrum_audit_records_total \d+$/m);
    expect(metricsText).toMatch(/^claustrum_audit_dropped_total 0$/m);
  });
});
