/**
 * The recorder as the RPC layer will drive it, on a real Unix socket with a real client process: who (the peer the
 * kernel names, the caller the client asserts, once per connection or per request), what (method, id, redacted
 * params), how it ended; no secret in the file; exits; and under -audit-full block, a refusal with its reason.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AuditConnection, AuditRecorder } from '../../src/audit/recorder.js';
import { verifyLog } from '../../src/audit/verify.js';
import { silentLogger } from '../../src/log/logger.js';
import { auditSandbox, linesOf, until } from './helpers.js';

const sb = auditSandbox();
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const TOKEN = 'tok-secret-0123456789abcdef';

async function setup(queueRecords?: number) {
  const dir = sb.dir();
  const file = path.join(dir, 'audit.jsonl');
  const audit = await AuditRecorder.open({
    path: file,
    maxBytes: 1 << 20,
    keep: 2,
    full: 'block',
    version: 't',
    log: silentLogger,
    token: TOKEN,
    queueRecords,
  });
  cleanups.push(() => audit.close());
  const conns: AuditConnection[] = [];
  const sock = path.join(dir, 's.sock');
  const srv = net.createServer((s) => conns.push(audit.unixConnection(conns.length + 1, s)));
  await new Promise<void>((r) => srv.listen(sock, r));
  cleanups.push(() => void srv.close());
  const client: ChildProcess = spawn(process.execPath, ['-e', `require('net').connect(${JSON.stringify(sock)}); setInterval(() => {}, 1000)`], {
    stdio: 'ignore',
  });
  cleanups.push(() => void client.kill('SIGKILL'));
  await until(() => conns.length === 1, 'the connection');
  return { file, audit, conn: conns[0]!, client };
}

function ok(result: unknown) {
  return { result };
}

describe('AuditRecorder', () => {
  it('records who asked for what and how it ended, and nothing secret', async () => {
    const { file, audit, conn, client } = await setup();
    const run = (o: Partial<Parameters<AuditConnection['record']>[1]>) => {
      const a = conn.admit(o.method ?? 'server.ping');
      if (!a.ok) throw new Error(a.reason);
      conn.record(a, {
        transport: 'unix/ndjson',
        authenticated: true,
        method: 'server.ping',
        idJson: '1',
        params: undefined,
        literals: undefined,
        caller: undefined,
        reply: ok({ pong: true }),
        ...o,
      });
    };
    // Before identify: no caller. An unauthenticated request: its claims are not recorded.
    run({ method: 'server.ping', idJson: '1' });
    run({
      authenticated: false,
      method: 'process.spawn',
      idJson: '2',
      params: { id: 'x', command: 'rm', args: ['-rf', '/'] },
      caller: { driver: 'evil', identity: 'root' },
      reply: { error: { code: -32001, message: 'Unauthorized: invalid or missing auth token' } },
    });
    expect(conn.identify({ caller: { driver: 'windmill', identity: 'alice@example.com', runId: 'job_948f93' } })).toMatchObject({ ok: true });
    expect(conn.identify({ caller: { driver: 'x', identity: 'y' } })).toEqual({ ok: false, error: 'callerAlreadyDeclared' });
    const stdin = Buffer.from(`stdin bytes ${TOKEN}`).toString('base64');
    run({
      method: 'process.spawn',
      idJson: '3',
      params: { id: 'p1', command: 'sh', args: ['-c', `echo ${TOKEN}`], cwd: '/tmp', env: { API_KEY: 'env-value-secret' } },
      reply: ok({ success: true, pid: 4321, startTime: 1.5 }),
    });
    run({ method: 'process.stdin', idJson: '4', params: { id: 'p1', data: stdin, offset: 0 }, reply: ok({ success: true, applied: 39 }) });
    run({ method: 'files.read', idJson: '5', params: { path: '/etc/hostname' }, reply: ok({ content: 'file-content-secret', exists: true }) });
    // A request's own caller overrides the connection's for that request only.
    run({ method: 'server.ping', idJson: '6', caller: { driver: 'ci', identity: 'bob' } });
    audit.exit({ processId: 'p1', pid: 4321, exitCode: 0, signal: null, killedBy: null, ms: 12, stdoutBytes: 39, stderrBytes: 0 });
    await until(() => linesOf(file).length === 8, 'the records');

    const text = readFileSync(file, 'utf8');
    for (const secret of [TOKEN, 'env-value-secret', 'file-content-secret', 'stdin bytes', stdin]) expect(text, secret).not.toContain(secret);
    const records = linesOf(file);
    const peer = { kind: 'unix', pid: client.pid, uid: process.getuid!(), comm: 'node', startTime: expect.any(String) };
    expect(records.slice(1).map((r) => [r.kind, r.method ?? r.processId, r.caller ?? null])).toEqual([
      ['request', 'server.ping', null],
      ['request', 'process.spawn', null],
      ['request', 'process.spawn', { driver: 'windmill', identity: 'alice@example.com', runId: 'job_948f93' }],
      ['request', 'process.stdin', { driver: 'windmill', identity: 'alice@example.com', runId: 'job_948f93' }],
      ['request', 'files.read', { driver: 'windmill', identity: 'alice@example.com', runId: 'job_948f93' }],
      ['request', 'server.ping', { driver: 'ci', identity: 'bob' }],
      ['exit', 'p1', null],
    ]);
    expect(records[1]).toMatchObject({ conn: 1, transport: 'unix/ndjson', peer, authenticated: true, id: '1', params: {}, outcome: 'ok' });
    expect(records[2]).toMatchObject({
      authenticated: false,
      params: null,
      outcome: { code: -32001, message: 'Unauthorized: invalid or missing auth token' },
    });
    expect(records[3]).toMatchObject({
      params: { id: 'p1', command: 'sh', args: ['-c', 'echo [token]'], cwd: '/tmp', envKeys: ['API_KEY'] },
      result: { pid: 4321 },
    });
    expect(records[4]).toMatchObject({ params: { id: 'p1', dataBytes: 39, offset: 0 }, result: { applied: 39 } });
    expect(records[5]).toMatchObject({ params: { path: '/etc/hostname' }, result: { contentBytes: 19, exists: true } });
    expect(records[7]).toMatchObject({
      kind: 'exit',
      processId: 'p1',
      pid: 4321,
      exitCode: 0,
      signal: null,
      killedBy: null,
      ms: 12,
      stdoutBytes: 39,
      stderrBytes: 0,
    });
    expect((await verifyLog(file)).findings).toEqual([]);
  });

  it('validates a request caller: absent, valid, or the reason to refuse it', () => {
    expect(AuditConnection.requestCaller(undefined)).toEqual({ caller: undefined });
    expect(AuditConnection.requestCaller(null)).toEqual({ caller: undefined });
    expect(AuditConnection.requestCaller({ driver: 'd', identity: 'i' })).toMatchObject({ caller: { driver: 'd', identity: 'i' } });
    expect(AuditConnection.requestCaller({ driver: 'd' })).toEqual({ reason: 'identity is required' });
  });

  it('-audit-full block: admit() refuses once the queue is full, with the reason to send back', async () => {
    const { conn } = await setup(2);
    const a = conn.admit('server.ping');
    const b = conn.admit('server.ping');
    expect(a.ok && b.ok).toBe(true);
    expect(conn.admit('server.ping')).toEqual({ ok: false, reason: '0 records are waiting for the disk: the disk is not keeping up' });
    // A full audit never keeps the daemon from stopping.
    const stop = conn.admit('server.shutdown');
    expect(stop.ok).toBe(true);
    if (stop.ok) stop.ticket.cancel();
    if (a.ok) a.ticket.cancel();
    expect(conn.admit('server.ping').ok).toBe(true);
  });
});
