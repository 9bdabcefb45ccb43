/**
 * `claustrum -audit-tail`, the real executable, on logs written while it runs: every record exactly once and in order
 * while a client makes 10,000 requests of the real daemon across 20 rotations; resuming by (log, seq); and nothing
 * skipped silently (the writer itself, to place each event exactly):
 * files rotated out before the follower got to them, a truncation, a torn end and a replaced log are each reported.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync, truncateSync } from 'node:fs';
import { getEventListeners } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { runAuditTail } from '../../src/audit/cli.js';
import { encodeRecord, GENESIS_HASH } from '../../src/audit/record.js';
import { MIN_AUDIT_MAX_BYTES } from '../../src/audit/writer.js';
import { runCli } from '../helpers/cli.js';
import { BIN, Daemon } from '../helpers/daemon.js';
import { auditSandbox, linesOf, requestRecord, until } from './helpers.js';

const sb = auditSandbox();

class Follower {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  #partial = '';
  readonly exited: Promise<number | null>;

  constructor(args: readonly string[]) {
    this.child = spawn(process.execPath, [BIN, '-audit-tail', '-f', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const parts = (this.#partial + d).split('\n');
      this.#partial = parts.pop()!;
      this.lines.push(...parts);
    });
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  get records(): Record<string, unknown>[] {
    return this.lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async stop(): Promise<number | null> {
    this.child.kill('SIGTERM');
    return this.exited;
  }
}

function follow(args: readonly string[]): Follower {
  const f = new Follower(args);
  followers.push(f);
  return f;
}

const followers: Follower[] = [];
// Whatever happens to a test, its followers do not outlive it.
afterEach(() => {
  for (const f of followers.splice(0)) f.child.kill('SIGKILL');
});

const drained = (w: { flushed(): Promise<void> }) => w.flushed();

/** `count` pings (ids 1…count) over one NDJSON connection, `window` in flight; resolves once every reply is in. */
function pingMany(d: Daemon, count: number, window: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const s = net.connect(d.socket);
    let sent = 0;
    let replies = 0;
    const send = () => {
      let batch = '';
      while (sent < count && sent - replies < window)
        batch += `{"jsonrpc":"2.0","id":${++sent},"method":"server.ping","auth":${JSON.stringify(d.token)}}\n`;
      if (batch !== '') s.write(batch);
    };
    s.on('connect', send);
    s.on('error', reject);
    s.on('data', (chunk: Buffer) => {
      for (const byte of chunk) if (byte === 10) replies++;
      if (replies === count) {
        s.end();
        resolve();
      } else send();
    });
  });
}

describe('claustrum -audit-tail', () => {
  it('prints every record of every file, oldest first, exactly as written; -from-seq resumes; -pretty renders', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file, maxBytes: MIN_AUDIT_MAX_BYTES, keep: 10 });
    let i = 0;
    while (w.stats().rotations < 3) {
      for (let k = 0; k < 20; k++) w.append(requestRecord(i++));
      await drained(w);
    }
    const expected = [3, 2, 1, 0].flatMap((n) =>
      readFileSync(n === 0 ? file : `${file}.${n}`, 'utf8')
        .split('\n')
        .slice(0, -1),
    );
    const all = await runCli(['-audit-tail', file]);
    expect(all).toMatchObject({ code: 0, stderr: '' });
    expect(all.stdout).toBe(`${expected.join('\n')}\n`);

    const from = await runCli(['-audit-tail', '-from-seq', '100', file]);
    expect(from.stdout.split('\n').slice(0, -1)).toEqual(expected.slice(100));
    const log = JSON.parse(expected[0]!).log as string;
    const resumed = await runCli(['-audit-tail', '-from-seq', '100', '-from-log', log, file]);
    expect(resumed.stdout).toBe(from.stdout);

    const pretty = await runCli(['-audit-tail', '-pretty', '-from-seq', String(expected.length - 1), file]);
    expect(pretty.stdout).toMatch(
      /^\[audit\.request\] seq:\d+ ts:\S+ conn:\d+ transport:unix\/ndjson pid:4242 uid:1000 comm:node caller\.driver:test .* method:process\.spawn /,
    );
  });

  it('a reader slower than the log holds it back, over and over, leaking nothing', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file, maxBytes: 64 << 20 });
    for (let i = 0; i < 4000; ) {
      for (let k = 0; k < 500; k++) w.append(requestRecord(i++));
      await drained(w);
    }
    await w.close();
    sb.forget(w);
    // About 2 MB through a 64 KiB pipe that is read only now and then. A pipe on stdout is written synchronously on
    // Linux, so the follower itself waits in write(2); the next test takes the 'drain' path.
    const child = spawn(process.execPath, [BIN, '-audit-tail', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const out: Buffer[] = [];
    child.stdout!.on('data', (chunk: Buffer) => out.push(chunk));
    // Read a moment every 20 ms; the pipe fills in between.
    child.stdout!.pause();
    const reading = setInterval(() => {
      child.stdout!.resume();
      setImmediate(() => child.stdout!.pause());
    }, 20);
    const ended = new Promise((resolve) => child.stdout!.once('end', resolve));
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    child.stdout!.resume();
    await ended;
    clearInterval(reading);
    expect(code).toBe(0);
    expect(stderr).toBe('');
    // The header, the 4000 requests and the stop record, each once and in order: the file's own bytes.
    const shown = Buffer.concat(out).toString('utf8');
    expect(shown.split('\n').length - 1).toBe(4002);
    expect(shown).toBe(readFileSync(file, 'utf8'));
  });

  it("a stream that says 'wait' is waited for, dozens of times, and no listener is left behind", async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file, maxBytes: 64 << 20 });
    for (let i = 0; i < 500; i++) w.append(requestRecord(i));
    await drained(w);
    await w.close();
    sb.forget(w);
    // A writable that takes 1 KiB before it says false, and finishes each write a tick later: every record or so
    // waits for 'drain' (the path an asynchronous stdout, a socket or a Windows pipe, takes).
    const chunks: string[] = [];
    let waits = 0;
    const out = new Writable({
      highWaterMark: 1024,
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk.toString('utf8'));
        setImmediate(done);
      },
    });
    out.on('drain', () => waits++);
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on('warning', onWarning);
    const signal = new AbortController().signal;
    try {
      const code = await runAuditTail({
        path: file,
        follow: false,
        fromSeq: 0,
        fromLog: '',
        pretty: false,
        stdout: out,
        stderr: { write: (s: string) => void chunks.push(`stderr: ${s}`) },
        signal,
      });
      await new Promise((resolve) => setImmediate(resolve));
      expect(code).toBe(0);
    } finally {
      process.off('warning', onWarning);
    }
    expect(waits).toBeGreaterThan(50);
    expect(chunks.join('')).toBe(readFileSync(file, 'utf8'));
    expect(warnings.map((x) => x.message)).toEqual([]);
    expect(getEventListeners(signal, 'abort').length).toBeLessThanOrEqual(1);
  });

  it('reports a -from-log that is not the log at the path, and shows that log whole', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file });
    w.append(requestRecord(1));
    await drained(w);
    const r = await runCli(['-audit-tail', '-from-seq', '1', '-from-log', 'b'.repeat(32), file]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      new RegExp(
        `^claustrum: audit-tail: ${file} holds log [0-9a-f]{32}, not b{32}: the log was replaced; showing log [0-9a-f]{32} from its first record\\n$`,
      ),
    );
    expect(r.stdout.split('\n').length).toBe(3);
    const bad = await runCli(['-audit-tail', '-from-log', 'nope', file]);
    expect(bad).toMatchObject({
      code: 2,
      stderr: 'claustrum: -from-log "nope" is not a log id (32 lower-case hex digits, the "log" of any record)\n',
    });
  });

  it('-f across 20 rotations while a client makes 10,000 requests of the daemon: every record exactly once, in order', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    // A ping's record, as the daemon writes it, is about this long: 21 files' worth of 10,000 of them.
    const sample = Buffer.byteLength(
      encodeRecord(
        { ...requestRecord(5000), method: 'server.ping', params: {}, caller: null },
        { seq: 5000, ts: new Date().toISOString(), log: 'a'.repeat(32), prev: GENESIS_HASH },
      ).line,
    );
    const maxBytes = Math.max(MIN_AUDIT_MAX_BYTES, Math.floor((10_000 * sample) / 21));
    const f = follow([file]); // started before the log exists: it waits for it
    await sleep(200);
    const d = await Daemon.start({ args: ['-audit', file, '-audit-max-bytes', String(maxBytes), '-audit-keep', '40'] });

    try {
      await pingMany(d, 10_000, 64);
      d.proc.kill('SIGTERM'); // the stop record is the last
      await d.exited;
    } finally {
      await d.stop();
    }
    await until(() => f.records.at(-1)?.kind === 'stop' || f.child.exitCode !== null, 'the follower to reach the stop record', 100_000);
    expect(await f.stop()).toBe(0);
    const seqs = f.records.map((r) => r.seq);
    expect(seqs.every((s, i) => s === i + 1)).toBe(true);
    const pings = f.records.filter((r) => r.kind === 'request');
    expect(pings.length).toBe(10_000);
    expect(pings.every((r) => r.method === 'server.ping' && r.outcome === 'ok')).toBe(true);
    expect(pings.map((r) => Number(JSON.parse(r.id as string)))).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1));
    expect(f.records.filter((r) => r.kind === 'header' && r.reason === 'rotate').length).toBeGreaterThanOrEqual(20);
    expect(f.stderr).toBe('');
  }, 180_000); // 10,000 requests through three processes on a shared two-core machine; no time is asserted

  it('-f reports the records of files rotated out before it got to them, then goes on', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file, maxBytes: MIN_AUDIT_MAX_BYTES, keep: 1 });
    w.append(requestRecord(0));
    await drained(w);
    const f = follow([file]);
    await until(() => f.lines.length === 2, 'the first records');
    f.child.kill('SIGSTOP');
    let i = 1;
    while (w.stats().rotations < 4) {
      for (let k = 0; k < 20; k++) w.append(requestRecord(i++));
      await drained(w);
    }
    const oldest = linesOf(`${file}.1`)[0]!.seq as number;
    f.child.kill('SIGCONT');
    await until(() => f.lines.length > 0 && JSON.parse(f.lines.at(-1)!).seq === w.stats().head.seq, 'the follower to catch up', 20_000);
    expect(f.stderr).toMatch(
      new RegExp(
        `claustrum: audit-tail: records \\d+\\.\\.${oldest - 1} were rotated out before they could be read \\(the follower fell more than -audit-keep files behind\\)`,
      ),
    );
    const seqs = f.records.map((r) => r.seq as number);
    expect(seqs.slice(seqs.indexOf(oldest))).toEqual(Array.from({ length: w.stats().head.seq - oldest + 1 }, (_, k) => oldest + k));
    expect(await f.stop()).toBe(0);
  });

  it('-f reports a truncation of the file it reads, and reads on from the new end', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file });
    for (let i = 0; i < 5; i++) w.append(requestRecord(i));
    await drained(w);
    const f = follow([file]);
    await until(() => f.lines.length === 6, 'the first records');
    const size = readFileSync(file).length;
    truncateSync(file, 0);
    await until(() => f.stderr !== '', 'the truncation report');
    expect(f.stderr).toBe(
      `claustrum: audit-tail: ${file} was truncated from ${size} to 0 bytes while it was followed: what it held past byte 0 is gone (last record read: seq 6)\n`,
    );
    w.append(requestRecord(5));
    await drained(w);
    await until(() => f.lines.length === 7, 'the record after the truncation');
    expect(f.records.at(-1)).toMatchObject({ seq: 7, id: '5' });
    expect(await f.stop()).toBe(0);
  });

  it('without -f, a log that ends inside a record is reported and the exit is 1', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file });
    w.append(requestRecord(0));
    await w.close();
    sb.forget(w);
    const { appendFileSync } = await import('node:fs');
    appendFileSync(file, '{"seq":');
    const r = await runCli(['-audit-tail', file]);
    expect(r.code).toBe(1);
    expect(r.stdout.split('\n').length).toBe(4);
    expect(r.stderr).toBe(`claustrum: audit-tail: ${file} ends inside a record: 7 bytes after seq 3 (check the log with -audit-verify)\n`);
  });

  it('-f shows a new log that replaced the old one at the name, saying so', async () => {
    const dir = sb.dir();
    const file = path.join(dir, 'audit.jsonl');
    const w1 = await sb.writer({ path: file });
    await w1.close();
    sb.forget(w1);
    const f = follow([file]);
    await until(() => f.lines.length === 2, 'the first log');
    const { renameSync } = await import('node:fs');
    renameSync(file, path.join(dir, 'moved-away.jsonl'));
    const w2 = await sb.writer({ path: file });
    w2.append(requestRecord(1));
    await drained(w2);
    await until(() => f.lines.length === 4, 'the new log');
    expect(f.records[2]!.log).not.toBe(f.records[0]!.log);
    expect(f.stderr).toMatch(/claustrum: audit-tail: a new log [0-9a-f]{32} begins at seq 1 in .*audit\.jsonl; log [0-9a-f]{32} ended at seq 2\n/);
    expect(await f.stop()).toBe(0);
  });
});
