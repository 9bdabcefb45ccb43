/**
 * The NDJSON wire format: one JSON value per line, in both directions (PROTOCOL.md).
 */
import { isUtf8 } from 'node:buffer';
import { stripCR } from '../../../protocol/ndjson.js';
import type { Frame, FrameOrigin, ScreenFrame } from '../../../replay/frame.js';
import type { Reply } from '../reply.js';
import { type DecodedRequest, decodeRequest, MAX_NESTING_DEPTH, NOT_A_REQUEST, NumberLiterals } from '../request.js';
import type { WireCodec } from './codec.js';
import { asDecodedRequest, parseStdinLine, STDIN_FAST_PATH_MIN_LINE_BYTES } from './stdin-fast.js';

/**
 * Decodes one line; null for a blank line, which gets no reply. A long `process.stdin` line takes the fast path
 * (src/server/rpc/codec/stdin-fast.ts), which never builds the line's large strings (V8 maps every string over
 * 128 KiB fresh: 32 to 137 MiB/s end to end in its measurement, bench/figures/stdin-parse.mjs); anything it does not
 * recognise with certainty falls back here, with identical results either way.
 */
export function decodeLine(line: Buffer): DecodedRequest | typeof NOT_A_REQUEST | null {
  if (line.length >= STDIN_FAST_PATH_MIN_LINE_BYTES) {
    const fast = parseStdinLine(line);
    if (fast !== undefined) return asDecodedRequest(fast);
  }
  return decodeLineGeneral(line);
}

/** The general decoder, for every line (and what the fast path is tested against). */
export function decodeLineGeneral(line: Buffer): DecodedRequest | typeof NOT_A_REQUEST | null {
  const bytes = stripCR(line);
  if (bytes.length === 0) return null;
  const text = decodeUtf8LikeGo(bytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return NOT_A_REQUEST;
  }
  if (nestingExceeds(text, MAX_NESTING_DEPTH)) return NOT_A_REQUEST;
  return decodeRequest(value, (paramsKey) => new NumberLiterals(text, paramsKey));
}

/**
 * Bytes to text the way Go's encoding/json decodes a request: every byte of an invalid UTF-8 sequence becomes its
 * own U+FFFD (utf8.DecodeRune reports an error of width 1). Node's decoder follows WHATWG and folds a truncated
 * sequence such as `E2 82` into a single U+FFFD, which would change an echoed id or a process id.
 */
export function decodeUtf8LikeGo(bytes: Buffer): string {
  if (isUtf8(bytes)) return bytes.toString('utf8');
  let out = '';
  let start = 0;
  let i = 0;
  while (i < bytes.length) {
    if (bytes[i]! < 0x80) {
      i++;
      continue;
    }
    const n = sequenceLength(bytes, i);
    if (n > 0) {
      i += n;
      continue;
    }
    out += `${bytes.toString('utf8', start, i)}\ufffd`;
    i++;
    start = i;
  }
  return out + bytes.toString('utf8', start);
}

/** Length of the well-formed UTF-8 sequence at `i` (Unicode table 3-7, as utf8.DecodeRune accepts), or 0. */
function sequenceLength(b: Buffer, i: number): number {
  const c0 = b[i]!;
  const cont = (k: number, lo = 0x80, hi = 0xbf) => i + k < b.length && b[i + k]! >= lo && b[i + k]! <= hi;
  if (c0 >= 0xc2 && c0 <= 0xdf) return cont(1) ? 2 : 0;
  if (c0 >= 0xe0 && c0 <= 0xef) {
    const lo = c0 === 0xe0 ? 0xa0 : 0x80;
    const hi = c0 === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (c0 >= 0xf0 && c0 <= 0xf4) {
    const lo = c0 === 0xf0 ? 0x90 : 0x80;
    const hi = c0 === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/**
 * True when valid JSON `text` nests arrays and objects deeper than `limit`, which Go's decoder refuses wherever the
 * nesting is (json.Unmarshal validates the whole line first). Counting the opening brackets bounds the depth, so a
 * line with fewer than `limit` of them, every ordinary request, costs two native searches and no character loop.
 */
function nestingExceeds(text: string, limit: number): boolean {
  let opens = 0;
  for (const bracket of ['[', '{']) {
    for (let i = text.indexOf(bracket); i !== -1 && opens <= limit; i = text.indexOf(bracket, i + 1)) opens++;
  }
  if (opens <= limit) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 34 /* " */) {
      for (i++; text.charCodeAt(i) !== 34; i++) if (text.charCodeAt(i) === 92 /* \ */) i++;
    } else if (c === 91 /* [ */ || c === 123 /* { */) {
      if (++depth > limit) return true;
    } else if (c === 93 /* ] */ || c === 125 /* } */) {
      depth--;
    }
  }
  return false;
}

export const ndjsonCodec: WireCodec = {
  reply(r: Reply): string {
    if (r.error) {
      return `{"jsonrpc":"2.0","id":${r.id.json},"error":{"code":${r.error.code},"message":${JSON.stringify(r.error.message)}}}\n`;
    }
    return `{"jsonrpc":"2.0","id":${r.id.json},"result":${JSON.stringify(r.result)}}\n`;
  },
  frame(origin: FrameOrigin, frame: Frame): string {
    return origin.toJsonLine(frame);
  },
  screen(origin: FrameOrigin, frame: ScreenFrame): string {
    return origin.screenLine(frame);
  },
  gap(origin: FrameOrigin, fromSeq: number, toSeq: number): string {
    return origin.gapLine(fromSeq, toSeq);
  },
};
