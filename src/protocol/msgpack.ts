/**
 * MessagePack framing, shared by the daemon and the client: a stream of MessagePack values with the same keys as the
 * JSON messages, selected on a Unix socket by the first byte of a connection (a map header).
 *
 * MessageSplitter finds where each value ends by walking the MessagePack grammar (headers and lengths only, payloads
 * are jumped over), so a size cap applies to exact message sizes before anything is decoded, and a value that cannot
 * be decoded costs a parse error, not the stream.
 */
import { MAX_LINE_BYTES } from './ndjson.js';

/** True for a first byte that opens a MessagePack map: fixmap (0x80–0x8f), map16 (0xde), map32 (0xdf). */
export function isMapHeader(byte: number): boolean {
  return (byte >= 0x80 && byte <= 0x8f) || byte === 0xde || byte === 0xdf;
}

/** Bytes taken by the header of the item whose first byte is `b`, and how many nested items follow it. */
function headerOf(buf: Buffer, at: number, limit: number): { header: number; payload: number; items: number } | undefined {
  const b = buf[at]!;
  /** A length field of n bytes right after the type byte, or undefined while it has not all arrived. */
  const len = (n: 1 | 2 | 4): number | undefined => {
    if (limit - at - 1 < n) return undefined;
    return n === 1 ? buf[at + 1]! : n === 2 ? buf.readUInt16BE(at + 1) : buf.readUInt32BE(at + 1);
  };
  if (b <= 0x7f || b >= 0xe0) return { header: 1, payload: 0, items: 0 }; // fixints
  if (b <= 0x8f) return { header: 1, payload: 0, items: 2 * (b & 0x0f) }; // fixmap
  if (b <= 0x9f) return { header: 1, payload: 0, items: b & 0x0f }; // fixarray
  if (b <= 0xbf) return { header: 1, payload: b & 0x1f, items: 0 }; // fixstr
  switch (b) {
    case 0xc0: // nil
    case 0xc1: // never used: one byte, and the decoder refuses it
    case 0xc2: // false
    case 0xc3: // true
      return { header: 1, payload: 0, items: 0 };
    case 0xc4: // bin8
    case 0xd9: {
      // str8
      const n = len(1);
      return n === undefined ? undefined : { header: 2, payload: n, items: 0 };
    }
    case 0xc5: // bin16
    case 0xda: {
      // str16
      const n = len(2);
      return n === undefined ? undefined : { header: 3, payload: n, items: 0 };
    }
    case 0xc6: // bin32
    case 0xdb: {
      // str32
      const n = len(4);
      return n === undefined ? undefined : { header: 5, payload: n, items: 0 };
    }
    case 0xc7: {
      // ext8: length, type
      const n = len(1);
      return n === undefined ? undefined : { header: 3, payload: n, items: 0 };
    }
    case 0xc8: {
      // ext16
      const n = len(2);
      return n === undefined ? undefined : { header: 4, payload: n, items: 0 };
    }
    case 0xc9: {
      // ext32
      const n = len(4);
      return n === undefined ? undefined : { header: 6, payload: n, items: 0 };
    }
    case 0xca:
      return { header: 1, payload: 4, items: 0 }; // float32
    case 0xcb:
      return { header: 1, payload: 8, items: 0 }; // float64
    case 0xcc:
    case 0xd0:
      return { header: 1, payload: 1, items: 0 }; // uint8, int8
    case 0xcd:
    case 0xd1:
      return { header: 1, payload: 2, items: 0 }; // uint16, int16
    case 0xce:
    case 0xd2:
      return { header: 1, payload: 4, items: 0 }; // uint32, int32
    case 0xcf:
    case 0xd3:
      return { header: 1, payload: 8, items: 0 }; // uint64, int64
    case 0xd4:
      return { header: 2, payload: 1, items: 0 }; // fixext1 (type byte in the header)
    case 0xd5:
      return { header: 2, payload: 2, items: 0 };
    case 0xd6:
      return { header: 2, payload: 4, items: 0 };
    case 0xd7:
      return { header: 2, payload: 8, items: 0 };
    case 0xd8:
      return { header: 2, payload: 16, items: 0 };
    case 0xdc: {
      // array16
      const n = len(2);
      return n === undefined ? undefined : { header: 3, payload: 0, items: n };
    }
    case 0xdd: {
      // array32
      const n = len(4);
      return n === undefined ? undefined : { header: 5, payload: 0, items: n };
    }
    case 0xde: {
      // map16
      const n = len(2);
      return n === undefined ? undefined : { header: 3, payload: 0, items: 2 * n };
    }
    case 0xdf: {
      // map32
      const n = len(4);
      return n === undefined ? undefined : { header: 5, payload: 0, items: 2 * n };
    }
  }
  return { header: 1, payload: 0, items: 0 };
}

/** First bytes of the extension types: fixext 1–16 (0xd4–0xd8) and ext 8/16/32 (0xc7–0xc9). */
function isExtHeader(b: number): boolean {
  return (b >= 0xd4 && b <= 0xd8) || (b >= 0xc7 && b <= 0xc9);
}

/**
 * True when a whole MessagePack value contains an extension item anywhere (but `undefined`). The wire uses none, and a decoder that
 * knows extensions can be made to do arbitrary work by them: msgpackr resolves its record and shared-reference
 * extensions even with records off, so a 348-byte message expanded into gigabytes before authentication. Values
 * with an extension are refused before they reach a decoder (linear in the value's size: headers only).
 */
export function containsExt(value: Buffer): boolean {
  let remaining = 1;
  let at = 0;
  while (remaining > 0 && at < value.length) {
    // fixext 1 of type 0 holding 0 is how JavaScript encoders write `undefined`: a constant, and harmless.
    if (isExtHeader(value[at]!) && !(value[at] === 0xd4 && value[at + 1] === 0 && value[at + 2] === 0)) return true;
    const h = headerOf(value, at, value.length);
    if (h === undefined) return false;
    at += h.header + h.payload;
    remaining += h.items - 1;
  }
  return false;
}

/**
 * Splits a byte stream into whole MessagePack values, holding at most the cap of an unfinished value.
 *
 * Work is linear in the bytes received however they are cut: a value arriving one byte at a time is appended to a
 * buffer that grows by doubling (a `Buffer.concat` per chunk would be quadratic, a CPU sink for a slow sender), and
 * the grammar walk resumes where it stopped. Values wholly inside a fresh chunk are handed out as views of it; values
 * assembled from several chunks are copied out, because the assembly buffer is reused (the decoder keeps views of
 * binary payloads, such as stdin data waiting to be written).
 */
export class MessageSplitter {
  readonly maxMessageBytes: number;
  #buf: Buffer = Buffer.alloc(0);
  #start = 0;
  #end = 0;
  /** Where the grammar walk resumes (absolute in #buf), and how many items the current value still needs. */
  #scan = 0;
  #remaining = 1;

  constructor(maxMessageBytes: number = MAX_LINE_BYTES) {
    this.maxMessageBytes = maxMessageBytes;
  }

  get pendingBytes(): number {
    return this.#end - this.#start;
  }

  /** Feeds a chunk; calls `onMessage` per complete value. Returns false once a value passes the cap. */
  push(chunk: Buffer, onMessage: (message: Buffer) => void): boolean {
    let fresh = chunk;
    if (this.pendingBytes === 0) {
      // Fast path: complete values straight out of the chunk, no copy.
      let at = 0;
      for (;;) {
        this.#remaining = 1;
        const end = this.#walk(chunk, at, chunk.length);
        if (end === undefined) break;
        if (end - at > this.maxMessageBytes) return this.#overflow();
        onMessage(chunk.subarray(at, end));
        at = end;
      }
      // What is left is one unfinished value: it is assembled, and walked again from its start (less than a chunk).
      this.#remaining = 1;
      if (at === chunk.length) return true;
      if (chunk.length - at > this.maxMessageBytes) return this.#overflow();
      fresh = chunk.subarray(at);
      this.#start = this.#end = this.#scan = 0;
    }
    this.#append(fresh);
    for (;;) {
      const end = this.#walk(this.#buf, this.#scan, this.#end);
      if (end === undefined) return this.pendingBytes > this.maxMessageBytes ? this.#overflow() : true;
      if (end - this.#start > this.maxMessageBytes) return this.#overflow();
      const message = Buffer.from(this.#buf.subarray(this.#start, end));
      this.#start = end;
      this.#scan = end;
      this.#remaining = 1;
      if (this.#start === this.#end) this.#start = this.#end = this.#scan = 0;
      onMessage(message);
      if (this.pendingBytes === 0) return true;
    }
  }

  /**
   * Walks items from `from` while whole headers and payloads are present. Returns the end of the value when it
   * completes; otherwise records where to resume and returns undefined.
   */
  #walk(buf: Buffer, from: number, limit: number): number | undefined {
    let at = from;
    while (this.#remaining > 0) {
      if (at >= limit) break;
      const h = headerOf(buf, at, limit);
      if (h === undefined || at + h.header + h.payload > limit) break;
      at += h.header + h.payload;
      this.#remaining += h.items - 1;
    }
    this.#scan = at;
    return this.#remaining === 0 ? at : undefined;
  }

  #append(chunk: Buffer): void {
    const live = this.#end - this.#start;
    if (this.#end + chunk.length > this.#buf.length) {
      if (live + chunk.length <= this.#buf.length / 2) {
        this.#buf.copy(this.#buf, 0, this.#start, this.#end);
      } else {
        const grown = Buffer.allocUnsafe(Math.max(2 * this.#buf.length, live + chunk.length, 4096));
        this.#buf.copy(grown, 0, this.#start, this.#end);
        this.#buf = grown;
      }
      this.#scan -= this.#start;
      this.#start = 0;
      this.#end = live;
    }
    chunk.copy(this.#buf, this.#end);
    this.#end += chunk.length;
  }

  #overflow(): false {
    this.#buf = Buffer.alloc(0);
    this.#start = this.#end = this.#scan = 0;
    this.#remaining = 1;
    return false;
  }
}
