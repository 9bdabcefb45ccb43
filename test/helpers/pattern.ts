/** Checking output against the byte pattern of the streaming fixtures (test/fixtures/lib/pattern.mjs). */
import { patternByte } from '../fixtures/lib/pattern.mjs';

/** Byte `i` of the pattern that test/fixtures/flood.mjs writes. */
export const floodByte = patternByte;

/**
 * The index in `bytes` of the first byte that differs from the flood pattern, the pattern starting at `offset`;
 * -1 when every byte matches.
 */
export function firstFloodMismatch(bytes: Uint8Array, offset = 0): number {
  for (let k = 0; k < bytes.length; k++) {
    if (bytes[k] !== floodByte(offset + k)) return k;
  }
  return -1;
}
