/**
 * The audit's command-line modes, `-audit-verify` and `-audit-tail`, and the `-serve` flags that turn the audit on.
 * cmd/claustrum.ts only turns flags into these options.
 */
import { once } from 'node:events';
import path from 'node:path';
import type { FlagSpec } from '../cli/flags.js';
import { renderRecordHud } from '../client/hud.js';
import { tailLog } from './tail.js';
import { formatReport, NoLogError, verifyLog } from './verify.js';
import { DEFAULT_AUDIT_FULL, DEFAULT_AUDIT_KEEP, DEFAULT_AUDIT_MAX_BYTES, type FullPolicy, MAX_AUDIT_KEEP, MIN_AUDIT_MAX_BYTES } from './writer.js';

/** The log's name in the state directory (the socket's directory) when no path is given. */
export const DEFAULT_AUDIT_FILE = 'audit.jsonl';

export const VERIFY_USAGE = 'claustrum -audit-verify [-json] [-audit-head <hash>] [path]';
export const TAIL_USAGE = 'claustrum -audit-tail [-f] [-from-seq <n>] [-from-log <id>] [-pretty] [path]';

/** Exit codes of both modes. */
export const EXIT_OK = 0;
/** -audit-verify found problems; -audit-tail (without -f) reported gaps, truncations or damaged lines. */
export const EXIT_PROBLEMS = 1;
/** Usage errors, and no log at the path. */
export const EXIT_USAGE = 2;

export interface Output {
  write(s: string): void | Promise<void>;
}

/** `-audit-verify`: the chain over every file of the log; exit 0 intact, 1 problems, 2 no log or a bad flag. */
export async function runAuditVerify(o: { path: string; json: boolean; head: string; stdout: Output; stderr: Output }): Promise<number> {
  if (o.head !== '' && !/^[0-9a-f]{64}$/.test(o.head)) {
    await o.stderr.write(
      `claustrum: -audit-head ${JSON.stringify(o.head)} is not a record hash (64 lower-case hex digits, as /info and the metrics give it)\n`,
    );
    return EXIT_USAGE;
  }
  try {
    const report = await verifyLog(o.path, { head: o.head === '' ? undefined : o.head });
    await o.stdout.write(o.json ? `${JSON.stringify(report)}\n` : formatReport(report));
    return report.ok ? EXIT_OK : EXIT_PROBLEMS;
  } catch (err) {
    if (!(err instanceof NoLogError)) throw err;
    await o.stderr.write(`claustrum: ${err.message}\n`);
    return EXIT_USAGE;
  }
}

export interface TailModeOptions {
  readonly path: string;
  readonly follow: boolean;
  readonly fromSeq: number;
  readonly fromLog: string;
  readonly pretty: boolean;
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: Output;
  /** Ends a `-f` (SIGINT, SIGTERM). */
  readonly signal?: AbortSignal;
}

/**
 * `-audit-tail`: every record (from `-from-seq` on) as its exact line, or as a HUD line with `-pretty`; with `-f`,
 * then follows. Reports go to stderr, prefixed `claustrum: audit-tail:`. A closed stdout ends it quietly.
 */
export async function runAuditTail(o: TailModeOptions): Promise<number> {
  if (!Number.isSafeInteger(o.fromSeq) || o.fromSeq < 0) {
    await o.stderr.write(`claustrum: -from-seq ${o.fromSeq} is not a record number (0 or more: the last seq already seen)\n`);
    return EXIT_USAGE;
  }
  if (o.fromLog !== '' && !/^[0-9a-f]{32}$/.test(o.fromLog)) {
    await o.stderr.write(`claustrum: -from-log ${JSON.stringify(o.fromLog)} is not a log id (32 lower-case hex digits, the "log" of any record)\n`);
    return EXIT_USAGE;
  }
  const stop = new AbortController();
  o.signal?.addEventListener('abort', () => stop.abort(), { once: true });
  let closed = false;
  o.stdout.on('error', () => {
    closed = true; // EPIPE: whoever read our output is gone
    stop.abort();
  });
  try {
    const result = await tailLog({
      path: o.path,
      follow: o.follow,
      fromSeq: o.fromSeq,
      fromLog: o.fromLog === '' ? undefined : o.fromLog,
      signal: stop.signal,
      onRecord: async (line, record) => {
        if (closed) return;
        const text = o.pretty ? renderRecordHud(record as unknown as Record<string, unknown>) : line;
        // A consumer slower than the log holds the follower, not our memory.
        // once() with the signal removes its listener either way (a race with once(signal, 'abort') left one
        // 'abort' listener on the signal per wait); an abort ends the wait, and the follower sees the signal.
        if (!o.stdout.write(`${text}\n`)) await once(o.stdout, 'drain', { signal: stop.signal }).catch(() => undefined);
      },
      onReport: (message) => void o.stderr.write(`claustrum: audit-tail: ${message}\n`),
    });
    return !o.follow && result.reports > 0 ? EXIT_PROBLEMS : EXIT_OK;
  } catch (err) {
    if (!(err instanceof NoLogError)) throw err;
    await o.stderr.write(`claustrum: ${err.message}\n`);
    return EXIT_USAGE;
  }
}

/** The path a mode works on: the one given, else `audit.jsonl` in the state directory. */
export function auditPath(given: string | undefined, stateDir: string): string {
  return path.resolve(given ?? path.join(stateDir, DEFAULT_AUDIT_FILE));
}

// ------------------------------------------------------------------------------------------------ -serve flags

/**
 * The `-serve` flags of the audit, ready to be spliced into cmd/claustrum.ts's FLAGS once the RPC layer records.
 * `-audit` takes `on` (the default file in the state directory), `off`, or a path: Go-style flags cannot have an
 * optional value, and `-audit on` reads better than a bare flag that swallows the next argument.
 */
export const AUDIT_SERVE_FLAGS: readonly FlagSpec[] = [
  {
    name: 'audit',
    kind: 'string',
    arg: 'path|on|off',
    default: 'off',
    usage: `with -serve: append one JSON record per request (refused ones included) and per child exit to this file, hash-chained; "on" means ${DEFAULT_AUDIT_FILE} beside the socket`,
  },
  {
    name: 'audit-max-bytes',
    kind: 'int',
    arg: 'n',
    default: DEFAULT_AUDIT_MAX_BYTES,
    usage: `with -serve -audit: rotate the audit file before it passes n bytes (at least ${MIN_AUDIT_MAX_BYTES}); the chain continues in the next file`,
  },
  {
    name: 'audit-keep',
    kind: 'int',
    arg: 'n',
    default: DEFAULT_AUDIT_KEEP,
    usage: `with -serve -audit: rotated audit files kept (<path>.1 newest … <path>.n oldest; 1 to ${MAX_AUDIT_KEEP}); older ones are deleted`,
  },
  {
    name: 'audit-full',
    kind: 'string',
    arg: 'block|drop',
    default: DEFAULT_AUDIT_FULL,
    usage:
      'with -serve -audit: when the audit queue is full (a slow or full disk): block refuses requests until it drains; drop serves them and counts the records lost (the verifier reports where)',
  },
];

export interface AuditServeOptions {
  readonly path: string;
  readonly maxBytes: number;
  readonly keep: number;
  readonly full: FullPolicy;
}

export class AuditFlagError extends Error {}

/**
 * The audit options from the `-serve` flags, or undefined when the audit is off. `cwd` resolves a relative path
 * (the launcher's directory: the detached daemon runs in `/`).
 */
export function auditServeOptions(
  flags: { audit: string; maxBytes: number; keep: number; full: string },
  stateDir: string,
  cwd = process.cwd(),
): AuditServeOptions | undefined {
  if (flags.audit === 'off') return undefined;
  if (flags.audit === '') throw new AuditFlagError('-audit needs a path, "on" or "off"');
  if (flags.full !== 'block' && flags.full !== 'drop') throw new AuditFlagError(`-audit-full ${JSON.stringify(flags.full)}: use block or drop`);
  if (!Number.isSafeInteger(flags.maxBytes) || flags.maxBytes < MIN_AUDIT_MAX_BYTES) {
    throw new AuditFlagError(`-audit-max-bytes ${flags.maxBytes} is too small: a file must hold at least ${MIN_AUDIT_MAX_BYTES} bytes`);
  }
  if (!Number.isSafeInteger(flags.keep) || flags.keep < 1 || flags.keep > MAX_AUDIT_KEEP) {
    throw new AuditFlagError(`-audit-keep ${flags.keep} is out of range: 1 to ${MAX_AUDIT_KEEP}`);
  }
  const file = flags.audit === 'on' ? path.join(stateDir, DEFAULT_AUDIT_FILE) : path.resolve(cwd, flags.audit);
  return { path: file, maxBytes: flags.maxBytes, keep: flags.keep, full: flags.full };
}
