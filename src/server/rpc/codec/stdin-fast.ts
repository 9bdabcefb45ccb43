/**
 * The stdin fast path: one NDJSON line holding a `process.stdin` request, decoded without turning the line or its
 * base64 `data` into JavaScript strings.
 *
 * Why: strings over V8's large-object threshold (128 KiB) get fresh pages from the kernel each time they are made,
 * and a 512 KiB stdin write is a 700 KB line. The general path (decodeLine → bindParams → decodeBase64Strict) makes
 * three such strings per request (the line, the parsed `data`, and Go-style validation works on them), and the daemon
 * spent 32% of its stdin time in JSON.parse, 21% decoding the line's UTF-8, 18% in GC and 9% in base64, with about
 * 870 page faults per MiB (issue 15; bench/figures/stdin-parse.mjs measures both paths).
 *
 * Here the envelope is read from the bytes, and the base64 is decoded straight from the line in slices of
 * DATA_SLICE_CHARS characters, each a short-lived string far under the threshold, into one output buffer sized
 * exactly in advance.
 *
 * The contract: parseStdinLine returns undefined ("not handled here") for anything it does not recognise with
 * certainty, and the caller then runs the general path on the same bytes. Whenever it returns a request, the general
 * path would have produced the same envelope, the same bound params and the same data bytes
 * (test/server/rpc/codec/stdin-fast.unit.test.ts checks this on generated valid, near-valid and hostile lines). It returns
 * undefined for:
 * - any method but `process.stdin`, and any line the general path would answer with an error (parse error, invalid
 *   params, invalid base64: the general path then produces that error and its exact message);
 * - a backslash or a control character inside any string it reads (escapes are left to JSON.parse);
 * - invalid UTF-8 inside a string it keeps (the general path replaces it Go's way);
 * - a key written with a backslash or with non-ASCII bytes, a known key twice, or a case variant of a known key
 *   (`"ID"`, `"Params"`: the reference matches keys case-insensitively, see member() in src/server/request.ts);
 * - an array or object anywhere but `params`, an id that is not a string, number, boolean or null, an unknown member
 *   whose value is an array or object;
 * - `params` absent, null or not an object; `offset` that is not a plain unsigned integer literal within uint64;
 * - a `caller` member that is not null (the gate checks it).
 * Whitespace (space, tab, CR, LF) is accepted wherever JSON allows it.
 */
import { isUtf8 } from 'node:buffer';
import { type DecodedRequest, type EchoId, encodeId, NULL_ID, NumberLiterals } from '../request.js';

/** The only method this path decodes. */
export const STDIN_METHOD = 'process.stdin';

/**
 * Base64 characters decoded per step: 64 KiB, so each slice's string (one byte per character plus a 16-byte header)
 * stays in V8's young generation, under its 128 KiB large-object threshold. A multiple of 4, so every slice but the
 * last is whole base64 groups. Slices of 4–64 KiB all decoded at 0.2–0.4 ms/MiB on the development machine
 * (bench/figures/stdin-parse.mjs prints the comparison); 64 KiB makes the fewest calls.
 */
export const DATA_SLICE_CHARS = 64 * 1024;

/**
 * Lines shorter than this are cheaper to leave to the general path than to scan twice when they are not stdin
 * requests: their strings are young-generation anyway. 16 KiB of line is 12 KiB of stdin data.
 */
export const STDIN_FAST_PATH_MIN_LINE_BYTES = 16 * 1024;

/** A `process.stdin` request decoded by the fast path. */
export interface StdinRequest {
  /** The id the reply echoes, as the general path computes it (Go's re-encoding of the decoded value). */
  readonly id: EchoId;
  readonly jsonrpc: string;
  readonly method: typeof STDIN_METHOD;
  readonly auth: string;
  readonly params: StdinParams;
}

export interface StdinParams {
  /** undefined when absent or null, as bindParams gives it. */
  readonly id: string | undefined;
  /** The decoded bytes, in a buffer from `alloc` that the caller owns; empty when `data` is absent or null. */
  readonly data: Buffer;
  /** The offset's value, as bindParams gives it (the nearest double above 2^53). */
  readonly offset: number | undefined;
  /** The offset exactly as written on the wire. */
  readonly offsetLiteral: string | undefined;
  readonly eof: boolean | undefined;
}

/** Allocates the output of one request's data; it must return at least `bytes` bytes the caller may keep. */
export type DataAllocator = (bytes: number) => Buffer;

/**
 * A buffer the caller keeps (a pipe write may hold it until the child reads it). `allocUnsafeSlow` because the bytes
 * are all overwritten and, at these sizes, Buffer's shared pool is never used anyway.
 */
const defaultAlloc: DataAllocator = (bytes) => Buffer.allocUnsafeSlow(bytes);

/**
 * Decodes one NDJSON line (the bytes between newlines, a trailing `\r` allowed) if it is a `process.stdin` request
 * this path is sure of; undefined otherwise, and the caller runs the general path on the same line.
 */
export function parseStdinLine(line: Buffer, alloc: DataAllocator = defaultAlloc): StdinRequest | undefined {
  const s = new Scanner(line);
  const top = s.object(TOP_KEYS, true);
  if (top === undefined || s.skipWs() !== line.length) return undefined;
  const method = top.get('method');
  if (method?.kind !== 'string' || !bytesEqual(line, method.start, method.end, STDIN_METHOD_BYTES)) return undefined;
  const params = top.get('params');
  if (params?.kind !== 'object') return undefined;
  const caller = top.get('caller');
  if (caller !== undefined && caller.kind !== 'null') return undefined;

  const jsonrpc = optionalString(line, top.get('jsonrpc'));
  const auth = optionalString(line, top.get('auth'));
  if (jsonrpc === undefined || auth === undefined) return undefined;
  const id = echoId(line, top.get('id'));
  if (id === undefined) return undefined;

  const p = params.members;
  const pid = p.get('id');
  let processId: string | undefined;
  if (pid !== undefined && pid.kind !== 'null') {
    if (pid.kind !== 'string') return undefined;
    processId = stringOf(line, pid);
    if (processId === undefined) return undefined;
  }
  const eofToken = p.get('eof');
  let eof: boolean | undefined;
  if (eofToken !== undefined && eofToken.kind !== 'null') {
    if (eofToken.kind !== 'true' && eofToken.kind !== 'false') return undefined;
    eof = eofToken.kind === 'true';
  }
  const offsetToken = p.get('offset');
  let offsetLiteral: string | undefined;
  if (offsetToken !== undefined && offsetToken.kind !== 'null') {
    if (offsetToken.kind !== 'number') return undefined;
    offsetLiteral = uint64Literal(line, offsetToken.start, offsetToken.end);
    if (offsetLiteral === undefined) return undefined;
  }
  const dataToken = p.get('data');
  let data: Buffer;
  if (dataToken === undefined || dataToken.kind === 'null') {
    data = Buffer.alloc(0);
  } else {
    if (dataToken.kind !== 'string') return undefined;
    const decoded = decodeBase64Slices(line, dataToken.start, dataToken.end, alloc);
    if (decoded === undefined) return undefined;
    data = decoded;
  }
  return {
    id,
    jsonrpc,
    method: STDIN_METHOD,
    auth,
    params: { id: processId, data, offset: offsetLiteral === undefined ? undefined : Number(offsetLiteral), offsetLiteral, eof },
  };
}

/**
 * The same request in the general path's shape, for decodeLine to return: dispatch, bindParams and the
 * process.stdin handler then run unchanged. `data` goes in as bytes (bindParams' `bytes` kind accepts them, as it
 * does from MessagePack), so the handler does not decode base64 again; the offset's literal is kept for bindParams'
 * uint64 check.
 */
export function asDecodedRequest(req: StdinRequest): DecodedRequest {
  const p = req.params;
  // Absent members become null, which bindParams reads as absent; an own member holding undefined would be mistyped.
  const params = { id: p.id ?? null, data: p.data, offset: p.offset ?? null, eof: p.eof ?? null };
  return {
    id: req.id,
    jsonrpc: req.jsonrpc,
    method: req.method,
    auth: req.auth,
    params,
    literals: p.offsetLiteral === undefined ? undefined : new NumberLiterals(`{"p":{"offset":${p.offsetLiteral}}}`, 'p'),
    caller: undefined,
  };
}

// ---- the scanner ----

type Token =
  | { readonly kind: 'string' | 'number'; readonly start: number; readonly end: number }
  | { readonly kind: 'true' | 'false' | 'null' }
  | { readonly kind: 'object'; readonly members: Map<string, Token> };

/** Known keys of the request object and of its params; any other key's scalar value is skipped. */
// `caller` is known so that a request carrying one (any spelling) goes to the general path, whose gate checks it.
const TOP_KEYS: ReadonlySet<string> = new Set(['jsonrpc', 'id', 'method', 'auth', 'params', 'caller']);
const PARAMS_KEYS: ReadonlySet<string> = new Set(['id', 'data', 'offset', 'eof']);
const STDIN_METHOD_BYTES = Buffer.from(STDIN_METHOD, 'latin1');

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const COLON = 0x3a;
const OPEN = 0x7b;
const CLOSE = 0x7d;
const MINUS = 0x2d;

class Scanner {
  readonly #b: Buffer;
  #i = 0;

  constructor(b: Buffer) {
    this.#b = b;
  }

  /** Skips JSON whitespace from the current position and returns the new position. */
  skipWs(): number {
    const b = this.#b;
    let i = this.#i;
    while (i < b.length) {
      const c = b[i]!;
      if (c !== 0x20 && c !== 0x09 && c !== 0x0d && c !== 0x0a) break;
      i++;
    }
    this.#i = i;
    return i;
  }

  /**
   * An object whose known keys are `known`; at the top level `params` may be an object, nothing else may. Returns the
   * known members, or undefined for anything outside what this path handles.
   */
  object(known: ReadonlySet<string>, top: boolean): Map<string, Token> | undefined {
    const b = this.#b;
    if (b[this.skipWs()] !== OPEN) return undefined;
    this.#i++;
    const members = new Map<string, Token>();
    if (b[this.skipWs()] === CLOSE) {
      this.#i++;
      return members;
    }
    for (;;) {
      const key = this.#key(known);
      if (key === undefined) return undefined;
      if (b[this.skipWs()] !== COLON) return undefined;
      this.#i++;
      let value: Token | undefined;
      if (top && key === 'params') {
        const inner = this.object(PARAMS_KEYS, false);
        value = inner && { kind: 'object', members: inner };
      } else {
        value = this.#scalar(key === 'data' && !top);
      }
      if (value === undefined) return undefined;
      if (known.has(key)) {
        if (members.has(key)) return undefined; // a duplicate: JSON.parse keeps the last, member() may not
        members.set(key, value);
      }
      const c = b[this.skipWs()];
      this.#i++;
      if (c === CLOSE) return members;
      if (c !== COMMA) return undefined;
    }
  }

  /**
   * A key: printable ASCII without a backslash. Returns it, or '' for an unknown key; undefined for a key this path
   * does not handle, including a case variant of a known one, which member() would match.
   */
  #key(known: ReadonlySet<string>): string | undefined {
    const b = this.#b;
    let i = this.skipWs();
    if (b[i] !== QUOTE) return undefined;
    const start = ++i;
    let lower = false;
    for (;;) {
      const c = b[i];
      if (c === undefined || c < 0x20 || c >= 0x7f || c === BACKSLASH) return undefined;
      if (c === QUOTE) break;
      if (c >= 0x41 && c <= 0x5a) lower = true;
      i++;
    }
    this.#i = i + 1;
    const key = b.toString('latin1', start, i);
    if (known.has(key)) return key;
    if (lower && known.has(key.toLowerCase())) return undefined;
    return '';
  }

  /**
   * A string, number, true, false or null. A string's content is checked byte by byte except for `data`, which may
   * be most of a megabyte: its end is found with a native search and its content is checked by the base64 decode.
   */
  #scalar(bulk: boolean): Token | undefined {
    const b = this.#b;
    const i = this.skipWs();
    const c = b[i];
    if (c === QUOTE) {
      const start = i + 1;
      const end = b.indexOf(QUOTE, start);
      if (end === -1) return undefined;
      if (!bulk) {
        for (let k = start; k < end; k++) {
          const x = b[k]!;
          if (x < 0x20 || x === BACKSLASH) return undefined;
        }
      }
      this.#i = end + 1;
      return { kind: 'string', start, end };
    }
    if (c === MINUS || (c !== undefined && c >= 0x30 && c <= 0x39)) {
      const end = numberEnd(b, i);
      if (end === -1) return undefined;
      this.#i = end;
      return { kind: 'number', start: i, end };
    }
    for (const word of WORDS) {
      if (bytesEqual(b, i, i + word.bytes.length, word.bytes)) {
        this.#i = i + word.bytes.length;
        return word.token;
      }
    }
    return undefined;
  }
}

const WORDS = (['true', 'false', 'null'] as const).map((w) => ({ bytes: Buffer.from(w, 'latin1'), token: { kind: w } as Token }));

/** The end of the JSON number starting at `i` (RFC 8259 grammar), or -1 when it is not one. */
function numberEnd(b: Buffer, i: number): number {
  const digit = (k: number) => {
    const c = b[k];
    return c !== undefined && c >= 0x30 && c <= 0x39;
  };
  if (b[i] === MINUS) i++;
  if (b[i] === 0x30) i++;
  else if (digit(i)) while (digit(i)) i++;
  else return -1;
  if (b[i] === 0x2e /* . */) {
    i++;
    if (!digit(i)) return -1;
    while (digit(i)) i++;
  }
  if (b[i] === 0x65 || b[i] === 0x45 /* e E */) {
    i++;
    if (b[i] === 0x2b || b[i] === MINUS) i++;
    if (!digit(i)) return -1;
    while (digit(i)) i++;
  }
  return i;
}

const U64_MAX_LITERAL = '18446744073709551615';

/**
 * The literal of an unsigned integer within uint64, as bindParams accepts it from NDJSON (no sign, fraction or
 * exponent; Go refuses `-0`, `4.0` and `1e2` for a uint64); undefined for any other number.
 */
function uint64Literal(b: Buffer, start: number, end: number): string | undefined {
  for (let k = start; k < end; k++) {
    const c = b[k]!;
    if (c < 0x30 || c > 0x39) return undefined;
  }
  const text = b.toString('latin1', start, end);
  if (text.length > U64_MAX_LITERAL.length || (text.length === U64_MAX_LITERAL.length && text > U64_MAX_LITERAL)) return undefined;
  return text;
}

/**
 * A string's value, decoded as the general path does when the bytes are valid UTF-8 (which decodes the whole line
 * the same way); undefined for invalid UTF-8, which the general path replaces Go's way, byte by byte.
 */
function stringOf(b: Buffer, t: { start: number; end: number }): string | undefined {
  let ascii = true;
  for (let k = t.start; k < t.end; k++) {
    if (b[k]! >= 0x80) {
      ascii = false;
      break;
    }
  }
  if (ascii) return b.toString('latin1', t.start, t.end);
  const bytes = b.subarray(t.start, t.end);
  return isUtf8(bytes) ? bytes.toString('utf8') : undefined;
}

/** jsonrpc and auth: a string, or '' when absent or null (decodeRequest's stringField); undefined otherwise. */
function optionalString(b: Buffer, t: Token | undefined): string | undefined {
  if (t === undefined || t.kind === 'null') return '';
  return t.kind === 'string' ? stringOf(b, t) : undefined;
}

/** The echoed id exactly as decodeRequest computes it: encodeId of the decoded value. */
function echoId(b: Buffer, t: Token | undefined): EchoId | undefined {
  if (t === undefined || t.kind === 'null') return NULL_ID;
  let value: unknown;
  switch (t.kind) {
    case 'true':
      value = true;
      break;
    case 'false':
      value = false;
      break;
    case 'number':
      value = JSON.parse(b.toString('latin1', t.start, t.end));
      break;
    case 'string':
      value = stringOf(b, t);
      if (value === undefined) return undefined;
      break;
    default:
      return undefined;
  }
  const json = encodeId(value);
  return json === undefined ? undefined : { json, value };
}

function bytesEqual(b: Buffer, start: number, end: number, want: Buffer): boolean {
  if (end - start !== want.length || end > b.length) return false;
  for (let k = 0; k < want.length; k++) if (b[start + k] !== want[k]) return false;
  return true;
}

/**
 * Decodes base64 text held in `line[start, end)` with exactly the rules of decodeBase64Strict (Go's StdEncoding:
 * padding required, standard alphabet only), slice by slice into one buffer from `alloc`; undefined when it would be
 * refused, or when it holds `\r` or `\n` (which the strict decoder skips: only reachable through an escape or a raw
 * control character, both refused before this).
 *
 * Node's base64 decoder skips characters outside its alphabet and stops at `=`, so a slice decodes to exactly
 * 3/4 of its length (less the padding, for the last) only if every character is in the alphabet or is trailing
 * padding; `-` and `_`, which it also takes (the URL alphabet), are searched for separately.
 */
function decodeBase64Slices(line: Buffer, start: number, end: number, alloc: DataAllocator): Buffer | undefined {
  const length = end - start;
  if (length % 4 !== 0) return undefined;
  const dash = line.indexOf(MINUS, start);
  if (dash !== -1 && dash < end) return undefined;
  const underscore = line.indexOf(0x5f /* _ */, start);
  if (underscore !== -1 && underscore < end) return undefined;
  const padding = length === 0 || line[end - 1] !== 0x3d ? 0 : line[end - 2] === 0x3d ? 2 : 1;
  const size = (length / 4) * 3 - padding;
  const out = alloc(size);
  if (out.length < size) throw new RangeError(`stdin data allocator returned ${out.length} bytes for ${size}`);
  let written = 0;
  for (let at = start; at < end; at += DATA_SLICE_CHARS) {
    const stop = Math.min(end, at + DATA_SLICE_CHARS);
    const want = ((stop - at) / 4) * 3 - (stop === end ? padding : 0);
    if (out.write(line.toString('latin1', at, stop), written, want, 'base64') !== want) return undefined;
    written += want;
  }
  return out.length === size ? out : out.subarray(0, size);
}
