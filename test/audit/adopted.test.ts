/**
 * Exits of adopted processes (src/audit/adopted.ts): a daemon that takes over the keeper's processes sees again the
 * exits its predecessor saw; each exit is recorded once. Through two real daemons on one directory, and the scan on
 * real logs written by the writer: found across rotated files, bounded by the start time and by its byte cap, at
 * the exact boundary.
 */
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ADOPTED_SCAN_SLACK_MS, exitKey, findRecordedExits } from '../../src/audit/adopted.js';
import type { ExitEntry } from '../../src/audit/record.js';
import { runCli } from '../helpers/cli.js';
import { Daemon, until } from '../helpers/daemon.js';
import { stopKeeper } from '../helpers/procfs.js';
import { auditSandbox, linesOf, requestRecord } from './helpers.js';

const sb = auditSandbox();

function exitRecord(processId: string, pid: number): ExitEntry {
  return { kind: 'exit', processId, pid, exitCode: 0, signal: null, killedBy: null, ms: 5, stdoutBytes: 0, stderrBytes: 0 };
}

describe('the exits of adopted processes, through two daemons', () => {
  it('a daemon taking over records only the exits its predecessor did not: each exit once, the chain intact', async () => {
    const a = await Daemon.start({ args: ['-audit', 'on', '-no-login-path'] });
    let b: Daemon | undefined;
    try {
      const c = await a.client();
      const done = c.waitExit('done');
      await c.request('process.spawn', { id: 'done', command: 'sh', args: ['-c', 'exit 7'] });
      await done;
      // Still running when the next daemon takes over: its exit is the new daemon's to record.
      await c.request('process.spawn', { id: 'later', command: 'sh', args: ['-c', 'sleep 1; exit 4'] });
      const file = path.join(a.dir, 'audit.jsonl');
      await until(() => linesOf(file).some((r) => r.kind === 'exit' && r.processId === 'done'), 10_000, "the first daemon's exit record");
      b = await Daemon.start({ dir: a.dir, token: a.token, args: ['-audit', 'on', '-no-login-path'] });
      await a.exited;
      await until(() => linesOf(file).some((r) => r.kind === 'exit' && r.processId === 'later'), 10_000, "the second daemon's exit record");
      b.proc.kill('SIGTERM');
      await b.exited;
      const records = linesOf(file);
      const exits = records.filter((r) => r.kind === 'exit').map((r) => [r.processId, r.exitCode]);
      expect(exits).toEqual([
        ['done', 7],
        ['later', 4],
      ]);
      // The second daemon's start lies between the two exits.
      const starts = records.filter((r) => r.kind === 'header' && r.reason === 'start').map((r) => r.seq as number);
      expect(starts).toHaveLength(2);
      const laterExit = records.find((r) => r.kind === 'exit' && r.processId === 'later')!;
      expect(laterExit.seq as number).toBeGreaterThan(starts[1]!);
      // Timed by the reap, not by the daemon that saw it: about the second it slept.
      expect(laterExit.ms as number).toBeGreaterThanOrEqual(1000);
      expect(await runCli(['-audit-verify', file])).toMatchObject({ code: 0 });
    } finally {
      await b?.stop();
      await a.stop();
      await stopKeeper(a.dir);
    }
  });
});

describe('findRecordedExits', () => {
  it('finds exit records in rotated files, and says which of those asked for are there', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file, maxBytes: 64 * 1024, keep: 5 });
    w.append(exitRecord('old', 100));
    for (let i = 0; i < 400; i++) w.append(requestRecord(i));
    w.append(exitRecord('new', 200));
    await w.flushed();
    expect(statSync(`${file}.1`).size).toBeGreaterThan(0);
    const now = Date.now() - 60_000;
    const scan = await findRecordedExits(file, [
      { processId: 'old', pid: 100, startedAt: now },
      { processId: 'new', pid: 200, startedAt: now },
      { processId: 'new', pid: 201, startedAt: now },
      { processId: 'never', pid: 100, startedAt: now },
    ]);
    expect([...scan.found].sort()).toEqual([exitKey('new', 200), exitKey('old', 100)].sort());
    expect(scan.cut).toBe(false);
  });

  it('reads no further back than a little before the earliest start time', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file });
    w.append(exitRecord('p', 1));
    w.append(requestRecord(1));
    await w.flushed();
    // A process that started after every record here (past the slack) cannot have its exit among them.
    const future = Date.now() + 2 * ADOPTED_SCAN_SLACK_MS;
    expect((await findRecordedExits(file, [{ processId: 'p', pid: 1, startedAt: future }])).found.size).toBe(0);
    expect((await findRecordedExits(file, [{ processId: 'p', pid: 1, startedAt: Date.now() }])).found.size).toBe(1);
  });

  it('reads at most maxBytes: the record is found with the bytes from the line before it on, not with one less', async () => {
    const file = path.join(sb.dir(), 'audit.jsonl');
    const w = await sb.writer({ path: file });
    w.append(exitRecord('p', 1));
    for (let i = 0; i < 20; i++) w.append(requestRecord(i));
    await w.flushed();
    const text = readFileSync(file, 'utf8');
    const lineStart = text.lastIndexOf('\n', text.indexOf('"kind":"exit"')) + 1;
    // The exit line and everything after it, and the newline that ends the line before it.
    const needed = Buffer.byteLength(text) - Buffer.byteLength(text.slice(0, lineStart)) + 1;
    const wanted = [{ processId: 'p', pid: 1, startedAt: Date.now() - 60_000 }];
    expect(await findRecordedExits(file, wanted, needed)).toEqual({ found: new Set([exitKey('p', 1)]), cut: false });
    expect(await findRecordedExits(file, wanted, needed - 1)).toEqual({ found: new Set(), cut: true });
  });
});
