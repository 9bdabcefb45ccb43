/**
 * HUD lines: `[keyword] k:v k:v …` console lines, parsed and rendered. PRESENTATION ONLY.
 *
 * The parser exists to style console output and HUD views (libostk's envelope heuristics). It must never be used as
 * input to any state: nothing the daemon or a client decides may depend on what it returns. A console line is
 * whatever a child process printed, so anyone can print a line that looks like an audit record; the audit log and its
 * verifier are the record, never a parsed console line.
 *
 * This file imports nothing (not even node built-ins): the client library exports it (`claustrum/client`), and
 * `-audit-tail -pretty` (src/audit/cli.ts) renders records with it.
 *
 * Grammar (white space is spaces and tabs):
 *
 *     line    = ws* "[" keyword "]" (ws+ token)* ws*
 *     keyword = 1 to 64 of [A-Za-z0-9_.:/-]
 *     token   = key ":" value | word
 *     key     = [A-Za-z_] followed by up to 63 of [A-Za-z0-9_.-]
 *     value   = a JSON string ("a \"quoted\" value") | any run of non-white-space (may hold ':', as URLs do)
 *     word    = any other run of non-white-space
 *
 * A repeated key keeps its last value. A line longer than MAX_HUD_LINE_CHARS, with more than MAX_HUD_FIELDS fields,
 * or not of this shape, is not an envelope (`undefined`): the caller shows it as plain text.
 */

/** Longer lines are not parsed: a HUD line is one screen line, not a payload. */
export const MAX_HUD_LINE_CHARS = 8192;
/** Most fields one envelope may carry. */
export const MAX_HUD_FIELDS = 64;

export interface Envelope {
  /** The keyword between the brackets: `fs_ops` in `[fs_ops] action:write`. */
  readonly subsystem: string;
  /** The `k:v` fields, in a null-prototype object (a `__proto__` key is just a key). */
  readonly fields: Readonly<Record<string, string>>;
  /** Tokens that are not `k:v`, in order. */
  readonly words: readonly string[];
}

const HEAD = /^[ \t]*\[([A-Za-z0-9_.:/-]{1,64})\](?=[ \t]|$)/;
const KEY = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** Parses one console line (without its newline); `undefined` when it is not an envelope. */
export function parseEnvelope(line: string): Envelope | undefined {
  if (line.length > MAX_HUD_LINE_CHARS) return undefined;
  const head = HEAD.exec(line);
  if (head === null) return undefined;
  const fields: Record<string, string> = Object.create(null);
  const words: string[] = [];
  let count = 0;
  let i = head[0].length;
  for (;;) {
    while (line[i] === ' ' || line[i] === '\t') i++;
    if (i >= line.length) break;
    const start = i;
    const colon = keyEnd(line, i);
    if (colon !== -1 && line[colon + 1] === '"') {
      const end = quotedEnd(line, colon + 1);
      if (end === -1) return undefined;
      let value: string;
      try {
        value = JSON.parse(line.slice(colon + 1, end)) as string;
      } catch {
        return undefined;
      }
      if (++count > MAX_HUD_FIELDS) return undefined;
      fields[line.slice(start, colon)] = value;
      i = end;
      if (i < line.length && line[i] !== ' ' && line[i] !== '\t') return undefined;
      continue;
    }
    while (i < line.length && line[i] !== ' ' && line[i] !== '\t') i++;
    const token = line.slice(start, i);
    if (colon !== -1 && colon < i) {
      if (++count > MAX_HUD_FIELDS) return undefined;
      fields[token.slice(0, colon - start)] = token.slice(colon - start + 1);
    } else {
      words.push(token);
    }
  }
  return { subsystem: head[1]!, fields, words };
}

/** Index of the ':' ending a key that starts at `i`, or -1 when the token there is not `key:…`. */
function keyEnd(line: string, i: number): number {
  let j = i;
  while (j < line.length && j - i <= 64 && line[j] !== ':' && line[j] !== ' ' && line[j] !== '\t') j++;
  if (line[j] !== ':' || !KEY.test(line.slice(i, j))) return -1;
  return j;
}

/** Index just past the JSON string starting with the quote at `q`, or -1 if it does not end on this line. */
function quotedEnd(line: string, q: number): number {
  for (let j = q + 1; j < line.length; j++) {
    if (line[j] === '\\') j++;
    else if (line[j] === '"') return j + 1;
  }
  return -1;
}

/** Renders an envelope so that `parseEnvelope` gives the same subsystem and fields back. */
export function formatEnvelope(subsystem: string, fields: Iterable<readonly [string, string]>): string {
  let out = `[${subsystem}]`;
  for (const [k, v] of fields) out += ` ${k}:${needsQuotes(v) ? JSON.stringify(v) : v}`;
  return out;
}

function needsQuotes(v: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters must be escaped on a console line
  return v === '' || v.startsWith('"') || /[\s\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(v);
}

// ------------------------------------------------------------------------------------------------ audit records

/**
 * An audit record (parsed JSON) as one HUD line, for `claustrum -audit-tail -pretty`: `[audit.<kind>]`, then the
 * chain position, who, what and how it ended. Presentation only, like everything here; typed structurally so this
 * file needs no import.
 */
export function renderRecordHud(record: Readonly<Record<string, unknown>>): string {
  const fields: [string, string][] = [];
  const put = (k: string, v: unknown) => {
    const s = flat(v);
    if (s !== undefined) fields.push([k, s]);
  };
  put('seq', record.seq);
  put('ts', record.ts);
  if (record.lost !== undefined) put('LOST', record.lost);
  if (record.refused !== undefined) put('refused', record.refused);
  switch (record.kind) {
    case 'request': {
      put('conn', record.conn);
      put('transport', record.transport);
      const peer = record.peer as Record<string, unknown> | null | undefined;
      if (peer?.kind === 'unix') {
        put('pid', peer.pid);
        put('uid', peer.uid);
        put('comm', peer.comm);
      } else if (peer?.kind === 'ws') {
        put('addr', `${peer.address}:${peer.port}`);
        put('origin', peer.origin);
      }
      const caller = record.caller as Record<string, unknown> | null | undefined;
      if (caller) for (const [k, v] of Object.entries(caller)) put(`caller.${k}`, v);
      if (record.authenticated === false) put('auth', 'none');
      put('method', record.method);
      put('id', record.id);
      const params = record.params as Record<string, unknown> | null | undefined;
      if (params) for (const [k, v] of Object.entries(params)) put(k, v);
      const outcome = record.outcome;
      if (outcome === 'ok') put('outcome', 'ok');
      else if (typeof outcome === 'object' && outcome !== null) {
        const o = outcome as Record<string, unknown>;
        put('outcome', o.code);
        put('error', o.message);
      }
      const result = record.result as Record<string, unknown> | undefined;
      if (result) for (const [k, v] of Object.entries(result)) put(`result.${k}`, v);
      put('ms', record.ms);
      break;
    }
    case 'exit':
      for (const k of ['processId', 'pid', 'exitCode', 'signal', 'killedBy', 'ms', 'stdoutBytes', 'stderrBytes']) put(k, record[k]);
      break;
    case 'header':
      for (const k of ['file', 'reason', 'pid', 'version', 'log']) put(k, record[k]);
      break;
    default:
      for (const [k, v] of Object.entries(record)) if (!['seq', 'ts', 'kind', 'prev', 'hash', 'log'].includes(k)) put(k, v);
  }
  return formatEnvelope(`audit.${typeof record.kind === 'string' ? record.kind : 'record'}`, fields);
}

function flat(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  // A list reads like a command line: elements with white space or quotes in them are quoted.
  if (Array.isArray(v)) return v.map((e) => (typeof e === 'string' && !needsQuotes(e) ? e : JSON.stringify(e))).join(' ');
  return JSON.stringify(v);
}
