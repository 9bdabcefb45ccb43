/**
 * The recorder with its real writer thread (the built dist/src/audit/thread.js) on a real Unix socket: records reach
 * the file in the order they were made, with the peer the kernel names; the queue limit per -audit-full (block
 * refuses, drop counts, and the next record says how many); records wait on the request side when the ring is full
 * and still arrive in order; a log the thread cannot open fails the start with the reason; close writes a stop record.
 * What is recorded of each method, and that no secret is, is the daemon test's (daemon.test.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { type AuditConnection, AuditRecorder, type RecorderOptions, type RequestOutcome } from '../../src/audit/recorder.js';
import { MIN_RING_BYTES } from '../../src/audit/ring.js';
import { verifyLog } from '../../src/audit/verify.js';
import { AuditSetupError } from '../../src/audit/writer.js';
import { silentLogger } from '../../src/log/logger.js';
import { auditSandbox, linesOf, THREAD_URL, until } from './helpers.js';

const sb = auditSandbox();
const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(o: Partial<RecorderOptions> = {}) {
  const dir = sb.dir();
  const file = path.join(dir, 'audit.jsonl');
  const audit = await AuditRecorder.open({
    path: file,
    maxBytes: 1 << 20,
    keep: 2,
    full: 'block',
    version: 't',
    log: silentLogger,
    token: 'tok-secret-0123456789abcdef',
    threadUrl: THREAD_URL,
    ...o,
  });
  cleanups.push(() => audit.close());
  const conns: AuditConnection[] = [];
  const sock = path.join(dir, 's.sock');
  const srv = net.createServer((s) => conns.push(audit.connection(conns.length + 1, { kind: 'unix', socket: s })));
  await new Promise<void>((r) => srv.listen(sock, r));
  cleanups.push(() => void srv.close());
  const client: ChildProcess = spawn(process.execPath, ['-e', `require('net').connect(${JSON.stringify(sock)}); setInterval(() => {}, 1000)`], {
    stdio: 'ignore',
  });
  cleanups.push(() => void client.kill('SIGKILL'));
  await until(() => conns.length === 1 && !conns[0]!.peerPending, 'the connection and its peer');
  return { file, audit, conn: conns[0]!, client };
}

const ping = (id: number): RequestOutcome => ({
  wire: 'json',
  authenticated: true,
  method: 'server.ping',
  idJson: String(id),
  params: undefined,
  literals: undefined,
  caller: undefined,
  reply: { result: { pong: true } },
});

/** Admits and records a ping; false when the admission was refused. */
function record(conn: AuditConnection, id: number): boolean {
  const a = conn.admit('server.ping');
  if (!a.ok) return false;
  conn.record(a, ping(id));
  return true;
}

const onDisk = async (audit: AuditRecorder) => until(() => audit.stats().queueDepth === 0, 'the records on disk');

describe('AuditRecorder', () => {
  it('writes the records in the order they were made, requests with their peer, exits between them', async () => {
    const { file, audit, conn, client } = await setup();
    for (let i = 1; i <= 100; i++) {
      record(conn, i);
      if (i % 10 === 0)
        audit.exit({ processId: `p${i}`, pid: i, exitCode: 0, signal: null, killedBy: null, ms: 1.9, stdoutBytes: i, stderrBytes: 0 });
    }
    await onDisk(audit);
    const lines = linesOf(file);
    expect(lines.length).toBe(1 + 110);
    expect(lines.slice(1, 12).map((l) => l.id ?? l.processId)).toEqual(['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', 'p10']);
    expect(lines[1]).toMatchObject({
      kind: 'request',
      conn: 1,
      transport: 'unix/ndjson',
      peer: { kind: 'unix', pid: client.pid, uid: process.getuid!(), comm: 'node', startTime: expect.any(String) },
      method: 'server.ping',
      params: {},
      outcome: 'ok',
    });
    expect(lines[11]).toMatchObject({ kind: 'exit', processId: 'p10', pid: 10, ms: 1, stdoutBytes: 10 });
    expect(audit.stats()).toMatchObject({ records: 111, dropped: 0, refused: 0, reserved: 0, queueDepth: 0, head: { seq: 111 } });
    expect((await verifyLog(file)).findings).toEqual([]);
  });

  it('an exit that comes before its spawn request is answered waits for the spawn record', async () => {
    const { file, audit, conn } = await setup();
    const spawn = conn.admit('process.spawn', { ID: 'early' });
    expect(spawn).toMatchObject({ ok: true, spawn: 'early' });
    audit.exit({ processId: 'early', pid: 77, exitCode: 0, signal: null, killedBy: null, ms: 1, stdoutBytes: 0, stderrBytes: 0 });
    audit.exit({ processId: 'other', pid: 78, exitCode: 0, signal: null, killedBy: null, ms: 1, stdoutBytes: 0, stderrBytes: 0 });
    record(conn, 1);
    if (spawn.ok)
      conn.record(spawn, { ...ping(2), method: 'process.spawn', params: { ID: 'early', command: 'true' }, reply: { result: { success: true } } });
    await onDisk(audit);
    expect(
      linesOf(file)
        .slice(1)
        .map((l) => l.processId ?? l.method),
    ).toEqual(['other', 'server.ping', 'process.spawn', 'early']);
  });

  it('-audit-full block: admission is refused at queueRecords places (server.shutdown excepted), and the next record counts the refusals', async () => {
    const { file, audit, conn } = await setup({ queueRecords: 2 });
    const a = conn.admit('server.ping');
    const b = conn.admit('server.ping');
    expect(a.ok && b.ok).toBe(true);
    expect(conn.admit('process.spawn')).toEqual({
      ok: false,
      reason: 'the audit queue is full (0 records waiting for the disk, 2 requests in progress): the disk is not keeping up',
    });
    expect(conn.admit('server.ping').ok).toBe(false);
    // A full audit never keeps the daemon from stopping.
    const stop = conn.admit('server.shutdown');
    expect(stop.ok).toBe(true);
    expect(audit.stats()).toMatchObject({ reserved: 3, refused: 2 });
    if (a.ok) conn.record(a, ping(1));
    if (b.ok) conn.record(b, ping(2));
    if (stop.ok) conn.record(stop, { ...ping(3), method: 'server.shutdown' });
    await onDisk(audit);
    expect(record(conn, 4)).toBe(true);
    await onDisk(audit);
    const lines = linesOf(file);
    expect(lines.map((l) => l.id ?? l.kind)).toEqual(['header', '1', '2', '3', '4']);
    expect(lines.map((l) => l.refused ?? 0)).toEqual([0, 2, 0, 0, 0]);
    expect((await verifyLog(file)).findings).toEqual([]);
  });

  it('-audit-full drop: records past queueRecords are dropped and counted, and the next record says how many', async () => {
    const { file, audit, conn } = await setup({ full: 'drop', queueRecords: 5 });
    // Made in one go: the writer thread takes at most a few of them meanwhile, so most find the queue full.
    for (let i = 1; i <= 200; i++) expect(record(conn, i)).toBe(true);
    const dropped = audit.stats().dropped;
    expect(dropped).toBeGreaterThan(0);
    await onDisk(audit);
    record(conn, 201);
    await onDisk(audit);
    const lines = linesOf(file);
    expect(lines.length - 1 + dropped).toBe(201);
    const carried = lines.reduce((n, l) => n + ((l.lost as number | undefined) ?? 0), 0);
    expect(carried).toBe(dropped);
    const report = await verifyLog(file);
    expect(report.findings.every((f) => f.kind === 'dropped')).toBe(true);
    expect(report.findings.length).toBeGreaterThan(0);
  });

  it('records that find the ring full wait on the request side and still arrive, in order', async () => {
    const { file, audit, conn } = await setup({ ringBytes: MIN_RING_BYTES, queueRecords: 10_000 });
    // Five times what the ring holds, made in one go.
    const count = Math.ceil((5 * MIN_RING_BYTES) / 300);
    for (let i = 1; i <= count; i++) record(conn, i);
    await onDisk(audit);
    const ids = linesOf(file)
      .slice(1)
      .map((l) => Number(l.id));
    expect(ids).toEqual(Array.from({ length: count }, (_, i) => i + 1));
    expect((await verifyLog(file)).findings).toEqual([]);
  });

  it('a log the writer thread cannot open fails the start with the reason', async () => {
    const dir = sb.dir();
    const target = path.join(dir, 'elsewhere');
    writeFileSync(target, '');
    symlinkSync(target, path.join(dir, 'audit.jsonl'));
    const open = AuditRecorder.open({
      path: path.join(dir, 'audit.jsonl'),
      maxBytes: 1 << 20,
      keep: 2,
      full: 'block',
      version: 't',
      log: silentLogger,
      token: 'x',
      threadUrl: THREAD_URL,
    });
    await expect(open).rejects.toThrow(AuditSetupError);
    await expect(open).rejects.toThrow(/is a symbolic link; the audit log is never written through a link/);
  });

  it('close() writes what was made and a stop record carrying the drops since the last record, then admits nothing', async () => {
    const { file, audit, conn } = await setup({ full: 'drop', queueRecords: 1 });
    for (let i = 1; i <= 200; i++) record(conn, i);
    const dropped = audit.stats().dropped;
    expect(dropped).toBeGreaterThan(0);
    await audit.close('test end');
    expect(conn.admit('server.ping')).toEqual({ ok: false, reason: 'the audit log is closed: the daemon is shutting down' });
    const lines = linesOf(file);
    const stop = lines.at(-1)!;
    expect(stop).toMatchObject({ kind: 'stop', reason: 'test end' });
    expect(lines.filter((l) => l.kind === 'request').length + dropped).toBe(200);
    expect(lines.reduce((n, l) => n + ((l.lost as number | undefined) ?? 0), 0)).toBe(dropped);
    expect((await verifyLog(file)).ok).toBe(false); // the drops are findings, each at its record
  });
});
