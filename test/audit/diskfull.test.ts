/**
 * A full disk, for real: a 256 KiB tmpfs filled to the last byte when this runs as root, else a file-size limit
 * (RLIMIT_FSIZE through prlimit) on the writer's process. The writer runs in a process of its own
 * (fixtures/audit-writer.mjs) and must, per -audit-full:
 * - block: refuse reservations once its queue is full, with a reason naming the failure, keep running, and write
 *   everything it accepted once space is back, with the refusals noted on the next record;
 * - drop: drop and count what does not fit, keep running, and put the exact count on the next record it writes.
 * In both cases no half record is ever left in the file (a short write is cut back), so the chain verifies.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyLog } from '../../src/audit/verify.js';
import type { AuditStats } from '../../src/audit/writer.js';
import { FIXTURES } from '../helpers/daemon.js';
import { linesOf, until } from './helpers.js';

/** Bytes the log may hold under the file-size limit: its header and a few records. */
const FSIZE_LIMIT = 1500;

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
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k,mode=0700', 'tmpfs', dir], { stdio: 'ignore' });
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

class WriterProcess {
  readonly child: ChildProcess;
  readonly #lines: Interface;
  readonly #replies: string[] = [];
  #waiting: ((line: string) => void) | undefined;

  constructor(wrapper: readonly string[], options: object) {
    const argv = [...wrapper, process.execPath, path.join(FIXTURES, 'audit-writer.mjs'), JSON.stringify(options)];
    this.child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    this.#lines = createInterface({ input: this.child.stdout! });
    this.#lines.on('line', (l) => {
      const w = this.#waiting;
      this.#waiting = undefined;
      if (w) w(l);
      else this.#replies.push(l);
    });
  }

  next(): Promise<Record<string, any>> {
    const queued = this.#replies.shift();
    if (queued !== undefined) return Promise.resolve(JSON.parse(queued));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the writer process did not answer')), 10_000);
      this.#waiting = (l) => {
        clearTimeout(timer);
        resolve(JSON.parse(l));
      };
    });
  }

  /** The writer's log lines so far. */
  readonly log: string[] = [];

  async send(cmd: object): Promise<Record<string, any>> {
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    const reply = await this.next();
    if (Array.isArray(reply.log)) this.log.push(...(reply.log as string[]));
    return reply;
  }

  async stats(): Promise<AuditStats> {
    return (await this.send({ op: 'stats' })).stats as AuditStats;
  }
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

async function scenario(kind: SmallDisk['kind'], full: 'block' | 'drop') {
  const disk = smallDisk(kind);
  cleanups.push(() => disk.cleanup());
  const file = path.join(disk.dir, 'audit.jsonl');
  const w = new WriterProcess(disk.wrapper, { path: file, full, queueRecords: 20, retryMs: 50 });
  cleanups.push(() => w.child.kill('SIGKILL'));
  expect(await w.next()).toMatchObject({ ready: true });
  disk.fill();
  const first = await w.send({ op: 'append', n: 200, reserve: full === 'block' });
  // The disk fails the writes: the writer says so and keeps running.
  await until(async () => (await w.stats()).failing !== undefined, 'the write failure to show');
  const failing = await w.stats();
  expect(failing.failing).toBe(disk.kind === 'tmpfs' ? 'no space left on device' : 'file too large');
  expect(failing.writeErrors).toBeGreaterThan(0);
  return { disk, file, w, first, failing };
}

describe.each(KINDS)('a full disk (%s)', (kind) => {
  it('-audit-full block: requests are refused with the reason while the queue is full, and nothing accepted is lost', async () => {
    const { disk, file, w, first } = await scenario(kind, 'block');
    expect(first.accepted).toBe(20);
    expect(first.refused).toBe(180);
    const more = await w.send({ op: 'append', n: 5, reserve: true });
    expect(more.refused).toBe(5);
    expect(more.reason).toMatch(
      new RegExp(`^\\d+ records are waiting for the disk: writing ${file} fails \\((no space left on device|file too large)\\)$`),
    );

    disk.free(w.child.pid!);
    await until(async () => {
      const s = await w.stats();
      return s.queueDepth === 0 && s.failing === undefined;
    }, 'the queue to drain once space is back');
    const after = await w.send({ op: 'append', n: 5, reserve: true });
    expect(after).toMatchObject({ accepted: 5, refused: 0 });
    await w.send({ op: 'close' });
    expect(w.log.join('\n')).toMatch(/cannot write .* retrying every 50 ms[\s\S]*works again/);

    const lines = linesOf(file);
    expect(lines.filter((l) => l.kind === 'request').length).toBe(25);
    expect(lines.reduce((n, l) => n + ((l.refused as number | undefined) ?? 0), 0)).toBe(185);
    const report = await verifyLog(file);
    expect(report.findings).toEqual([]);
    expect(report.notes.some((n) => /requests were refused before seq \d+ while the audit queue was full/.test(n))).toBe(true);
  });

  it('-audit-full drop: records past the queue are dropped and counted, and the next record carries the count', async () => {
    const { disk, file, w, first } = await scenario(kind, 'drop');
    expect(first.accepted).toBe(200);
    const dropped = (await w.stats()).dropped;
    expect(dropped).toBeGreaterThanOrEqual(180);

    disk.free(w.child.pid!);
    await until(async () => {
      const s = await w.stats();
      return s.queueDepth === 0 && s.failing === undefined;
    }, 'the queue to drain once space is back');
    await w.send({ op: 'append', n: 1 });
    await w.send({ op: 'close' });
    expect(w.log.join('\n')).toMatch(
      new RegExp(`audit queue full \\(20 records\\): writing ${file} fails|audit queue full \\(20 records\\): the disk is not keeping up`),
    );

    const lines = linesOf(file);
    expect(lines.filter((l) => l.kind === 'request').length).toBe(200 - dropped + 1);
    const marked = lines.filter((l) => l.lost !== undefined);
    expect(marked.reduce((n, l) => n + (l.lost as number), 0)).toBe(dropped);
    const report = await verifyLog(file);
    expect(report.findings.map((f) => f.kind)).toEqual(marked.map(() => 'dropped'));
    expect(report.findings[0]!.seq).toBe(marked[0]!.seq);
  });
});
