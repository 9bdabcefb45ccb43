/**
 * Audit records: their shapes, their bytes on disk, the hash chain, and what of a request is kept.
 *
 * One line per record:
 *
 *     <body without its final "}">,"hash":"<64 hex>"}\n
 *
 * where `body` is the canonical JSON (canonical.ts) of the record without `hash`, and
 *
 *     hash = hex(SHA-256(prev ‖ body))
 *
 * over the 64 ASCII hex characters of `prev` (the previous record's hash; GENESIS_HASH before the first record of a
 * log) followed by the body's UTF-8 bytes. So a verifier hashes the bytes as they lie in the file, re-serializes
 * nothing, and can be a shell pipeline. `body` also carries `prev`, `seq` and `log`, so a record removed, swapped or
 * edited breaks the chain at exactly that place.
 *
 * Every record carries `seq` (1, 2, … with no gaps over the whole life of a log, across rotations and restarts),
 * `ts` (ISO 8601 UTC with milliseconds), `log` (32 hex digits, random when the log is created and kept across
 * rotations and restarts: a follower resumes by (log, seq), never by inode) and `kind`:
 * - `header`: the first record of every file (`reason: "start"|"rotate"`, `file`: the file's number in the log,
 *   from 1), and one more at each daemon start in an existing file;
 * - `request`: one per request that passed the parse stage, refused ones included;
 * - `exit`: one per spawned process's exit;
 * - `stop`: the daemon closed the log on a graceful shutdown.
 * Optional `lost` (records dropped since the previous record under `full: 'drop'`) and `refused` (requests refused
 * since the previous record under `full: 'block'`) tell the verifier what the queue could not keep.
 */
import crypto from 'node:crypto';
import type { KilledBy } from '../protocol/messages.js';
import { bindParams, type FieldKind, type Shape } from '../server/rpc/params.js';
import type { NumberLiterals } from '../server/rpc/request.js';
import type { Caller } from './caller.js';
import { Budget, CanonicalError, canonicalJson, cutString, sortKeys } from './canonical.js';

export const GENESIS_HASH = '0'.repeat(64);
/** The record format; written in every header so a future change is recognisable. */
export const AUDIT_FORMAT = 1;

/**
 * The largest line (body, hash and newline) a record may take. Params are budgeted below it (PARAMS_BUDGET_BYTES)
 * and every other wire-sourced string has its own cap, so real records stay far under it; a record that would pass
 * it anyway has its params replaced by a marker (see `fitRecord`). Readers use it as their line cap.
 */
export const MAX_RECORD_BYTES = 16 * 1024;
/** Encoded bytes all strings of one request's params and result may take together. */
export const PARAMS_BUDGET_BYTES = 8 * 1024;
/** One path, command, cwd or argument: PATH_MAX is 4096. */
export const MAX_STRING_BYTES = 4096;
/** Names: process ids, signals, branch names, env keys, the method, the request id's JSON text. */
export const MAX_NAME_BYTES = 256;
/** Arguments kept per spawn; the rest are counted in one marker element. */
export const MAX_ARGS = 128;
/** Env keys kept per spawn; the rest are counted in one marker element. */
export const MAX_ENV_KEYS = 128;
/** An error message (the catalogue's texts with their paths filled in). */
export const MAX_MESSAGE_BYTES = 1024;
/** A secret shorter than this is not scrubbed from recorded strings: it would match ordinary text. */
export const MIN_SCRUBBED_SECRET_LENGTH = 8;

export type Transport = 'unix/ndjson' | 'unix/msgpack' | 'ws/json' | 'ws/msgpack';

/** What the daemon itself knows of the other end; see peer.ts. Keys are written sorted. */
export type PeerInfo =
  | {
      readonly kind: 'unix';
      /** Peer process, found through the kernel's socket diagnostics; null when it could not be. */
      readonly pid: number | null;
      readonly uid: number | null;
      /** The peer's command name (/proc/<pid>/comm) and its OS start time in clock ticks, which pin the pid. */
      readonly comm?: string;
      readonly startTime?: string;
      /** Every process holding the other end, when several do (a descriptor shared after fork or passed on). */
      readonly pids?: readonly number[];
      /** Why pid is null. */
      readonly unknown?: string;
    }
  | {
      readonly kind: 'ws';
      readonly address: string;
      readonly port: number;
      /** The Origin header of the upgrade; null when the client sent none (CLIs, SDKs). */
      readonly origin: string | null;
    };

export type Outcome = 'ok' | { readonly code: number; readonly message: string };

/** The chain fields every record carries; the writer fills them. */
export interface ChainFields {
  readonly seq: number;
  readonly ts: string;
  readonly log: string;
  readonly prev: string;
  readonly lost?: number;
  readonly refused?: number;
}

export interface HeaderEntry {
  readonly kind: 'header';
  readonly format: number;
  /** The file's number in this log: 1 for the first file, +1 at each rotation. */
  readonly file: number;
  readonly reason: 'start' | 'rotate';
  /** The daemon writing: its pid and version. */
  readonly pid: number;
  readonly version: string;
}

export interface RequestEntry {
  readonly kind: 'request';
  /** The connection's number, unique per daemon run (the connection label's number). */
  readonly conn: number;
  readonly transport: Transport;
  readonly peer: PeerInfo | null;
  /** Asserted by the client; null when none was declared or the request was not authenticated. */
  readonly caller: Caller | null;
  /** Whether the request carried the right token (server.shutdown on the Unix socket passes without one). */
  readonly authenticated: boolean;
  readonly method: string;
  /** The request id's JSON text as the reply echoes it, cut at MAX_NAME_BYTES. */
  readonly id: string;
  readonly params: Readonly<Record<string, unknown>> | null;
  readonly outcome: Outcome;
  /** What of the result an investigator needs (pid, success/error of result-level failures, counts). */
  readonly result?: Readonly<Record<string, unknown>>;
  /** Milliseconds from the parse to the reply, rounded down. */
  readonly ms: number;
}

export interface ExitEntry {
  readonly kind: 'exit';
  readonly processId: string;
  readonly pid: number;
  readonly exitCode: number;
  readonly signal: string | null;
  readonly killedBy: KilledBy | null;
  /** Milliseconds from the spawn to the exit frame. */
  readonly ms: number;
  readonly stdoutBytes: number;
  readonly stderrBytes: number;
}

export interface StopEntry {
  readonly kind: 'stop';
  readonly reason: string;
}

export type Entry = HeaderEntry | RequestEntry | ExitEntry | StopEntry;
export type AuditRecord = Entry & ChainFields & { readonly hash: string };

/**
 * The members of a record without its chain fields, cut where the chain fields go: `[before log, log..lost,
 * lost..prev, prev..refused, refused..seq, seq..ts, after ts]`. Each part is a run of `,"key":value` members in
 * canonical form and key order (or empty), so the writer makes the body by concatenation alone (assembleBody). The
 * chain keys sort as log < lost < prev < refused < seq < ts, so every record's keys fall into exactly these gaps.
 */
export type RecordParts = readonly [string, string, string, string, string, string, string];

/** The chain fields' keys, in key order: the boundaries of RecordParts. */
const CHAIN_KEYS = ['log', 'lost', 'prev', 'refused', 'seq', 'ts'] as const;

/**
 * The most bytes the chain fields, the hash and the newline add to a record's parts: `,"log":"<32>"` 41,
 * `,"lost":<16 digits>` 24, `,"prev":"<64>"` 74, `,"refused":<16>` 27, `,"seq":<16>` 23, `,"ts":"<24>"` 32, braces 2,
 * `,"hash":"<64>"` and the newline 75.
 */
export const CHAIN_BYTES = 41 + 24 + 74 + 27 + 23 + 32 + 2 + 75;

// ------------------------------------------------------------------------------------------------ bytes and chain

// crypto.hash (Node 20.12+) hashes in one call, a third cheaper than createHash's object; older Node 20s take the
// long way.
const oneShot = (crypto as { hash?: (algorithm: string, data: string | Uint8Array, encoding: 'hex') => string }).hash;

export function chainHash(prev: string, body: string): string {
  if (oneShot !== undefined) return oneShot('sha256', prev + body, 'hex');
  return crypto.createHash('sha256').update(prev, 'latin1').update(body, 'utf8').digest('hex');
}

/** SHA-256 of bytes that hold `prev ‖ body` already. */
function hashBytes(bytes: Uint8Array): string {
  if (oneShot !== undefined) return oneShot('sha256', bytes, 'hex');
  return crypto.createHash('sha256').update(bytes).digest('hex');
}

const NUL = 0;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;

/** Node's own string writers, which skip `Buffer.write`'s argument handling (present since Node 8; else `write`). */
type FastWrites = Buffer & { latin1Write?(s: string, offset: number, length: number): number };
const latin1Write = (Buffer.prototype as FastWrites).latin1Write;

function putLatin1(b: Buffer, s: string, at: number): number {
  return latin1Write !== undefined ? latin1Write.call(b, s, at, s.length) : b.write(s, at, s.length, 'latin1');
}

/** Copies a short constant; a loop is cheaper than a native call for a few bytes. */
function putBytes(b: Buffer, bytes: Uint8Array, at: number): number {
  for (let i = 0; i < bytes.length; i++) b[at + i] = bytes[i]!;
  return bytes.length;
}

/** A non-negative safe integer in decimal. */
function putInt(b: Buffer, n: number, at: number): number {
  if (n < 10) {
    b[at] = 0x30 + n;
    return 1;
  }
  return putLatin1(b, String(int(n)), at);
}

const ascii = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0));
const PREV_KEY = ascii(',"prev":"');
const SEQ_KEY = ascii(',"seq":');
const HASH_KEY = ascii(',"hash":"');
const LINE_END = ascii('"}\n');

/** Lines are cut from slabs of this size: a batch of them is one contiguous range, written without a copy. */
export const LINE_SLAB_BYTES = 1024 * 1024;

/**
 * The chain fields the request side knows when it makes a record: the log's id, the time, and what was dropped or
 * refused since its previous record. The writer thread adds `prev` and `seq`.
 */
export interface FrameChain {
  readonly log: string;
  readonly ts: string;
  readonly lost?: number;
  readonly refused?: number;
}

/**
 * A record as the request side hands it to the writer thread (ring.ts): its canonical body without `prev` and `seq`,
 * cut where they go, as `A NUL B NUL C` — A the members before `prev` (with `{` as its leading comma), B those
 * between `prev` and `seq`, C those after `seq` (with the closing brace left off). Canonical JSON holds no raw
 * control character, so NUL cannot occur inside a piece.
 */
export function frameText(p: RecordParts, c: FrameChain): string {
  const lost = c.lost !== undefined ? `,"lost":${int(c.lost)}` : '';
  const refused = c.refused !== undefined ? `,"refused":${int(c.refused)}` : '';
  return `${p[0]},"log":"${c.log}"${p[1]}${lost}${p[2]}\0${p[3]}${refused}${p[4]}\0${p[5]},"ts":${JSON.stringify(c.ts)}${p[6]}`;
}

/**
 * encodeRecord for a record given as its frame text (frameText) in UTF-8: the writer thread makes every request and
 * exit line this way. The body is assembled in a slab right behind `prev` (so `prev ‖ body` is hashed where it lies),
 * then moved over `prev` and given its hash: the line is a range of the slab, and consecutive lines are consecutive
 * bytes. Three copies, two searches and the hash per record; no string is made but the hash's hex (profiled: per-part
 * copies and views were half the writer thread's time). The record tests check it against encodeRecord byte for byte.
 */
export class LineAssembler {
  #slab = Buffer.allocUnsafe(LINE_SLAB_BYTES);
  #used = 0;

  /**
   * The line of the record whose frame text is `src[start, end)`, with `seq` and `prev`: `slab[at, at + bytes)`,
   * valid while the slab is held (a new one is taken when this one is full).
   */
  assemble(src: Buffer, start: number, end: number, seq: number, prev: string): { slab: Buffer; at: number; bytes: number; hash: string } {
    const need = 64 + (end - start) + CHAIN_BYTES;
    if (this.#used + need > this.#slab.length) {
      this.#slab = Buffer.allocUnsafe(Math.max(LINE_SLAB_BYTES, need));
      this.#used = 0;
    }
    const s = this.#slab;
    const base = this.#used;
    const a = src.indexOf(NUL, start);
    const b = a < 0 ? -1 : src.indexOf(NUL, a + 1);
    if (b < 0 || b >= end || src[start] !== COMMA) throw new Error('an audit record frame is not A NUL B NUL C');
    putLatin1(s, prev, base);
    // The body from base + 64: A's leading comma becomes its `{`.
    let o = base + 64;
    o += src.copy(s, o, start, a);
    o += putBytes(s, PREV_KEY, o);
    s.copyWithin(o, base, base + 64);
    o += 64;
    s[o++] = 0x22;
    o += src.copy(s, o, a + 1, b);
    o += putBytes(s, SEQ_KEY, o);
    o += putInt(s, seq, o);
    o += src.copy(s, o, b + 1, end);
    s[base + 64] = OPEN_BRACE;
    s[o++] = CLOSE_BRACE;
    const hash = hashBytes(new Uint8Array(s.buffer, s.byteOffset + base, o - base));
    // The body without its `}` moves over prev; then `,"hash":"<64 hex>"}` and the newline.
    s.copyWithin(base, base + 64, o - 1);
    let l = base + (o - 1 - (base + 64));
    l += putBytes(s, HASH_KEY, l);
    l += putLatin1(s, hash, l);
    l += putBytes(s, LINE_END, l);
    this.#used = l;
    return { slab: s, at: base, bytes: l - base, hash };
  }
}

/**
 * The record's line, newline included, and its hash. A request whose line would pass MAX_RECORD_BYTES goes through
 * `fitRecord` first (see there): the check costs a length, the refit only the record that needs it.
 */
export function encodeRecord(entry: Entry, chain: ChainFields): { line: string; hash: string } {
  const body = assembleBody(entryParts(entry), chain);
  const hash = chainHash(chain.prev, body);
  return { line: `${body.slice(0, -1)},"hash":"${hash}"}\n`, hash };
}

/** The canonical body: the parts with the chain fields between them. */
export function assembleBody(p: RecordParts, c: ChainFields): string {
  let s = `${p[0]},"log":"${c.log}"${p[1]}`;
  if (c.lost !== undefined) s += `,"lost":${int(c.lost)}`;
  s += `${p[2]},"prev":"${c.prev}"${p[3]}`;
  if (c.refused !== undefined) s += `,"refused":${int(c.refused)}`;
  s += `${p[4]},"seq":${int(c.seq)}${p[5]},"ts":${JSON.stringify(c.ts)}${p[6]}`;
  return `{${s.slice(1)}}`;
}

/** The parts of any record: requests (nearly every record) by `requestParts`, the rest member by member. */
export function entryParts(entry: Entry): RecordParts {
  if (entry.kind === 'request') return requestParts(entry);
  const parts = ['', '', '', '', '', '', ''];
  const e = entry as unknown as Record<string, unknown>;
  for (const k of Object.keys(e).sort()) {
    const v = e[k];
    if (v === undefined) continue;
    let gap = 0;
    while (gap < CHAIN_KEYS.length && CHAIN_KEYS[gap]! < k) gap++;
    parts[gap] += `,${JSON.stringify(k)}:${canonicalJson(v)}`;
  }
  return parts as unknown as RecordParts;
}

/**
 * A request's parts by concatenation, members in key order, nested objects through `canonicalJson` (small; their
 * keys are usually in order already, which it checks before sorting), and the per-connection values (peer, caller)
 * encoded once and cached. Every request makes one of these, on the request path. A request whose line would pass
 * MAX_RECORD_BYTES is refitted (`fitRecord`): the check costs a length, the refit only the record that needs it.
 */
export function requestParts(e: RequestEntry): RecordParts {
  const parts = requestPartsAsIs(e);
  let chars = 0;
  for (const p of parts) chars += p.length;
  // A UTF-16 unit is at most 3 UTF-8 bytes: only a long record needs its exact size.
  if (chars * 3 + CHAIN_BYTES <= MAX_RECORD_BYTES) return parts;
  let bytes = 0;
  for (const p of parts) bytes += Buffer.byteLength(p);
  if (bytes + CHAIN_BYTES <= MAX_RECORD_BYTES) return parts;
  return requestPartsAsIs(fitRecord(e, Buffer.byteLength(JSON.stringify({ params: e.params, result: e.result }))));
}

function requestPartsAsIs(e: RequestEntry): RecordParts {
  const head = `,"authenticated":${e.authenticated},"caller":${cachedJson(e.caller)},"conn":${int(e.conn)},"id":${JSON.stringify(e.id)},"kind":"request"`;
  const mid = `,"method":${JSON.stringify(e.method)},"ms":${int(e.ms)},"outcome":${e.outcome === 'ok' ? '"ok"' : canonicalJson(e.outcome)},"params":${canonicalJson(e.params)},"peer":${cachedJson(e.peer)}`;
  const result = e.result === undefined ? '' : `,"result":${canonicalJson(e.result)}`;
  return [head, '', mid, '', result, `,"transport":${JSON.stringify(e.transport)}`, ''];
}

const jsonOf = new WeakMap<object, string>();
/** JSON of a long-lived object (a connection's peer or caller, both frozen), encoded once. */
function cachedJson(v: object | null): string {
  if (v === null) return 'null';
  let j = jsonOf.get(v);
  if (j === undefined) jsonOf.set(v, (j = canonicalJson(v)));
  return j;
}

function int(n: number): number {
  if (!Number.isSafeInteger(n)) throw new CanonicalError(`not a safe integer: ${n}`);
  return n;
}

const HASH_SUFFIX = /,"hash":"([0-9a-f]{64})"\}$/;

export type ParsedLine =
  | { readonly ok: true; readonly record: AuditRecord; readonly body: string; readonly hash: string }
  /** `seq` and `log` when the line is a record whose bytes do not match its hash (so a reader can resynchronize). */
  | { readonly ok: false; readonly reason: string; readonly seq?: number; readonly log?: string };

/**
 * Parses one line (without its newline) and checks everything the line alone can show: the hash suffix, JSON, the
 * canonical form (so no duplicate key, reordering or white space can make two readers see different records), the
 * chain fields' types, and that the hash matches `prev` and the body. Whether `prev` is the previous record's hash
 * is the caller's business.
 */
export function parseLine(line: string): ParsedLine {
  const m = HASH_SUFFIX.exec(line);
  if (m === null) return { ok: false, reason: 'not an audit record (no hash at its end)' };
  const body = `${line.slice(0, m.index)}}`;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return { ok: false, reason: 'not an audit record (not JSON)' };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return { ok: false, reason: 'not an audit record (not an object)' };
  const r = value as Record<string, unknown>;
  let canonical: string;
  try {
    canonical = canonicalJson(r);
  } catch {
    canonical = '';
  }
  if (canonical !== body)
    return { ok: false, reason: 'not in canonical form (keys out of order, a duplicate key, white space or a number that is not an integer)' };
  if (!Number.isSafeInteger(r.seq) || (r.seq as number) < 1) return { ok: false, reason: 'seq is missing or not a positive integer' };
  if (typeof r.log !== 'string' || !/^[0-9a-f]{32}$/.test(r.log)) return { ok: false, reason: 'log is missing or not 32 hex digits' };
  if (typeof r.prev !== 'string' || !/^[0-9a-f]{64}$/.test(r.prev)) return { ok: false, reason: 'prev is missing or not 64 hex digits' };
  if (typeof r.kind !== 'string') return { ok: false, reason: 'kind is missing' };
  if (typeof r.ts !== 'string') return { ok: false, reason: 'ts is missing' };
  const hash = m[1]!;
  if (chainHash(r.prev, body) !== hash) {
    return { ok: false, reason: 'hash does not match the record: its bytes were changed', seq: r.seq as number, log: r.log };
  }
  return { ok: true, record: { ...r, hash } as unknown as AuditRecord, body, hash };
}

// ------------------------------------------------------------------------------------------------ redaction

/**
 * How one param is kept:
 * - `string`: a path, command or cwd, cut at MAX_STRING_BYTES;
 * - `name`: an id, signal or branch name, cut at MAX_NAME_BYTES;
 * - `flag`: a boolean;
 * - `count`: an integer (offsets, byte counts, fromSeq, timeouts), as a number, or its decimal string past 2^53;
 * - `args`: each argument cut at MAX_STRING_BYTES, at most MAX_ARGS of them, then one `…[+n args]` marker;
 * - `envKeys`: the keys only, sorted, at most MAX_ENV_KEYS; never a value. Recorded as `envKeys`;
 * - `byteLength`: stdin data: its decoded length only, never its bytes. Recorded as `<name>Bytes`;
 * - `size`: a terminal size, `{cols, rows}` as counts.
 */
export type KeepRule = 'string' | 'name' | 'flag' | 'count' | 'args' | 'envKeys' | 'byteLength' | 'size';

interface MethodRule {
  /** The shape the method's handler binds (so the audit reads params exactly as the handler did). */
  readonly shape: Shape;
  /** The members kept, and how; members of the shape not listed here are never recorded. */
  readonly keep: Readonly<Record<string, KeepRule>>;
  /** The members of a result worth keeping (pids, success and error of result-level failures, counts). */
  readonly result?: Readonly<Record<string, 'value' | 'name' | 'string' | 'length'>>;
}

// The shapes each namespace binds (src/server/methods/*.ts): a mistyped member anywhere in them fails the request.
const FILES_SHAPE = { path: 'string', maxBytes: 'int64', archivePath: 'string', destDir: 'string' } as const satisfies Shape;
const GIT_SHAPE = {
  path: 'string',
  baseRepo: 'string',
  branchName: 'string',
  worktreePath: 'string',
  sourceBranch: 'string',
} as const satisfies Shape;

/**
 * Per method: what an investigator needs to know who did what, and nothing that carries data. Never recorded:
 * stdin bytes, file contents, environment values, the token (it is not a param, and any recorded string that
 * contains it is scrubbed), result contents (`files.read` content, listings).
 *
 * A method not in this table (unknown methods, refused with -32601) records `params: null`: its params reached no
 * handler, and keeping even their structure would keep key names a client may have filled with data. A served
 * method missing here is a test failure (test/audit/record.unit.test.ts).
 */
export const REDACTION: Readonly<Record<string, MethodRule>> = {
  'server.ping': { shape: {}, keep: {} },
  'server.capabilities': { shape: {}, keep: {} },
  'server.shutdown': { shape: {}, keep: {} },
  'server.info': { shape: {}, keep: {} },
  // The caller it declares is the record's `caller`.
  'session.identify': { shape: {}, keep: {} },
  'files.list': { shape: FILES_SHAPE, keep: { path: 'string' }, result: { entries: 'length' } },
  'files.validate': { shape: FILES_SHAPE, keep: { path: 'string' }, result: { valid: 'value', isDir: 'value' } },
  'files.stat': { shape: FILES_SHAPE, keep: { path: 'string' }, result: { exists: 'value', isDir: 'value', size: 'value' } },
  'files.read': { shape: FILES_SHAPE, keep: { path: 'string', maxBytes: 'count' }, result: { exists: 'value', content: 'length' } },
  'files.extract_tar': {
    shape: FILES_SHAPE,
    keep: { archivePath: 'string', destDir: 'string' },
    result: { success: 'value', fileCount: 'value', error: 'string' },
  },
  'git.info': { shape: GIT_SHAPE, keep: { path: 'string' }, result: { isRepo: 'value', root: 'string', branch: 'name' } },
  'git.status': { shape: GIT_SHAPE, keep: { path: 'string', baseRepo: 'string' }, result: { isRepo: 'value', clean: 'value', changes: 'length' } },
  'git.list_branches': { shape: GIT_SHAPE, keep: { path: 'string' }, result: { isRepo: 'value', branches: 'length' } },
  'git.worktree_create': {
    shape: GIT_SHAPE,
    keep: { baseRepo: 'string', branchName: 'name', worktreePath: 'string', sourceBranch: 'name' },
    result: { success: 'value', path: 'string', sourceBranch: 'name', error: 'string', errorCode: 'name' },
  },
  'git.worktree_remove': {
    shape: GIT_SHAPE,
    keep: { baseRepo: 'string', worktreePath: 'string' },
    result: { success: 'value', error: 'string' },
  },
  'process.spawn': {
    shape: {
      id: 'string',
      command: 'string',
      args: 'stringArray',
      cwd: 'string',
      env: 'stringMap',
      wantPid: 'bool',
      clearEnv: 'bool',
      pty: 'size',
      term: 'string',
    },
    keep: {
      id: 'name',
      command: 'string',
      args: 'args',
      cwd: 'string',
      env: 'envKeys',
      wantPid: 'flag',
      clearEnv: 'flag',
      pty: 'size',
      term: 'name',
    },
    result: { pid: 'value' },
  },
  'process.stdin': {
    shape: { id: 'string', data: 'bytes', offset: 'uint64', eof: 'bool' },
    keep: { id: 'name', data: 'byteLength', offset: 'count', eof: 'flag' },
    result: { applied: 'value', duplicate: 'value' },
  },
  'process.kill': { shape: { id: 'string', signal: 'string', group: 'bool' }, keep: { id: 'name', signal: 'name', group: 'flag' } },
  'process.killAndWait': {
    shape: { id: 'string', signal: 'string', timeoutMs: 'uint64', escalate: 'bool', group: 'bool' },
    keep: { id: 'name', signal: 'name', timeoutMs: 'count', escalate: 'flag', group: 'flag' },
    result: { found: 'value', died: 'value', alreadyExited: 'value', escalated: 'value' },
  },
  'process.reattach': {
    shape: { id: 'string', fromSeq: 'uint64', wantPid: 'bool', screen: 'bool' },
    keep: { id: 'name', fromSeq: 'count', wantPid: 'flag', screen: 'flag' },
    result: { found: 'value', running: 'value', firstSeq: 'value', lastSeq: 'value', pid: 'value' },
  },
  'process.observe': {
    shape: { id: 'string', fromSeq: 'uint64', screen: 'bool' },
    keep: { id: 'name', fromSeq: 'count', screen: 'flag' },
    result: { found: 'value', running: 'value', firstSeq: 'value', lastSeq: 'value' },
  },
  'process.unobserve': { shape: { id: 'string' }, keep: { id: 'name' }, result: { found: 'value' } },
  'process.resize': { shape: { id: 'string', cols: 'int64', rows: 'int64' }, keep: { id: 'name', cols: 'count', rows: 'count' } },
  'process.list': { shape: {}, keep: {}, result: { processes: 'length' } },
  'process.stats': { shape: { id: 'string' }, keep: { id: 'name' }, result: { found: 'value', pid: 'value' } },
};

/** Removes secrets (the token) from recorded strings, as defence in depth: a client may pass one as an argument. */
export class Scrubber {
  readonly #secrets: readonly string[];

  constructor(secrets: readonly string[]) {
    this.#secrets = secrets.filter((s) => s.length >= MIN_SCRUBBED_SECRET_LENGTH);
  }

  readonly #callers = new WeakMap<Caller, Caller>();

  /** The scrubbed form of a caller, made by `make` the first time this caller object is seen. */
  caller(c: Caller, make: () => Caller): Caller {
    let out = this.#callers.get(c);
    if (out === undefined) this.#callers.set(c, (out = make()));
    return out;
  }

  /** Whether there is anything to scrub. */
  get active(): boolean {
    return this.#secrets.length > 0;
  }

  scrub(s: string): string {
    for (const secret of this.#secrets) if (s.includes(secret)) s = s.replaceAll(secret, '[token]');
    return s;
  }

  readonly #methods = new Map<string, string>();

  /** A method's JSON as a record holds it (scrubbed, cut); for the methods the daemon serves, made once. */
  methodJson(method: string): string {
    let json = this.#methods.get(method);
    if (json === undefined) {
      json = JSON.stringify(cutString(this.scrub(method), MAX_NAME_BYTES));
      if (Object.hasOwn(REDACTION, method)) this.#methods.set(method, json);
    }
    return json;
  }
}

/**
 * The params kept for the record. `params` is the request's params member as decoded (`undefined` when absent),
 * `literals` the NDJSON number texts the binder uses for exact uint64 checks.
 *
 * The params are bound with the handler's own shape and binder, so a key spelled `Command` or a null member is read
 * exactly as the handler read it. If the whole binding fails (the request was refused `Invalid params`), each
 * member is bound alone: what binds is kept, and the names of the members that did not are listed in `invalid`.
 */
export function redactParams(
  method: string,
  params: unknown,
  literals: NumberLiterals | undefined,
  scrubber: Scrubber,
  budget = new Budget(PARAMS_BUDGET_BYTES),
): Readonly<Record<string, unknown>> | null {
  const rule = REDACTION[method];
  if (rule === undefined) return null;
  const names = Object.keys(rule.keep);
  if (names.length === 0) return {};
  if (params !== undefined && params !== null && (typeof params !== 'object' || Array.isArray(params) || params instanceof Uint8Array)) {
    return { invalid: ['params'] };
  }
  let bound = bindParams(params, rule.shape, literals) as Record<string, unknown> | undefined;
  const invalid: string[] = [];
  if (bound === undefined) {
    bound = {};
    for (const name of names) {
      const one = bindParams(params, { [name]: rule.shape[name] as FieldKind }, literals) as Record<string, unknown> | undefined;
      if (one === undefined) invalid.push(name);
      else bound[name] = one[name];
    }
  }
  const out: Record<string, unknown> = {};
  for (const name of names) {
    const v = bound[name];
    if (v === undefined) continue;
    keepValue(out, name, rule.keep[name]!, v, budget, scrubber);
  }
  if (invalid.length > 0) out.invalid = invalid;
  return sortKeys(out);
}

function keepValue(out: Record<string, unknown>, name: string, rule: KeepRule, v: unknown, budget: Budget, scrubber: Scrubber): void {
  switch (rule) {
    case 'string':
      out[name] = budget.take(scrubber.scrub(v as string), MAX_STRING_BYTES);
      return;
    case 'name':
      out[name] = budget.take(scrubber.scrub(v as string), MAX_NAME_BYTES);
      return;
    case 'flag':
      out[name] = v as boolean;
      return;
    case 'count':
      out[name] = integerValue(v as number);
      return;
    case 'args': {
      const args = v as string[];
      out[name] = keepList(args, MAX_ARGS, 'args', (a) => budget.take(scrubber.scrub(a), MAX_STRING_BYTES), budget);
      return;
    }
    case 'envKeys': {
      const keys = Object.keys(v as Record<string, string>).sort();
      out.envKeys = keepList(keys, MAX_ENV_KEYS, 'keys', (k) => budget.take(scrubber.scrub(k), MAX_NAME_BYTES), budget);
      return;
    }
    case 'size': {
      const size = v as { cols: number; rows: number };
      out[name] = { cols: integerValue(size.cols), rows: integerValue(size.rows) };
      return;
    }
    case 'byteLength':
      // Base64 text: its decoded length, computed from the text's length and padding without decoding it.
      out[`${name}Bytes`] = typeof v === 'string' ? Buffer.byteLength(v, 'base64') : (v as Uint8Array).byteLength;
      return;
  }
}

/** At most `max` elements, while the budget lasts; the rest are counted in one final marker `…[+n <what>]`. */
function keepList(items: readonly string[], max: number, what: string, take: (s: string) => string, budget: Budget): string[] {
  const kept: string[] = [];
  for (const item of items) {
    if (kept.length === max || budget.spent) break;
    kept.push(take(item));
  }
  if (kept.length < items.length) kept.push(`…[+${items.length - kept.length} ${what}]`);
  return kept;
}

/** A canonical number: the integer itself while it is safe, else its decimal text (uint64 offsets past 2^53). */
function integerValue(n: number): number | string {
  return Number.isSafeInteger(n) ? n : String(n);
}

/** The result members kept for `method` (see REDACTION); undefined when the method keeps none or none are there. */
export function redactResult(
  method: string,
  result: unknown,
  scrubber: Scrubber,
  budget = new Budget(PARAMS_BUDGET_BYTES),
): Readonly<Record<string, unknown>> | undefined {
  const keep = REDACTION[method]?.result;
  if (keep === undefined || typeof result !== 'object' || result === null) return undefined;
  const r = result as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const [name, how] of Object.entries(keep)) {
    const v = r[name];
    if (v === undefined || v === null) continue;
    switch (how) {
      case 'value':
        if (typeof v === 'boolean') out[name] = v;
        else if (typeof v === 'number' && Number.isFinite(v)) out[name] = Number.isInteger(v) ? integerValue(v) : String(v);
        break;
      case 'name':
        if (typeof v === 'string') out[name] = budget.take(scrubber.scrub(v), MAX_NAME_BYTES);
        break;
      case 'string':
        if (typeof v === 'string') out[name] = budget.take(scrubber.scrub(v), MAX_STRING_BYTES);
        break;
      case 'length':
        // The size of what was returned, never its contents: a listing's entries, a file's characters.
        if (Array.isArray(v)) out[`${name}Count`] = v.length;
        else if (typeof v === 'string') out[`${name}Bytes`] = Buffer.byteLength(v);
        break;
    }
  }
  return Object.keys(out).length > 0 ? sortKeys(out) : undefined;
}

// ------------------------------------------------------------------------------------------------ building

/** What the RPC layer knows of one request once it has been answered. */
export interface RequestFacts {
  readonly conn: number;
  readonly transport: Transport;
  readonly peer: PeerInfo | null;
  /** The request's own `caller`, else the connection's; ignored unless `authenticated`. */
  readonly caller: Caller | undefined;
  readonly authenticated: boolean;
  readonly method: string;
  /** The id as the reply echoes it (EchoId.json). */
  readonly idJson: string;
  /** The params member as decoded; `undefined` when absent. */
  readonly params: unknown;
  readonly literals: NumberLiterals | undefined;
  /** The reply: its result, or its error. */
  readonly reply: { readonly result: unknown } | { readonly error: { readonly code: number; readonly message: string } };
  /** performance.now() at the parse and at the reply. */
  readonly startedAt: number;
  readonly endedAt: number;
}

/**
 * The record of one request. An unauthenticated request keeps only what the daemon itself saw (method, id,
 * transport, peer, outcome): its params and caller are the words of someone who proved nothing, and logging them
 * would let anyone who can reach the socket write into the audit.
 */
export function requestEntry(f: RequestFacts, scrubber: Scrubber): RequestEntry {
  const error = 'error' in f.reply ? f.reply.error : undefined;
  // Params and result share one budget: together they are what a request's record holds of the wire.
  const budget = new Budget(PARAMS_BUDGET_BYTES);
  const outcome: Outcome = error === undefined ? 'ok' : { code: error.code, message: cutString(scrubber.scrub(error.message), MAX_MESSAGE_BYTES) };
  const entry: RequestEntry = {
    kind: 'request',
    conn: f.conn,
    transport: f.transport,
    peer: f.peer,
    caller: f.authenticated && f.caller !== undefined ? scrubCaller(f.caller, scrubber) : null,
    authenticated: f.authenticated,
    method: cutString(scrubber.scrub(f.method), MAX_NAME_BYTES),
    id: cutString(scrubber.scrub(f.idJson), MAX_NAME_BYTES),
    params: f.authenticated ? redactParams(f.method, f.params, f.literals, scrubber, budget) : null,
    outcome,
    result: error === undefined && f.authenticated && 'result' in f.reply ? redactResult(f.method, f.reply.result, scrubber, budget) : undefined,
    ms: Math.max(0, Math.floor(f.endedAt - f.startedAt)),
  };
  return entry;
}

/**
 * A request's record as the ring carries it (ring.ts): its frame text, made straight from the facts in one template,
 * with no intermediate entry. This is the request path's form of `frameText(requestParts(requestEntry(f, scrubber)),
 * chain)`, and equal to it for every input (test/audit/record.unit.test.ts); `peerJson` and `connJson` are the
 * connection's, encoded once. A record that might pass MAX_RECORD_BYTES goes the long way, which refits it.
 */
export function requestText(f: RequestFacts, scrubber: Scrubber, peerJson: string, connJson: string, chain: FrameChain): string {
  const error = 'error' in f.reply ? f.reply.error : undefined;
  let params = 'null';
  let result = '';
  if (f.authenticated) {
    const rule = REDACTION[f.method];
    if (rule !== undefined) {
      // Params and result share one budget, as in requestEntry.
      const budget = new Budget(PARAMS_BUDGET_BYTES);
      params = canonicalJson(redactParams(f.method, f.params, f.literals, scrubber, budget));
      if (error === undefined && rule.result !== undefined && 'result' in f.reply) {
        const r = redactResult(f.method, f.reply.result, scrubber, budget);
        if (r !== undefined) result = `,"result":${canonicalJson(r)}`;
      }
    }
  }
  const caller = f.authenticated && f.caller !== undefined ? cachedJson(scrubCaller(f.caller, scrubber)) : 'null';
  const outcome =
    error === undefined ? '"ok"' : canonicalJson({ code: int(error.code), message: cutString(scrubber.scrub(error.message), MAX_MESSAGE_BYTES) });
  const id = JSON.stringify(cutString(scrubber.scrub(f.idJson), MAX_NAME_BYTES));
  const ms = Math.max(0, Math.floor(f.endedAt - f.startedAt));
  const lost = chain.lost !== undefined ? `,"lost":${int(chain.lost)}` : '';
  const refused = chain.refused !== undefined ? `,"refused":${int(chain.refused)}` : '';
  const text = `,"authenticated":${f.authenticated},"caller":${caller},"conn":${connJson},"id":${id},"kind":"request","log":"${chain.log}"${lost},"method":${scrubber.methodJson(f.method)},"ms":${ms},"outcome":${outcome},"params":${params},"peer":${peerJson}\0${refused}${result}\0,"transport":"${f.transport}","ts":"${chain.ts}"`;
  // A UTF-16 unit is at most 3 UTF-8 bytes: only a long record needs a closer look.
  if (text.length * 3 + CHAIN_BYTES <= MAX_RECORD_BYTES) return text;
  return frameText(requestParts(requestEntry(f, scrubber)), chain);
}

/**
 * A caller lives as long as its connection: its scrubbed, key-ordered form is made once per caller object (and then
 * encoded once, see cachedJson), not per request.
 */
function scrubCaller(caller: Caller, scrubber: Scrubber): Caller {
  return scrubber.caller(caller, () => {
    if (!scrubber.active) return sortKeys(caller);
    const out: Record<string, string> = Object.create(null);
    for (const [k, v] of Object.entries(caller)) out[k] = scrubber.scrub(v);
    return Object.freeze(sortKeys(out));
  });
}

/**
 * The safety net under the caps: a request whose line would not fit MAX_RECORD_BYTES keeps everything but its
 * params and result, which are replaced by `{"cut": <their encoded bytes>}`. The caps above make this unreachable for
 * every method in REDACTION (a test builds the largest record they allow); it exists so that no future field can
 * make an unbounded record.
 */
export function fitRecord(entry: RequestEntry, cutBytes: number): RequestEntry {
  return { ...entry, params: { cut: cutBytes }, result: undefined };
}
