/**
 * The byte pattern test/fixtures/flood.mjs writes: byte i is (i * 7 + floor(i / 8192)) & 0xff. It changes with
 * both the value and the position of every byte, so a lost, duplicated or reordered chunk shows up as a mismatch
 * at a known offset.
 */
export function floodByte(i: number): number {
  return (i * 7 + Math.floor(i / 8192)) & 0xff;
}

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
