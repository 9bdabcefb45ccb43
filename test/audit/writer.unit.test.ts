/**
 * The audit writer on real files: the chain, batching, restarts, rotation with the chain carried across, the file
 * and directory checks, the single-writer lock, crash recovery, and the queue's block and drop policies at their
 * exact boundary. (A real full disk: diskfull.test.ts.)
 */
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GENESIS_HASH, MAX_RECORD_BYTES } from '../../src/audit/record.js';
import { verifyLog } from '../../src/audit/verify.js';
import { AuditSetupError, AuditWriter, MIN_AUDIT_MAX_BYTES } from '../../src/audit/writer.js';
import { silentLogger } from '../../src/log/logger.js';
import { auditSandbox, linesOf, requestRecord } from './helpers.js';

const sb = auditSandbox();
const drained = (w: AuditWriter) => w.flushed();

describe('the chain on disk', () => {
  it('creates the file 0600 with a start header, then appends chained records and counts them', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file });
    for (let i = 0; i < 10; i++) w.append(requestRecord(i));
    await drained(w);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    const lines = linesOf(file);
    expect(lines[0]).toMatchObject({
      kind: 'header',
      seq: 1,
      file: 1,
      reason: 'start',
      format: 1,
      prev: GENESIS_HASH,
      version: 'test',
      pid: process.pid,
    });
    expect(lines.slice(1).map((l) => l.seq)).toEqual([2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    for (let i = 1; i < lines.length; i++) {
      expect(lines[i]!.prev).toBe(lines[i - 1]!.hash);
      expect(lines[i]!.log).toBe(lines[0]!.log);
    }
    const s = w.stats();
    expect(s).toMatchObject({ records: 11, bytes: statSync(file).size, queueDepth: 0 });
    expect(s.head).toEqual({ log: lines[0]!.log, seq: 11, hash: lines[10]!.hash });
    expect((await verifyLog(file)).ok).toBe(true);
  });

  it('writes the records of one turn of the event loop in one write', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file });
    const before = w.stats().writes;
    for (let i = 0; i < 100; i++) w.append(requestRecord(i));
    await drained(w);
    expect(w.stats().writes - before).toBe(1);
    expect(w.stats().records).toBe(101);
  });

  it('continues the chain across a restart: same log, next seq, a start header in the same file', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w1 = await sb.writer({ path: file });
    w1.append(requestRecord(1));
    await w1.close();
    sb.forget(w1);
    const w2 = await sb.writer({ path: file });
    w2.append(requestRecord(2));
    await drained(w2);
    const lines = linesOf(file);
    expect(lines.map((l) => `${l.seq}:${l.kind}`)).toEqual(['1:header', '2:request', '3:stop', '4:header', '5:request']);
    expect(lines[3]).toMatchObject({ reason: 'start', file: 1, log: lines[0]!.log, prev: lines[2]!.hash });
    const report = await verifyLog(file);
    expect(report.ok).toBe(true);
    expect(report.notes.join('\n')).toMatch(/started again at seq 4/);
  });
});

describe('rotation', () => {
  it('moves full files aside, starts each new file with a header that carries the chain, and keeps -keep files', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const keep = 3;
    const w = await sb.writer({ path: file, maxBytes: MIN_AUDIT_MAX_BYTES, keep });
    let i = 0;
    while (w.stats().rotations < 6) {
      for (let k = 0; k < 20; k++) w.append(requestRecord(i++));
      await drained(w);
    }
    const names = readdirSync(path.dirname(file)).sort();
    expect(names).toEqual(['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2', 'audit.jsonl.3', 'audit.jsonl.lock']);
    // Oldest to newest, each file's header links to the last record of the file before it.
    const files = [3, 2, 1, 0].map((n) => (n === 0 ? file : `${file}.${n}`));
    let lastHash: string | undefined;
    let lastFile: number | undefined;
    for (const f of files) {
      expect(statSync(f).size).toBeLessThanOrEqual(MIN_AUDIT_MAX_BYTES);
      const lines = linesOf(f);
      expect(lines[0]).toMatchObject({ kind: 'header', reason: 'rotate' });
      if (lastHash !== undefined) {
        expect(lines[0]!.prev).toBe(lastHash);
        expect(lines[0]!.file).toBe(lastFile! + 1);
      }
      lastHash = lines.at(-1)!.hash as string;
      lastFile = lines[0]!.file as number;
    }
    expect(lastFile).toBe(7);
    const report = await verifyLog(file);
    expect(report.findings).toEqual([]);
    expect(report.notes.join('\n')).toMatch(/begins at file 4/);
  });
});

describe('the file and its directory', () => {
  it('never writes through a symbolic link', async () => {
    const dir = sb.dir();
    writeFileSync(path.join(dir, 'target'), '');
    symlinkSync(path.join(dir, 'target'), path.join(dir, 'audit.jsonl'));
    await expect(AuditWriter.open({ path: path.join(dir, 'audit.jsonl'), version: 't', log: silentLogger })).rejects.toThrow(
      /audit\.jsonl is a symbolic link; the audit log is never written through a link/,
    );
    expect(readFileSync(path.join(dir, 'target'), 'utf8')).toBe('');
    expect(existsSync(path.join(dir, 'audit.jsonl.lock'))).toBe(false);
  });

  it("refuses a file that belongs to another user, and a directory others may write to; narrows a file's mode", async () => {
    const dir = sb.dir();
    const file = path.join(dir, 'audit.jsonl');
    const uid = process.getuid!();
    writeFileSync(file, '', { mode: 0o644 });
    const other = uid === 0 ? 65534 : undefined;
    if (other !== undefined) {
      chownSync(file, other, other);
      await expect(AuditWriter.open({ path: file, version: 't', log: silentLogger })).rejects.toThrow(`belongs to uid ${other}, not to this user`);
      chownSync(file, uid, uid);
    }
    const w = await sb.writer({ path: file });
    expect(statSync(file).mode & 0o777).toBe(0o600);
    await w.close();
    sb.forget(w);

    const open = path.join(sb.dir(), 'shared');
    mkdirSync(open);
    chmodSync(open, 0o777);
    await expect(AuditWriter.open({ path: path.join(open, 'audit.jsonl'), version: 't', log: silentLogger })).rejects.toThrow(
      /is writable by other users \(mode 777\)/,
    );
    chmodSync(open, 0o1777); // sticky, like /tmp: accepted
    const w2 = await sb.writer({ path: path.join(open, 'audit.jsonl') });
    expect(w2.stats().records).toBe(1);
  });

  it('allows one writer per log; a lock left by a process that is gone is taken over', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file });
    await expect(AuditWriter.open({ path: file, version: 't', log: silentLogger })).rejects.toThrow(
      `the audit log ${file} is in use by process ${process.pid}`,
    );
    await w.close();
    sb.forget(w);
    expect(existsSync(`${file}.lock`)).toBe(false);
    writeFileSync(`${file}.lock`, '999999999 12345\n');
    const w2 = await sb.writer({ path: file });
    expect(readFileSync(`${file}.lock`, 'utf8')).toMatch(new RegExp(`^${process.pid} \\d+\\n$`));
    expect(w2.stats().head.seq).toBe(3); // header, stop, and the new start header
  });

  it('rejects options out of range with the flag they come from', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    await expect(AuditWriter.open({ path: file, version: 't', log: silentLogger, maxBytes: MIN_AUDIT_MAX_BYTES - 1 })).rejects.toThrow(
      /-audit-max-bytes/,
    );
    await expect(AuditWriter.open({ path: file, version: 't', log: silentLogger, keep: 0 })).rejects.toThrow(/-audit-keep 0/);
    await expect(AuditWriter.open({ path: file, version: 't', log: silentLogger, keep: 1000 })).rejects.toThrow(/-audit-keep 1000/);
    const w = await sb.writer({ path: file, maxBytes: MIN_AUDIT_MAX_BYTES, keep: 999 });
    expect(w.maxBytes).toBe(2 * MAX_RECORD_BYTES);
  });
});

describe('recovery at start', () => {
  it('a file that ends inside a record is rotated away as it is, and the chain goes on from its last whole record', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w1 = await sb.writer({ path: file });
    w1.append(requestRecord(1));
    await w1.close();
    sb.forget(w1);
    const stop = linesOf(file).at(-1)!;
    appendFileSync(file, '{"authenticated":true,"caller":{"dri'); // a crash in the middle of a write
    const w2 = await sb.writer({ path: file });
    await drained(w2);
    expect(readFileSync(`${file}.1`, 'utf8').endsWith('"caller":{"dri')).toBe(true);
    expect(linesOf(file)[0]).toMatchObject({ kind: 'header', reason: 'start', file: 2, seq: (stop.seq as number) + 1, prev: stop.hash });
    const report = await verifyLog(file);
    expect(report.findings).toEqual([
      expect.objectContaining({
        kind: 'truncated',
        file: `${file}.1`,
        line: 4,
        message: expect.stringContaining('ends inside a record: 36 bytes after seq 3'),
      }),
    ]);
  });

  it('a damaged last record refuses the start and says what to do', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w1 = await sb.writer({ path: file });
    await w1.close();
    sb.forget(w1);
    appendFileSync(file, '{"not":"a record"}\n');
    await expect(AuditWriter.open({ path: file, version: 't', log: silentLogger })).rejects.toThrow(
      new AuditSetupError(
        `the last record of ${file} is damaged (not an audit record (no hash at its end)); check it with claustrum -audit-verify ${file}, then move it away or choose another -audit path`,
      ),
    );
  });

  it('an empty current file (a crash right after a rotation) continues from <path>.1', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w1 = await sb.writer({ path: file, maxBytes: MIN_AUDIT_MAX_BYTES });
    let i = 0;
    while (w1.stats().rotations < 1) {
      for (let k = 0; k < 20; k++) w1.append(requestRecord(i++));
      await drained(w1);
    }
    await w1.close();
    sb.forget(w1);
    // The renames of a rotation, then a crash before the new file got its header.
    renameSync(`${file}.1`, `${file}.2`);
    renameSync(file, `${file}.1`);
    writeFileSync(file, '', { mode: 0o600 });
    const last = linesOf(`${file}.1`).at(-1)!;
    const w2 = await sb.writer({ path: file, maxBytes: MIN_AUDIT_MAX_BYTES });
    expect(linesOf(file)[0]).toMatchObject({ kind: 'header', reason: 'start', file: 3, seq: (last.seq as number) + 1, prev: last.hash });
    expect(w2.stats().head.seq).toBe((last.seq as number) + 1);
    expect((await verifyLog(file)).findings).toEqual([]);
  });
});

describe('the queue limit', () => {
  // The limit and the -audit-full policy are the request side's (recorder.ts; test/audit/recorder.test.ts): the
  // writer is told what was dropped or refused, and puts it on its next record.
  it('addGaps: the next record carries what the request side dropped and refused, once', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file });
    w.append(requestRecord(0));
    w.addGaps(3, 0);
    w.addGaps(0, 2);
    w.append(requestRecord(1));
    w.append(requestRecord(2));
    await drained(w);
    const lines = linesOf(file);
    expect(lines.map((l) => [l.lost, l.refused])).toEqual([
      [undefined, undefined],
      [undefined, undefined],
      [3, 2],
      [undefined, undefined],
    ]);
    const report = await verifyLog(file);
    expect(report.findings).toEqual([
      expect.objectContaining({ kind: 'dropped', line: 3, seq: 3, message: expect.stringMatching(/^3 records were dropped before seq 3/) }),
    ]);
  });

  it('close() writes what is queued and a stop record, then refuses more', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file });
    for (let i = 0; i < 3; i++) w.append(requestRecord(i));
    await w.close('shutdown');
    sb.forget(w);
    expect(w.append(requestRecord(9))).toBe(false);
    expect(linesOf(file).map((l) => l.kind)).toEqual(['header', 'request', 'request', 'request', 'stop']);
    expect(existsSync(`${file}.lock`)).toBe(false);
  });
});
