/**
 * Decoding one request into its envelope fields, reproducing what the reference gets from Go's `json.Unmarshal`
 * into a struct (PROTOCOL.md):
 *
 * - The value must be an object or `null` (null decodes to all-empty fields and then fails auth); anything else,
 *   including `[]`, `123` and `"x"`, is a parse error.
 * - `jsonrpc`, `method` and `auth` must be strings when present (null counts as absent); another type makes the
 *   whole line a parse error, as Go's unmarshal error does.
 * - Keys match case-insensitively (`"ID"` fills `id`); where a key appears in several spellings, the exact-case one
 *   wins (Go lets the last one win; see PROTOCOL.md).
 * - The id is echoed as Go re-encodes it: numbers through float64, object keys sorted; a number JSON cannot
 *   represent (`1e400`) is a parse error, as Go's float64 overflow is.
 */

/** The id a reply echoes: as JSON text (Go's re-encoding, for text wires) and as the decoded value (binary wires). */
export interface EchoId {
  readonly json: string;
  readonly value: unknown;
}

export const NULL_ID: EchoId = { json: 'null', value: null };

export interface DecodedRequest {
  /** The id the reply must echo; null when absent. */
  readonly id: EchoId;
  readonly jsonrpc: string;
  readonly method: string;
  readonly auth: string;
  /** `undefined` when the request has no params member; `null` when it is present and null. */
  readonly params: unknown;
  /** Exact source text of a number inside params, where the transport has it (NDJSON); see NumberLiterals. */
  readonly literals: NumberLiterals | undefined;
  /**
   * Extension: the request's own `caller` member as decoded (who the client acts for, for this request only),
   * validated by the gate; `undefined` when absent.
   */
  readonly caller: unknown;
}

/** The reason a value decoded from the wire is not a request. */
export const NOT_A_REQUEST = Symbol('not-a-request');

/**
 * Decodes a parsed wire value. `literals` is given by the NDJSON transport, whose parser loses the text of
 * numbers; MessagePack values carry their integer type and need none.
 */
export function decodeRequest(value: unknown, literalsFor?: (paramsKey: string) => NumberLiterals): DecodedRequest | typeof NOT_A_REQUEST {
  if (value === null) return { id: NULL_ID, jsonrpc: '', method: '', auth: '', params: undefined, literals: undefined, caller: undefined };
  if (!isPlainObject(value)) return NOT_A_REQUEST;
  const jsonrpc = stringField(value, 'jsonrpc');
  const method = stringField(value, 'method');
  const auth = stringField(value, 'auth');
  if (jsonrpc === undefined || method === undefined || auth === undefined) return NOT_A_REQUEST;
  const found = member(value, 'id');
  const idValue = found === undefined ? null : found[1];
  const idJson = encodeId(idValue);
  if (idJson === undefined) return NOT_A_REQUEST;
  const params = member(value, 'params');
  return {
    id: { json: idJson, value: idValue },
    jsonrpc,
    method,
    auth,
    params: params?.[1],
    literals: params !== undefined && literalsFor ? literalsFor(params[0]) : undefined,
    caller: member(value, 'caller')?.[1],
  };
}

/** A JSON object as a decoder builds it; arrays, byte arrays and class instances (a decoded Date) are not. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/**
 * Finds a struct field the way encoding/json does: an exact key first, otherwise any key equal under case folding.
 * Returns the key actually used and its value.
 */
export function member(obj: Record<string, unknown>, name: string): [string, unknown] | undefined {
  if (Object.hasOwn(obj, name)) return [name, obj[name]];
  const folded = fold(name);
  let found: [string, unknown] | undefined;
  for (const key of Object.keys(obj)) {
    if (key.length === name.length && fold(key) === folded) found = [key, obj[key]];
  }
  return found;
}

/** Simple case folding that also catches Go's special folds (U+017F ſ → s, U+212A K → k). */
function fold(s: string): string {
  return s.toUpperCase().toLowerCase();
}

/** A string field: its value, '' when absent or null, undefined when it has another type. */
function stringField(obj: Record<string, unknown>, name: string): string | undefined {
  const m = member(obj, name);
  if (m === undefined || m[1] === null) return '';
  return typeof m[1] === 'string' ? m[1].toWellFormed() : undefined;
}

/** Go's json.Unmarshal rejects nesting deeper than this (the request object itself is the first level). */
export const MAX_NESTING_DEPTH = 10_000;

/**
 * The longest id, as the JSON text the reply would echo, that a request may carry: 64 Ki characters. Beyond it the
 * line is a parse error. Ids are decoded and re-encoded before the token is checked, and the re-encoding can grow
 * an id past its size on the wire (`1e20` echoes as 21 digits; a MessagePack float64 of 9 bytes as up to 24
 * characters): bounding the output bounds what any stranger can make the daemon build and send back.
 * (Divergence: the reference has no bound but its line cap.)
 */
export const MAX_ID_JSON_CHARS = 64 * 1024;

/** An id container being encoded: its members in output order, and how many are written. */
interface OpenContainer {
  readonly values: readonly unknown[];
  /** Object keys, sorted; undefined for an array. */
  readonly keys: readonly string[] | undefined;
  next: number;
}

/**
 * Re-encodes a decoded id as the reference does (decode into interface{}, encode again). Returns undefined for a
 * value Go could not have decoded (a non-finite number, as JSON.parse turns `1e400` into Infinity, or nesting past
 * Go's depth limit) and for an id whose echo would pass MAX_ID_JSON_CHARS.
 *
 * Iterative, not recursive: Go accepts ids nested thousands deep, and a recursive encoder overflows Node's stack
 * near 5,000 levels, which would take the daemon down for any client, before auth.
 */
export function encodeId(value: unknown): string | undefined {
  const open: OpenContainer[] = [];
  let pending = value;
  let out = '';
  for (;;) {
    if (pending !== null && typeof pending === 'object' && !(pending instanceof Uint8Array)) {
      if (open.length >= MAX_NESTING_DEPTH) return undefined;
      if (Array.isArray(pending)) {
        open.push({ values: pending, keys: undefined, next: 0 });
        out += '[';
      } else {
        const obj = pending as Record<string, unknown>;
        const keys = Object.keys(obj).sort(compareCodePoints);
        open.push({ values: keys.map((k) => obj[k]), keys, next: 0 });
        out += '{';
      }
    } else {
      const scalar = encodeScalar(pending);
      if (scalar === undefined) return undefined;
      out += scalar;
    }
    if (out.length > MAX_ID_JSON_CHARS) return undefined;
    // Move to the next member of the innermost unfinished container, closing the finished ones.
    for (;;) {
      const top = open.at(-1);
      if (top === undefined) return out;
      if (top.next < top.values.length) {
        if (top.next > 0) out += ',';
        if (top.keys) out += `${JSON.stringify(top.keys[top.next]!.toWellFormed())}:`;
        pending = top.values[top.next++];
        break;
      }
      out += top.keys ? '}' : ']';
      open.pop();
    }
  }
}

function encodeScalar(value: unknown): string | undefined {
  if (value === null) return 'null';
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'));
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value.toWellFormed());
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      if (!Number.isFinite(value)) return undefined;
      return Object.is(value, -0) ? '-0' : String(value);
    case 'bigint': // MessagePack 64-bit integers: Go would have held them in a float64.
      return encodeScalar(Number(value));
    default:
      return undefined;
  }
}

/** Go sorts map keys by their UTF-8 bytes, which is code-point order (JS's default sort is UTF-16 order). */
function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.codePointAt(i)!;
    const y = b.codePointAt(i)!;
    if (x !== y) return x - y;
    if (x > 0xffff) i++;
  }
  return a.length - b.length;
}

/**
 * Source text of the numbers directly inside one top-level params object.
 *
 * JSON.parse turns `4.0`, `1e2` and `18446744073709551616` into numbers that no longer say how they were written,
 * yet Go rejects all three for a uint64 field and accepts `18446744073709551615`. Only integer params need this,
 * so the line is scanned lazily, on the first question, skipping strings with indexOf: a 1 MiB base64 payload costs
 * one search, not a character loop.
 */
export class NumberLiterals {
  readonly #text: string;
  readonly #paramsKey: string;
  #members: Map<string, string> | null | undefined;

  constructor(text: string, paramsKey: string) {
    this.#text = text;
    this.#paramsKey = paramsKey;
  }

  /** The literal of params member `key` (the exact key chosen by the binder), if it is a number. */
  get(key: string): string | undefined {
    if (this.#members === undefined) this.#members = scanParams(this.#text, this.#paramsKey);
    return this.#members?.get(key);
  }
}

// The scanner below runs only on text JSON.parse has already accepted, so it needs no error handling.

function scanParams(text: string, paramsKey: string): Map<string, string> | null {
  let i = skipWs(text, 0);
  if (text[i] !== '{') return null;
  let found: Map<string, string> | null = null;
  i = skipWs(text, i + 1);
  while (text[i] !== '}') {
    const [key, afterKey] = readString(text, i);
    i = skipWs(text, skipWs(text, afterKey) + 1); // past ':'
    if (key === paramsKey && text[i] === '{') {
      const [members, end] = scanObjectNumbers(text, i);
      found = members; // the last occurrence wins, as in JSON.parse
      i = end;
    } else {
      i = skipValue(text, i);
    }
    i = skipWs(text, i);
    if (text[i] === ',') i = skipWs(text, i + 1);
  }
  return found;
}

function scanObjectNumbers(text: string, start: number): [Map<string, string>, number] {
  const members = new Map<string, string>();
  let i = skipWs(text, start + 1);
  while (text[i] !== '}') {
    const [key, afterKey] = readString(text, i);
    i = skipWs(text, skipWs(text, afterKey) + 1);
    const end = skipValue(text, i);
    const c = text.charCodeAt(i);
    if (c === 45 /* - */ || (c >= 48 && c <= 57)) members.set(key, text.slice(i, end));
    i = skipWs(text, end);
    if (text[i] === ',') i = skipWs(text, i + 1);
  }
  return [members, i + 1];
}

function skipWs(text: string, i: number): number {
  for (;;) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 10 && c !== 13) return i;
    i++;
  }
}

/** Reads the string starting at the quote at `i`; returns its decoded value and the index after it. */
function readString(text: string, i: number): [string, number] {
  const end = stringEnd(text, i);
  const raw = text.slice(i, end);
  return [raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1), end];
}

function stringEnd(text: string, i: number): number {
  let from = i + 1;
  for (;;) {
    const q = text.indexOf('"', from);
    let k = q - 1;
    while (text.charCodeAt(k) === 92 /* \ */) k--;
    if ((q - 1 - k) % 2 === 0) return q + 1;
    from = q + 1;
  }
}

function skipValue(text: string, i: number): number {
  const c = text[i];
  if (c === '"') return stringEnd(text, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let j = i; ; j++) {
      const d = text[j];
      if (d === '"') j = stringEnd(text, j) - 1;
      else if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') {
        if (--depth === 0) return j + 1;
      }
    }
  }
  let j = i;
  while (j < text.length && !',}] \t\n\r'.includes(text[j]!)) j++;
  return j;
}
