/**
 * The NDJSON wire format: one JSON value per line, in both directions (claustrum-wire.md §1).
 */
import type { Frame, FrameOrigin } from '../replay/frame.js';
import type { WireCodec } from './connection.js';
import { stripCR } from './framing.js';
import { decodeRequest, NOT_A_REQUEST, NumberLiterals, type DecodedRequest } from './request.js';
import type { Reply } from './wire.js';

/** Decodes one line; null for a blank line, which gets no reply. */
export function decodeLine(line: Buffer): DecodedRequest | typeof NOT_A_REQUEST | null {
  const bytes = stripCR(line);
  if (bytes.length === 0) return null;
  // Invalid UTF-8 becomes U+FFFD here, as Go's decoder replaces it.
  const text = bytes.toString('utf8');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return NOT_A_REQUEST;
  }
  return decodeRequest(value, (paramsKey) => new NumberLiterals(text, paramsKey));
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
};
