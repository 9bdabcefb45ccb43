/**
 * NDJSON framing: bytes in, complete lines out. It knows nothing of JSON or methods, so it is tested with in-memory
 * buffers split at random points (test/server/framing.test.ts).
 *
 * Lines are split on bytes, before any UTF-8 decoding, so a multi-byte character split across two reads survives.
 */

/**
 * The longest request line served, newline excluded: 1,048,575 bytes. The reference reads with a 1 MiB scanner
 * buffer that must also hold the `\n`, so a line of 1,048,576 bytes or more closes the connection with no reply.
 */
export const MAX_LINE_BYTES = 1_048_575;

export class LineSplitter {
  readonly maxLineBytes: number;
  #parts: Buffer[] = [];
  #pending = 0;

  constructor(maxLineBytes: number = MAX_LINE_BYTES) {
    this.maxLineBytes = maxLineBytes;
  }

  /** Bytes of the current unfinished line held in memory; never more than `maxLineBytes`. */
  get pendingBytes(): number {
    return this.#pending;
  }

  /**
   * Feeds one chunk and calls `onLine` for every line it completes, `\n` stripped (a `\r` before it is left for
   * the caller). Returns false, having delivered the lines before it, as soon as the unfinished line passes the
   * cap: the caller must close the connection without reading on.
   */
  push(chunk: Buffer, onLine: (line: Buffer) => void): boolean {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) {
        const rest = chunk.length - start;
        if (this.#pending + rest > this.maxLineBytes) return this.#overflow();
        if (rest > 0) {
          this.#parts.push(chunk.subarray(start));
          this.#pending += rest;
        }
        return true;
      }
      if (this.#pending + (nl - start) > this.maxLineBytes) return this.#overflow();
      onLine(this.#take(chunk.subarray(start, nl)));
      start = nl + 1;
    }
  }

  /** At EOF, bytes after the last newline count as one more line (reference behaviour). */
  end(onLine: (line: Buffer) => void): void {
    if (this.#pending > 0) onLine(this.#take(Buffer.alloc(0)));
  }

  #take(tail: Buffer): Buffer {
    if (this.#parts.length === 0) return tail;
    this.#parts.push(tail);
    const line = Buffer.concat(this.#parts, this.#pending + tail.length);
    this.#parts = [];
    this.#pending = 0;
    return line;
  }

  #overflow(): false {
    this.#parts = [];
    this.#pending = 0;
    return false;
  }
}

/** Strips the `\r` of a CRLF line ending; an empty result is a blank line that gets no reply. */
export function stripCR(line: Buffer): Buffer {
  return line.length > 0 && line[line.length - 1] === 13 ? line.subarray(0, line.length - 1) : line;
}
