/**
 * Binding params to a typed shape with the reference's rules (PROTOCOL.md): a mistyped member or a params
 * value that is not an object is `Invalid params`, never coerced; unknown members are ignored; `null` counts as
 * absent, for params itself and for each member.
 *
 * Results are built field by field into fresh objects (maps get a null prototype), so a `__proto__` key in a request
 * can never reach an object prototype.
 */
import { isPlainObject, member, type NumberLiterals } from './request.js';

export type FieldKind = 'string' | 'bool' | 'uint64' | 'int64' | 'stringArray' | 'stringMap' | 'bytes' | 'size';
export type Shape = Readonly<Record<string, FieldKind>>;

type FieldType<F extends FieldKind> = F extends 'string'
  ? string
  : F extends 'bool'
    ? boolean
    : F extends 'uint64' | 'int64'
      ? number
      : F extends 'stringArray'
        ? string[]
        : F extends 'stringMap'
          ? Record<string, string>
          : F extends 'bytes'
            ? string | Uint8Array
            : F extends 'size'
              ? { cols: number; rows: number }
              : never;

/** Every field is optional on the wire; `undefined` means absent or null. */
export type Bound<S extends Shape> = { -readonly [K in keyof S]: FieldType<S[K]> | undefined };

const U64_MAX = (1n << 64n) - 1n;
const I64_MIN = -(1n << 63n);
const I64_MAX = (1n << 63n) - 1n;
const INTEGER_LITERAL = /^-?(?:0|[1-9]\d*)$/;

/** Returns the bound params, or undefined when the request deserves `Invalid params`. */
export function bindParams<S extends Shape>(params: unknown, shape: S, literals?: NumberLiterals): Bound<S> | undefined {
  const out: Record<string, unknown> = {};
  if (params === null || params === undefined) {
    for (const name of Object.keys(shape)) out[name] = undefined;
    return out as Bound<S>;
  }
  if (!isPlainObject(params)) return undefined;
  for (const [name, kind] of Object.entries(shape)) {
    const found = member(params, name);
    if (found === undefined || found[1] === null) {
      out[name] = undefined;
      continue;
    }
    const value = bindField(kind, found[1], () => literals?.get(found[0]));
    if (value === INVALID) return undefined;
    out[name] = value;
  }
  return out as Bound<S>;
}

const INVALID = Symbol('invalid');

function bindField(kind: FieldKind, v: unknown, literal: () => string | undefined): unknown {
  switch (kind) {
    case 'string':
      return typeof v === 'string' ? v.toWellFormed() : INVALID;
    case 'bool':
      return typeof v === 'boolean' ? v : INVALID;
    case 'uint64':
      return integer(v, literal, 0n, U64_MAX);
    case 'int64':
      return integer(v, literal, I64_MIN, I64_MAX);
    case 'bytes':
      return typeof v === 'string' || v instanceof Uint8Array ? v : INVALID;
    case 'size': {
      // A terminal size `{cols, rows}`: two integers (their range is the method's to check, with a clearer error).
      if (!isPlainObject(v)) return INVALID;
      const cols = member(v, 'cols');
      const rows = member(v, 'rows');
      const c = cols === undefined ? INVALID : integer(cols[1], () => undefined, -(1n << 63n), (1n << 63n) - 1n);
      const r = rows === undefined ? INVALID : integer(rows[1], () => undefined, -(1n << 63n), (1n << 63n) - 1n);
      return c === INVALID || r === INVALID ? INVALID : { cols: c, rows: r };
    }
    case 'stringArray': {
      if (!Array.isArray(v)) return INVALID;
      const arr: string[] = [];
      for (const e of v) {
        if (e === null) arr.push('');
        else if (typeof e === 'string') arr.push(e.toWellFormed());
        else return INVALID;
      }
      return arr;
    }
    case 'stringMap': {
      if (!isPlainObject(v)) return INVALID;
      const map: Record<string, string> = Object.create(null);
      for (const key of Object.keys(v)) {
        const e = v[key];
        if (e === null) map[key.toWellFormed()] = '';
        else if (typeof e === 'string') map[key.toWellFormed()] = e.toWellFormed();
        else return INVALID;
      }
      return map;
    }
  }
}

/**
 * An integer in [min, max]. With the source literal at hand (NDJSON), `4.0`, `1e2` and out-of-range values are
 * refused exactly as Go refuses them; values beyond 2^53 come back as the nearest double, which is enough for
 * every comparison the methods make against counters that are far below it.
 */
function integer(v: unknown, literal: () => string | undefined, min: bigint, max: bigint): number | typeof INVALID {
  if (typeof v === 'bigint') return v >= min && v <= max ? Number(v) : INVALID;
  if (typeof v !== 'number' || !Number.isInteger(v)) return INVALID;
  const text = literal();
  if (text === undefined) {
    // No source text (MessagePack): the number's own value is all there is.
    return v >= Number(min) && v <= Number(max) ? v : INVALID;
  }
  if (!INTEGER_LITERAL.test(text)) return INVALID;
  // strconv.ParseUint takes no sign at all: Go refuses `-0` for a uint64 field though its value is in range.
  if (min === 0n && text.startsWith('-')) return INVALID;
  const exact = BigInt(text);
  return exact >= min && exact <= max ? v : INVALID;
}
