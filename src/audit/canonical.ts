/**
 * Canonical JSON for audit records, and the bounded string cuts every wire-sourced value goes through.
 *
 * The canonical form is RFC 8785 (JSON Canonicalization Scheme) restricted to what audit records hold:
 * - objects: members sorted by their keys' UTF-16 code units (JavaScript's default string order); a member whose
 *   value is `undefined` is left out (that is how optional fields are absent);
 * - no white space anywhere;
 * - strings: well-formed UTF-16 (lone surrogates are replaced by U+FFFD before a record is built), written as
 *   `JSON.stringify` writes them: `"` and `\` escaped, U+0008/0009/000A/000C/000D as `\b \t \n \f \r`, every other
 *   control character below U+0020 as `\u00xx` in lower-case hex, everything else as itself in UTF-8;
 * - numbers: safe integers only (|n| ≤ 2^53 − 1), in decimal with no sign for zero, no fraction, no exponent. A value
 *   from the wire that is not one (a fraction, a uint64 past 2^53) is recorded as its decimal string instead;
 * - `true`, `false`, `null`; arrays in their order.
 *
 * Because numbers are integers, the rules agree with JCS implementations in every language, so a verifier need not be
 * written in JavaScript (docs/audit-design.md shows one in shell).
 */

export class CanonicalError extends Error {}

/**
 * `obj` itself when its keys are in sorted order, else a copy that has them so. Records build their nested objects
 * this way once (a caller per connection, params per request), so `canonicalJson` finds them sorted and skips its
 * sort on the request path.
 */
export function sortKeys<T extends object>(obj: T): T {
  const keys = Object.keys(obj);
  let sorted = true;
  for (let i = 1; i < keys.length; i++) if (keys[i - 1]! > keys[i]!) sorted = false;
  if (sorted) return obj;
  keys.sort();
  const out: Record<string, unknown> = Object.getPrototypeOf(obj) === null ? Object.create(null) : {};
  for (const k of keys) out[k] = (obj as Record<string, unknown>)[k];
  return out as T;
}

/** Records are shallow (record → params → args); a deeper value is a bug, not data. */
export const MAX_CANONICAL_DEPTH = 8;

export function canonicalJson(value: unknown): string {
  return encode(value, 0);
}

// Written for the request path (every request makes a record): no intermediate arrays, and the sort is skipped for
// objects built in key order already, which records mostly are. bench/figures/audit.mjs measures it.
function encode(value: unknown, depth: number): string {
  switch (typeof value) {
    case 'string':
      return JSON.stringify(value);
    case 'number':
      if (!Number.isSafeInteger(value)) throw new CanonicalError(`not a safe integer: ${value}`);
      return value === 0 ? '0' : String(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'object': {
      if (value === null) return 'null';
      if (depth >= MAX_CANONICAL_DEPTH) throw new CanonicalError('nested too deep');
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) out += (i === 0 ? '' : ',') + encode(value[i], depth + 1);
        return `${out}]`;
      }
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj);
      for (let i = 1; i < keys.length; i++) {
        if (keys[i - 1]! > keys[i]!) {
          keys.sort();
          break;
        }
      }
      let out = '{';
      for (const k of keys) {
        const v = obj[k];
        if (v === undefined) continue;
        out += `${out.length === 1 ? '' : ','}${JSON.stringify(k)}:${encode(v, depth + 1)}`;
      }
      return `${out}}`;
    }
    default:
      throw new CanonicalError(`cannot encode a ${typeof value}`);
  }
}

/**
 * The bytes one code point costs inside a JSON string as `JSON.stringify` writes it (UTF-8). Caps are counted in
 * these encoded bytes, so a string of control characters (six bytes each as `\u00xx`) cannot blow a record up to six
 * times its cap.
 */
export function encodedCost(cp: number): number {
  if (cp === 0x22 || cp === 0x5c) return 2;
  if (cp < 0x20) return cp === 8 || cp === 9 || cp === 10 || cp === 12 || cp === 13 ? 2 : 6;
  if (cp < 0x80) return 1;
  if (cp < 0x800) return 2;
  if (cp < 0x10000) return 3;
  return 4;
}

/** Printable ASCII but `"` and `\`: one byte each, the common case for paths, commands and ids. */
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/** Encoded size of a string's contents (without the quotes). */
export function encodedLength(s: string): number {
  if (PLAIN.test(s)) return s.length;
  let n = 0;
  for (const ch of s) n += encodedCost(ch.codePointAt(0)!);
  return n;
}

/**
 * Cuts `s` so that its encoded contents take at most `cap` bytes including the marker, and says how much was cut:
 * `<kept>…[cut <n> bytes]`, where n counts the UTF-8 bytes removed from the original. Cuts fall on code point
 * boundaries. A string that fits is returned unchanged.
 */
export function cutString(s: string, cap: number): string {
  if (s.length <= cap && PLAIN.test(s)) return s;
  s = s.toWellFormed();
  if (encodedLength(s) <= cap) return s;
  const total = Buffer.byteLength(s);
  // The marker's own length depends on the number it carries: reserve room for the largest it can be.
  const room = Math.max(0, cap - markerCost(total));
  let used = 0;
  let end = 0;
  let keptBytes = 0;
  for (const ch of s) {
    const cp = ch.codePointAt(0)!;
    const cost = encodedCost(cp);
    if (used + cost > room) break;
    used += cost;
    end += ch.length;
    keptBytes += Buffer.byteLength(ch);
  }
  return s.slice(0, end) + marker(total - keptBytes);
}

function marker(cutBytes: number): string {
  // U+2026 costs 3 encoded bytes; the rest is ASCII.
  return `…[cut ${cutBytes} bytes]`;
}

/** The marker's encoded size, for callers that budget several strings. */
export function markerCost(cutBytes: number): number {
  return encodedLength(marker(cutBytes));
}

/**
 * A byte budget shared by several strings of one record (the params), so that many strings each under their own cap
 * still cannot add up past the record's cap. Every string takes `min(its cap, what is left)`. Lists stop taking
 * elements once fewer than MIN_PIECE_BYTES are left (see `spent`) and end with one marker counting the rest, so the
 * overshoot is one marker per field, not one per element.
 */
export class Budget {
  #left: number;

  constructor(bytes: number) {
    this.#left = bytes;
  }

  get left(): number {
    return this.#left;
  }

  /** Too little is left for another list element to say anything. */
  get spent(): boolean {
    return this.#left < MIN_PIECE_BYTES;
  }

  take(s: string, cap: number): string {
    const out = cutString(s, Math.min(cap, Math.max(this.#left, 0)));
    this.#left -= encodedLength(out) + 3; // its quotes and comma
    return out;
  }
}

/** The least budget worth spending on one more list element: its marker alone takes about this much. */
export const MIN_PIECE_BYTES = 32;
