/**
 * A full disk under the real daemon, for real: a tmpfs filled to the last byte when this runs as root, else a
 * file-size limit (RLIMIT_FSIZE through prlimit) on the daemon's process. While a client keeps pinging, the daemon
 * must, per -audit-full:
 * - block: refuse requests once its audit queue is full, with -32005 and a reason naming the failure, keep serving
 *   (a refused request is answered, not dropped; the connection stays), and once space is back write every record it
 *   accepted, the refusals noted on the next record;
 * - drop: serve every request, drop and count the records that do not fit, and put the exact count on the next record
 *   it writes.
 * In both cases no half record is left in the file (a short write is cut back), so the chain verifies.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyLog } from '../../src/audit/verify.js';
import { DEFAULT_AUDIT_QUEUE_RECORDS } from '../../src/audit/writer.js';
import { Daemon } from '../helpers/daemon.js';
import { linesOf, until } from './helpers.js';

/** Bytes the log may hold under the file-size limit: its header and about a hundred records. */
const FSIZE_LIMIT = 64 * 1024;
/** Enough pings to fill the audit queue and go on past it. */
const PINGS = DEFAULT_AUDIT_QUEUE_RECORDS + 1000;

interface SmallDisk {
  readonly kind: 'tmpfs' | 'fsize';
  readonly dir: string;
  /** Runs the writer under this (prlimit for the fsize kind). */
  readonly wrapper: readonly string[];
  fill(): void;
  free(pid: number): void;
  cleanup(): void;
}

/** Whether this process may mount a tmpfs (root, with CAP_SYS_ADMIN). */
function canMount(): boolean {
  if (process.getuid?.() !== 0) return false;
  const dir = mkdtempSync(path.join(tmpdir(), 'claustrum-mount-probe-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=4k', 'tmpfs', dir], { stdio: 'ignore' });
    execFileSync('umount', [dir]);
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Both kinds where a tmpfs can be mounted, so the fallback is exercised too; the file-size limit elsewhere. */
const KINDS: readonly SmallDisk['kind'][] = canMount() ? ['tmpfs', 'fsize'] : ['fsize'];

function smallDisk(kind: SmallDisk['kind']): SmallDisk {
  const dir = mkdtempSync(path.join(tmpdir(), 'claustrum-audit-full-'));
  if (kind === 'tmpfs') {
    // Room for every record the queue can hold once the filler is gone.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m,mode=0700', 'tmpfs', dir], { stdio: 'ignore' });
    const filler = path.join(dir, 'filler');
    return {
      kind: 'tmpfs',
      dir,
      wrapper: [],
      fill() {
        const fd = openSync(filler, 'w');
        const block = Buffer.alloc(4096, 0x66);
        try {
          for (;;) writeSync(fd, block);
        } catch (err) {
          expect((err as NodeJS.ErrnoException).code).toBe('ENOSPC');
        } finally {
          closeSync(fd);
        }
      },
      free() {
        unlinkSync(filler);
      },
      cleanup() {
        execFileSync('umount', [dir]);
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  return {
    kind: 'fsize',
    dir,
    wrapper: ['prlimit', `--fsize=${FSIZE_LIMIT}:unlimited`, '--'],
    fill() {},
    free(pid) {
      execFileSync('prlimit', ['--pid', String(pid), '--fsize=unlimited:unlimited']);
    },
    cleanup() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

interface Pinged {
  ok: number;
  refused: number;
  reasons: Set<string>;
  other: string[];
}

/** `count` pings over one NDJSON connection, 64 in flight; every reply is read and sorted. */
function pingMany(d: Daemon, count: number): Promise<Pinged> {
  return new Promise((resolve, reject) => {
    const out: Pinged = { ok: 0, refused: 0, reasons: new Set(), other: [] };
    const s = net.connect(d.socket);
    let sent = 0;
    let replies = 0;
    let partial = '';
    const send = () => {
      let batch = '';
      while (sent < count && sent - replies < 64)
        batch += `{"jsonrpc":"2.0","id":${++sent},"method":"server.ping","auth":${JSON.stringify(d.token)}}\n`;
      if (batch !== '') s.write(batch);
    };
    s.on('connect', send);
    s.on('error', reject);
    s.on('close', () => (replies < count ? reject(new Error(`the connection closed after ${replies} replies`)) : undefined));
    s.setEncoding('utf8').on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop()!;
      for (const line of lines) {
        replies++;
        const r = JSON.parse(line) as { result?: unknown; error?: { code: number; message: string } };
        if (r.error?.code === -32005) {
          out.refused++;
          out.reasons.add(r.error.message);
        } else if (r.error === undefined) out.ok++;
        else out.other.push(line);
      }
      if (replies === count) {
        s.end();
        resolve(out);
      } else send();
    });
  });
}

const cleanups: (() => void | Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function scenario(kind: SmallDisk['kind'], full: 'block' | 'drop') {
  const disk = smallDisk(kind);
  cleanups.push(() => disk.cleanup());
  const file = path.join(disk.dir, 'audit.jsonl');
  const d = await Daemon.start({ args: ['-audit', file, '-audit-full', full], wrapper: disk.wrapper });
  cleanups.push(() => d.stop());
  disk.fill();
  const first = await pingMany(d, PINGS);
  // The disk fails the writes: the daemon says so, and keeps serving.
  const failure = kind === 'tmpfs' ? 'no space left on device' : 'file too large';
  await until(() => d.log().includes(`[Audit] cannot write ${file}: ${failure}; retrying every 1000 ms`), 'the write failure in the log', 10_000);
  expect(d.alive).toBe(true);
  expect(first.other).toEqual([]);
  return { disk, file, d, first, failure };
}

/** Stops the daemon gracefully (its stop record is the last) and reads the log. */
async function stopped(d: Daemon, file: string) {
  d.proc.kill('SIGTERM');
  expect(await d.exited).toBe(0);
  return linesOf(file);
}

describe.each(KINDS)('a full disk (%s)', (kind) => {
  it('-audit-full block: requests are refused with the reason while the queue is full, and nothing accepted is lost', async () => {
    const { disk, file, d, first, failure } = await scenario(kind, 'block');
    expect(first.refused).toBeGreaterThan(0);
    expect(first.ok + first.refused).toBe(PINGS);
    expect([...first.reasons]).toEqual([
      `Audit log unavailable, request refused: the audit queue is full (${DEFAULT_AUDIT_QUEUE_RECORDS} records waiting for the disk, 0 requests in progress): writing ${file} fails (${failure})`,
    ]);

    disk.free(d.proc.pid!);
    await until(() => d.log().includes(`[Audit] writing ${file} works again`), 'the recovery in the log', 10_000);
    const after = await pingMany(d, 100);
    expect(after).toMatchObject({ ok: 100, refused: 0 });

    const lines = await stopped(d, file);
    expect(lines.filter((l) => l.kind === 'request').length).toBe(first.ok + 100);
    expect(lines.reduce((n, l) => n + ((l.refused as number | undefined) ?? 0), 0)).toBe(first.refused);
    const report = await verifyLog(file);
    expect(report.findings).toEqual([]);
    expect(report.notes.some((n) => /requests were refused before seq \d+ while the audit queue was full/.test(n))).toBe(true);
  });

  it('-audit-full drop: every request is served, records past the queue are dropped and counted, and the next record carries the count', async () => {
    const { disk, file, d, first } = await scenario(kind, 'drop');
    expect(first).toMatchObject({ ok: PINGS, refused: 0 });
    await until(
      () => /\[Audit\] audit queue full \(\d+ records\): records are dropped: writing .* fails/.test(d.log()),
      'the drop in the log',
      10_000,
    );

    disk.free(d.proc.pid!);
    await until(() => d.log().includes(`[Audit] writing ${file} works again`), 'the recovery in the log', 10_000);
    expect((await pingMany(d, 1)).ok).toBe(1);

    const lines = await stopped(d, file);
    const requests = lines.filter((l) => l.kind === 'request').length;
    const marked = lines.filter((l) => l.lost !== undefined);
    const lost = marked.reduce((n, l) => n + (l.lost as number), 0);
    expect(lost).toBeGreaterThan(0);
    expect(requests + lost).toBe(PINGS + 1);
    const report = await verifyLog(file);
    expect(report.findings.map((f) => f.kind)).toEqual(marked.map(() => 'dropped'));
    expect(report.findings[0]!.seq).toBe(marked[0]!.seq);
  });
});
