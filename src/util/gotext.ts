/**
 * Text the way the reference daemon's Go standard library writes it, for wire texts that must match byte for byte:
 * `%q` quoting (strconv.Quote), the decoding of raw bytes into a JSON string (encoding/json replaces each invalid
 * UTF-8 byte with one U+FFFD), and the text of a process's exit (os/exec's `exit status 1`, `signal: killed`).
 */
import { isUtf8 } from 'node:buffer';

const PRINTABLE = /^[\p{L}\p{M}\p{N}\p{P}\p{S}]$/u;

/** Go's unicode.IsPrint: letters, marks, numbers, punctuation, symbols and the ASCII space. */
export function isGoPrintable(ch: string): boolean {
  return ch === ' ' || PRINTABLE.test(ch);
}

const ESCAPES: Readonly<Record<string, string>> = {
  '\x07': '\\a',
  '\b': '\\b',
  '\f': '\\f',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
  '\v': '\\v',
  '\\': '\\\\',
  '"': '\\"',
};

/** Go's strconv.Quote (the `%q` verb) for a string that is already well-formed Unicode; typed as quoted text. */
export function goQuote(s: string): `"${string}"` {
  let out = '';
  for (const ch of s) {
    const esc = ESCAPES[ch];
    if (esc !== undefined) {
      out += esc;
      continue;
    }
    if (isGoPrintable(ch)) {
      out += ch;
      continue;
    }
    const cp = ch.codePointAt(0)!;
    if (cp < 0x20 || cp === 0x7f) out += `\\x${hex(cp, 2)}`;
    else if (cp < 0x10000) out += `\\u${hex(cp, 4)}`;
    else out += `\\U${hex(cp, 8)}`;
  }
  return `"${out}"`;
}

function hex(n: number, width: number): string {
  return n.toString(16).padStart(width, '0');
}

/**
 * Raw bytes as the reference puts them in a JSON string: valid UTF-8 as is, and each byte that does not start a
 * valid sequence as one U+FFFD (Node's decoder replaces a truncated sequence with a single U+FFFD instead).
 */
export function goString(buf: Uint8Array, start = 0, end = buf.length): string {
  return decodeBytes(buf, start, end, '\uFFFD');
}

/** Raw bytes as text with every byte that is not part of a valid UTF-8 sequence dropped. */
export function validUtf8Only(buf: Uint8Array): string {
  return decodeBytes(buf, 0, buf.length, '');
}

function decodeBytes(buf: Uint8Array, start: number, end: number, replacement: string): string {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  if (isUtf8(b.subarray(start, end))) return b.toString('utf8', start, end);
  let out = '';
  let run = start;
  let i = start;
  while (i < end) {
    const n = sequenceLength(b, i, end);
    if (n > 0) {
      i += n;
      continue;
    }
    out += b.toString('utf8', run, i) + replacement;
    i += 1;
    run = i;
  }
  return out + b.toString('utf8', run, end);
}

/** The length of the valid UTF-8 sequence at `i` (Go's utf8.DecodeRune acceptance table), or 0 if there is none. */
function sequenceLength(b: Buffer, i: number, end: number): number {
  const c0 = b[i]!;
  if (c0 < 0x80) return 1;
  let need: number;
  let lo = 0x80;
  let hi = 0xbf;
  if (c0 >= 0xc2 && c0 <= 0xdf) need = 1;
  else if (c0 === 0xe0) [need, lo] = [2, 0xa0];
  else if (c0 === 0xed) [need, hi] = [2, 0x9f];
  else if (c0 >= 0xe1 && c0 <= 0xef) need = 2;
  else if (c0 === 0xf0) [need, lo] = [3, 0x90];
  else if (c0 === 0xf4) [need, hi] = [3, 0x8f];
  else if (c0 >= 0xf1 && c0 <= 0xf3) need = 3;
  else return 0;
  if (i + need >= end) return 0;
  const c1 = b[i + 1]!;
  if (c1 < lo || c1 > hi) return 0;
  for (let k = 2; k <= need; k++) {
    const c = b[i + k]!;
    if (c < 0x80 || c > 0xbf) return 0;
  }
  return need + 1;
}

/** How Go's os.Signal prints in `signal: <text>` (syscall.Signal.String on Linux). */
const SIGNAL_TEXT: Readonly<Record<string, string>> = {
  SIGHUP: 'hangup',
  SIGINT: 'interrupt',
  SIGQUIT: 'quit',
  SIGILL: 'illegal instruction',
  SIGTRAP: 'trace/breakpoint trap',
  SIGABRT: 'aborted',
  SIGBUS: 'bus error',
  SIGFPE: 'floating point exception',
  SIGKILL: 'killed',
  SIGUSR1: 'user defined signal 1',
  SIGSEGV: 'segmentation fault',
  SIGUSR2: 'user defined signal 2',
  SIGPIPE: 'broken pipe',
  SIGALRM: 'alarm clock',
  SIGTERM: 'terminated',
  SIGXCPU: 'CPU time limit exceeded',
  SIGXFSZ: 'file size limit exceeded',
};

/** Go's text for a signal name such as `SIGKILL` (`killed`); an unknown name is kept. */
export function goSignalText(signal: string): string {
  return SIGNAL_TEXT[signal] ?? signal;
}
