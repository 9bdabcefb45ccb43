/**
 * Log lines that strangers cannot forge or flood (issue 10, point 4; SECURITY.md T17).
 *
 * Every message is escaped before it is written: a newline, carriage return, any other C0 or C1 control character,
 * DEL, and the Unicode line and paragraph separators become visible escapes, so a string from the wire can never
 * start a log line of its own or drive a terminal. A message is cut at LOG_LINE_MAX_CHARS, and a string from the
 * wire quoted in one (a method, an id, an Origin) at WIRE_TEXT_MAX_CHARS.
 */

/** A string from the wire quoted in a log line keeps at most this many characters (256). */
export const WIRE_TEXT_MAX_CHARS = 256;
/** A whole log message keeps at most this many characters (16,384: a stack trace fits). */
export const LOG_LINE_MAX_CHARS = 16_384;
/** Refusals of one kind (unauthorized, refused upgrade, over-long request) logged per window: 10; the rest counted. */
export const REFUSAL_LOG_BURST = 10;
/** The refusal window: 10 s. At its end, what it suppressed is logged as one line with the count. */
export const REFUSAL_LOG_WINDOW_MS = 10_000;

/** Escapes control characters (see above) and cuts `s` to `max` characters, saying how many were cut. */
export function escapeLogText(s: string, max: number): string {
  const cut = s.length > max ? s.slice(0, max) : s;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  let out = cut.toWellFormed().replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g, escapeOne);
  if (s.length > max) out += `… (${s.length - max} more characters)`;
  return out;
}

function escapeOne(c: string): string {
  switch (c) {
    case '\n':
      return '\\n';
    case '\r':
      return '\\r';
    case '\t':
      return '\\t';
  }
  const code = c.charCodeAt(0);
  return code < 0x80 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

/** A string from the wire, ready to quote in a log message. */
export function wireText(s: string): string {
  return escapeLogText(s, WIRE_TEXT_MAX_CHARS);
}
