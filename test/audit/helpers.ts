/**
 * Shared by the audit tests: a real AuditWriter on a real file in a fresh 0700 directory, and request entries that
 * look like the RPC layer's.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterEach } from 'vitest';
import type { RequestEntry } from '../../src/audit/record.js';
import { AuditWriter, type AuditWriterOptions } from '../../src/audit/writer.js';
import { silentLogger } from '../../src/log/logger.js';
import { ROOT } from '../helpers/daemon.js';

/** Node runs a worker from JavaScript only: tests of the TypeScript sources start the built writer thread. */
export const THREAD_URL = pathToFileURL(path.join(ROOT, 'dist/src/audit/thread.js'));

/** Removes every directory and closes every writer a test made, even when it fails. */
export function auditSandbox() {
  const dirs: string[] = [];
  const writers: AuditWriter[] = [];
  afterEach(async () => {
    for (const w of writers.splice(0)) await w.close('test end', 200).catch(() => {});
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return {
    dir(): string {
      const d = mkdtempSync(path.join(tmpdir(), 'claustrum-audit-'));
      dirs.push(d);
      return d;
    },
    track(d: string): void {
      dirs.push(d);
    },
    async writer(o: Partial<AuditWriterOptions> & { path: string }): Promise<AuditWriter> {
      const w = await AuditWriter.open({ version: 'test', log: silentLogger, ...o });
      writers.push(w);
      return w;
    },
    forget(w: AuditWriter): void {
      writers.splice(writers.indexOf(w), 1);
    },
  };
}

export function requestRecord(i: number, over: Partial<RequestEntry> = {}): RequestEntry {
  return {
    kind: 'request',
    conn: 1 + (i % 7),
    transport: 'unix/ndjson',
    peer: { kind: 'unix', pid: 4242, uid: 1000, comm: 'node', startTime: '99' },
    caller: { driver: 'test', identity: 'alice@example.com' },
    authenticated: true,
    method: 'process.spawn',
    id: String(i),
    params: { id: `p${i}`, command: 'sh', args: ['-c', `echo ${i}`] },
    outcome: 'ok',
    ms: 1,
    ...over,
  };
}

/** The parsed lines of a file. */
export function linesOf(file: string): Record<string, unknown>[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** Waits until `check` holds, polling; fails with `what` after `ms`. */
export async function until(check: () => boolean | Promise<boolean>, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
