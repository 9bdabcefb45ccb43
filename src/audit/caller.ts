/**
 * Caller identity as a client asserts it: `session.identify {caller}` once per connection, or a request's own
 * top-level `caller`, which overrides the connection's for that request. The daemon cannot verify any of it, so the
 * audit records it as asserted, beside what the daemon does know (transport, connection, peer process).
 *
 * Shape: an object of at most MAX_CALLER_FIELDS string members, `driver` and `identity` required (`runId` and any
 * other names optional). Names are short identifiers; values are non-empty printable text of bounded size. Bad input
 * is refused with a reason, never cut or coerced: an identity that was shortened would be a different identity.
 */
import { member } from '../server/rpc/request.js';
import { sortKeys } from './canonical.js';

/** Most members one caller may carry (driver, identity, runId and five more). */
export const MAX_CALLER_FIELDS = 8;
/** Longest member name, in bytes: names are identifiers such as `runId`, not data. */
export const MAX_CALLER_NAME_BYTES = 32;
/** Longest member value, in UTF-8 bytes: an e-mail address, a CI run URL, a host name fit. */
export const MAX_CALLER_VALUE_BYTES = 256;

/** The members every caller must assert. */
export const REQUIRED_CALLER_FIELDS = ['driver', 'identity'] as const;

/** A validated caller: its members by name, in a null-prototype object. */
export type Caller = Readonly<Record<string, string>>;

export type CallerResult = { readonly ok: true; readonly caller: Caller } | { readonly ok: false; readonly reason: string };

const NAME = /^[A-Za-z][A-Za-z0-9_]*$/;
// C0 controls, DEL and C1 controls: invisible in a terminal, and a line break would let one field fake another line.
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly the characters refused
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Validates a caller value from the wire. The reasons complete the catalogue text `Invalid caller: <reason>` and
 * say what to change.
 */
export function parseCaller(value: unknown): CallerResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    return { ok: false, reason: 'caller must be an object of strings, such as {"driver":"ci","identity":"alice@example.com"}' };
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return { ok: false, reason: 'caller must be a plain object' };
  const keys = Object.keys(value);
  if (keys.length > MAX_CALLER_FIELDS) return { ok: false, reason: `caller has ${keys.length} members; at most ${MAX_CALLER_FIELDS} are allowed` };
  const out: Record<string, string> = Object.create(null);
  for (const key of keys) {
    if (!NAME.test(key) || Buffer.byteLength(key) > MAX_CALLER_NAME_BYTES) {
      return {
        ok: false,
        reason: `member name ${JSON.stringify(key.slice(0, 64))} is not allowed; use a letter followed by letters, digits or _, at most ${MAX_CALLER_NAME_BYTES} bytes`,
      };
    }
    const v = (value as Record<string, unknown>)[key];
    if (typeof v !== 'string') return { ok: false, reason: `${key} must be a string` };
    if (v.length === 0) return { ok: false, reason: `${key} must not be empty` };
    if (!v.isWellFormed()) return { ok: false, reason: `${key} is not valid Unicode text` };
    if (CONTROL.test(v)) return { ok: false, reason: `${key} contains a control character` };
    const bytes = Buffer.byteLength(v);
    if (bytes > MAX_CALLER_VALUE_BYTES) return { ok: false, reason: `${key} is ${bytes} bytes; at most ${MAX_CALLER_VALUE_BYTES} are allowed` };
    out[key] = v;
  }
  for (const required of REQUIRED_CALLER_FIELDS) {
    if (!(required in out)) return { ok: false, reason: `${required} is required` };
  }
  return { ok: true, caller: Object.freeze(sortKeys(out)) };
}

/**
 * `session.identify`: what a connection asserts for all its requests. The outcomes name the catalogue entry the
 * RPC layer answers with (docs/audit-design.md lists them with their texts).
 */
export type IdentifyOutcome =
  | { readonly ok: true; readonly caller: Caller }
  | { readonly ok: false; readonly error: 'invalidParams' }
  | { readonly ok: false; readonly error: 'invalidCaller'; readonly reason: string }
  | { readonly ok: false; readonly error: 'callerAlreadyDeclared' };

/**
 * `params` as decoded from the wire (`undefined` when absent), `current` the connection's caller so far. A
 * connection identifies once: a second call is refused, so every record of a connection before and after a given
 * point can be attributed without replaying its history.
 */
export function identify(params: unknown, current: Caller | undefined): IdentifyOutcome {
  if (typeof params !== 'object' || params === null || Array.isArray(params)) return { ok: false, error: 'invalidParams' };
  if (current !== undefined) return { ok: false, error: 'callerAlreadyDeclared' };
  const caller = member(params as Record<string, unknown>, 'caller')?.[1];
  if (caller === undefined || caller === null) return { ok: false, error: 'invalidCaller', reason: 'caller is required' };
  const parsed = parseCaller(caller);
  return parsed.ok ? parsed : { ok: false, error: 'invalidCaller', reason: parsed.reason };
}
