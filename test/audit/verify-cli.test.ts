/**
 * `claustrum -audit-verify`, the real executable, on a log the real daemon wrote (rotated four times while a client
 * made requests), and on hand-corrupted copies: a byte changed, a line removed, two lines swapped, a file removed between rotations, a cut
 * tail, and whole records cut from the end (caught with -audit-head). Each problem must be reported once, at the
 * right file, line and seq, with exit 1.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { VerifyReport } from '../../src/audit/verify.js';
import { MIN_AUDIT_MAX_BYTES } from '../../src/audit/writer.js';
import { runCli } from '../helpers/cli.js';
import { Daemon } from '../helpers/daemon.js';
import { auditSandbox, linesOf } from './helpers.js';

const sb = auditSandbox();
let pristine: string;

/** A log of five files (rotated at the smallest size) that a daemon wrote while a client pinged it, closed cleanly. */
beforeAll(async () => {
  pristine = mkdtempSync(path.join(tmpdir(), 'claustrum-audit-pristine-'));
  const file = path.join(pristine, 'audit.jsonl');
  const d = await Daemon.start({ args: ['-audit', file, '-audit-max-bytes', String(MIN_AUDIT_MAX_BYTES), '-audit-keep', '10'] });
  try {
    const c = await d.client();
    // Until the fourth rotation, then a few more records in the fifth file.
    let after = -1;
    for (let i = 0; after < 0 || i < after + 20; i++) {
      await c.call('server.ping');
      if (after < 0 && i % 10 === 0 && readdirSync(pristine).includes('audit.jsonl.4')) after = i;
    }
  } finally {
    await d.stop();
  }
  expect(readdirSync(pristine).sort()).toEqual(['audit.jsonl', 'audit.jsonl.1', 'audit.jsonl.2', 'audit.jsonl.3', 'audit.jsonl.4']);
});

afterAll(() => rmSync(pristine, { recursive: true, force: true }));

/** A fresh copy of the pristine log, to corrupt. */
function copy(): string {
  const dir = sb.dir();
  rmSync(dir, { recursive: true });
  cpSync(pristine, dir, { recursive: true });
  return path.join(dir, 'audit.jsonl');
}

function lines(file: string): string[] {
  return readFileSync(file, 'utf8').split('\n').slice(0, -1);
}

function writeLines(file: string, ls: readonly string[]): void {
  writeFileSync(file, `${ls.join('\n')}\n`);
}

async function verify(file: string, ...flags: string[]): Promise<{ code: number | null; report: VerifyReport; stderr: string }> {
  const r = await runCli(['-audit-verify', '-json', ...flags, file]);
  return { code: r.code, report: r.stdout === '' ? (undefined as never) : (JSON.parse(r.stdout) as VerifyReport), stderr: r.stderr };
}

const seqAt = (file: string, line: number) => linesOf(file)[line - 1]!.seq as number;

describe('claustrum -audit-verify', () => {
  it('passes an intact log of five files: exit 0, every record counted, the head given', async () => {
    const file = copy();
    const all = [4, 3, 2, 1, 0].flatMap((n) => linesOf(n === 0 ? file : `${file}.${n}`));
    const { code, report } = await verify(file);
    expect(code).toBe(0);
    expect(report).toMatchObject({ ok: true, records: all.length, firstSeq: 1, lastSeq: all.length, findings: [] });
    expect(report.head).toEqual({ seq: all.length, hash: all.at(-1)!.hash });
    expect(report.files.map((f) => [path.basename(f.path), f.file])).toEqual([
      ['audit.jsonl.4', 1],
      ['audit.jsonl.3', 2],
      ['audit.jsonl.2', 3],
      ['audit.jsonl.1', 4],
      ['audit.jsonl', 5],
    ]);
    const human = await runCli(['-audit-verify', file]);
    expect(human.code).toBe(0);
    expect(human.stdout.trimEnd().split('\n').at(-1)).toBe(
      `ok: ${all.length} records in 5 files, log ${all[0]!.log}; head seq ${all.length} ${all.at(-1)!.hash}`,
    );
  });

  it('a byte changed: BROKEN at that record, once', async () => {
    const file = copy();
    const target = `${file}.2`;
    const ls = lines(target);
    ls[9] = ls[9]!.replace(/"id":"(\d+)"/, (_m, n: string) => `"id":"${Number(n) + 1}"`);
    expect(ls[9]).not.toBe(lines(target)[9]);
    writeLines(target, ls);
    const { code, report } = await verify(file);
    expect(code).toBe(1);
    expect(report.findings).toEqual([
      {
        kind: 'broken',
        file: target,
        line: 10,
        seq: seqAt(target, 10),
        message: `record seq ${seqAt(target, 10)} (line 10): hash does not match the record: its bytes were changed`,
      },
    ]);
    const human = await runCli(['-audit-verify', file]);
    expect(human.code).toBe(1);
    expect(human.stdout).toContain(`BROKEN: ${target}:10: record seq ${seqAt(target, 10)} (line 10): hash does not match`);
    expect(human.stdout.trimEnd().split('\n').at(-1)).toMatch(/^FAILED: 1 problem in \d+ records, 5 files/);
  });

  it('a line removed: MISSING at the place, once', async () => {
    const file = copy();
    const target = `${file}.1`;
    const ls = lines(target);
    const removed = JSON.parse(ls[9]!).seq as number;
    ls.splice(9, 1);
    writeLines(target, ls);
    const { code, report } = await verify(file);
    expect(code).toBe(1);
    expect(report.findings).toEqual([
      { kind: 'missing', file: target, line: 10, seq: removed, message: `record ${removed} is missing before seq ${removed + 1} (line 10)` },
    ]);
  });

  it('two lines swapped: REORDERED, once', async () => {
    const file = copy();
    const target = `${file}.3`;
    const ls = lines(target);
    const a = JSON.parse(ls[9]!).seq as number;
    [ls[9], ls[10]] = [ls[10]!, ls[9]!];
    writeLines(target, ls);
    const { code, report } = await verify(file);
    expect(code).toBe(1);
    expect(report.findings).toEqual([
      {
        kind: 'reordered',
        file: target,
        line: 11,
        seq: a,
        message: `record seq ${a} is out of order: it is on line 11, after seq ${a + 1} on line 10 (lines moved or swapped)`,
      },
    ]);
  });

  it('a file removed between rotations: FILEMISSING with the seq range it held', async () => {
    const file = copy();
    const gone = linesOf(`${file}.2`);
    rmSync(`${file}.2`);
    const { code, report } = await verify(file);
    expect(code).toBe(1);
    expect(report.findings).toEqual([
      {
        kind: 'fileMissing',
        file: `${file}.1`,
        line: 1,
        seq: gone[0]!.seq,
        message: `file 3 is missing before ${file}.1: records ${gone[0]!.seq}..${gone.at(-1)!.seq} were removed between rotations`,
      },
    ]);
  });

  it('a cut tail: TRUNCATED at the unfinished record', async () => {
    const file = copy();
    const before = linesOf(file);
    const size = readFileSync(file).length;
    truncateSync(file, size - 30);
    const { code, report } = await verify(file);
    expect(code).toBe(1);
    const lastWhole = before.at(-2)!.seq as number;
    expect(report.findings).toEqual([
      expect.objectContaining({
        kind: 'truncated',
        file,
        line: before.length,
        seq: lastWhole + 1,
        message: expect.stringContaining(`after seq ${lastWhole}`),
      }),
    ]);
  });

  it('whole records cut from the end are caught with -audit-head, the head shipped elsewhere', async () => {
    const file = copy();
    const all = linesOf(file);
    const head = all.at(-1)!.hash as string;
    expect((await verify(file, '-audit-head', head)).code).toBe(0);
    writeLines(file, lines(file).slice(0, -2));
    expect((await verify(file)).code).toBe(0); // without the anchor, a shorter log looks complete
    const { code, report } = await verify(file, '-audit-head', head);
    expect(code).toBe(1);
    expect(report.findings).toEqual([
      expect.objectContaining({
        kind: 'truncated',
        file,
        seq: (all.at(-3)!.seq as number) + 1,
        message: expect.stringContaining(`the head ${head} kept elsewhere is not in the log`),
      }),
    ]);
  });

  it('no log, or a bad -audit-head: exit 2 with the reason', async () => {
    const dir = sb.dir();
    const none = await runCli(['-audit-verify', path.join(dir, 'audit.jsonl')]);
    expect(none).toMatchObject({ code: 2, stdout: '' });
    expect(none.stderr).toBe(
      `claustrum: no audit log at ${path.join(dir, 'audit.jsonl')} (nor rotated files ${path.join(dir, 'audit.jsonl')}.1, …)\n`,
    );
    const bad = await runCli(['-audit-verify', '-audit-head', 'xyz', copy()]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/-audit-head "xyz" is not a record hash/);
    const two = await runCli(['-audit-verify', 'a', 'b']);
    expect(two.code).toBe(2);
    expect(two.stderr).toMatch(/^claustrum: -audit-verify takes one audit log path at most, but got 2\n/);
  });

  it('without a path, verifies audit.jsonl beside -socket', async () => {
    const file = copy();
    const r = await runCli(['-audit-verify', '-socket', path.join(path.dirname(file), 'rpc.sock')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`${file}: file 5,`);
  });
});
