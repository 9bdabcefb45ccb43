/**
 * The daemon's MessagePack codec: requests decoded from whole values (src/protocol/msgpack.ts cuts them), replies and
 * stream frames encoded with the same keys as the JSON messages. Stream frames carry `data` as binary, no base64.
 */
import { createRequire } from 'node:module';
import type { Packr, Unpackr } from 'msgpackr';
import { containsExt } from '../../../protocol/msgpack.js';
import type { DataFrame, Frame, FrameOrigin, OutputStream, ScreenFrame } from '../../../replay/frame.js';
import type { Reply } from '../reply.js';
import { type DecodedRequest, decodeRequest, NOT_A_REQUEST } from '../request.js';
import type { WireCodec } from './codec.js';

// Maps decode to plain objects (msgpackr renames a `__proto__` key, so no prototype is ever set); 64-bit integers
// past 2^53 decode to bigints, so integer params keep their exact value for the range checks.
// ('auto' is documented by msgpackr and supported at runtime; its type declarations lag behind.)
// Plain maps with their real sizes (fixmap for small ones), so any MessagePack library reads them.
//
// msgpackr is loaded at the first MessagePack message, synchronously (its CommonJS build): a daemon that only
// speaks NDJSON keeps 3 MB less memory, and Node's spawn cost grows with the daemon's memory (bench/RESULTS.md).
let codec: { readonly packr: Packr; readonly unpackr: Unpackr } | undefined;
function msgpackr(): { readonly packr: Packr; readonly unpackr: Unpackr } {
  if (codec === undefined) {
    const lib = createRequire(import.meta.url)('msgpackr') as typeof import('msgpackr');
    codec = {
      unpackr: new lib.Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'auto' as 'bigint' }),
      // Members that are undefined are left out, as JSON.stringify leaves them out: no extension type on the wire.
      // (`skipValues` is msgpackr's, newer than its type declarations.)
      packr: new lib.Packr({ useRecords: false, variableMapSize: true, skipValues: [undefined] } as import('msgpackr').Options),
    };
  }
  return codec;
}

/** Decodes one whole MessagePack value into a request. */
export function decodeMessage(message: Buffer): DecodedRequest | typeof NOT_A_REQUEST {
  // No extension type is part of the wire; refusing them keeps msgpackr's own (records, shared references) out of reach.
  if (containsExt(message)) return NOT_A_REQUEST;
  let value: unknown;
  try {
    value = msgpackr().unpackr.unpack(message);
  } catch {
    return NOT_A_REQUEST;
  }
  return decodeRequest(value);
}

export function packValue(value: unknown): Buffer {
  return msgpackr().packr.pack(value);
}

export const msgpackCodec: WireCodec = {
  reply(r: Reply): Buffer {
    return msgpackr().packr.pack(r.error ? { jsonrpc: '2.0', id: r.id.value, error: r.error } : { jsonrpc: '2.0', id: r.id.value, result: r.result });
  },
  frame(origin: FrameOrigin, frame: Frame): Buffer {
    if ((frame.stream === 'stdout' || frame.stream === 'stderr') && frame.seq <= 0xffffffff) return packDataFrame(origin, frame);
    return msgpackr().packr.pack(origin.toObject(frame));
  },
  screen(origin: FrameOrigin, frame: ScreenFrame): Buffer {
    return msgpackr().packr.pack(origin.screenObject(frame));
  },
  gap(origin: FrameOrigin, fromSeq: number, toSeq: number): Buffer {
    return msgpackr().packr.pack(origin.gapObject(fromSeq, toSeq));
  },
};

/**
 * Data frames, nearly all of a stream, are written by hand with exactly the bytes packr writes for the same object
 * (a test compares them): the fixed part, the map header with `type`, `processId`, `stream` and the `seq` key, is
 * encoded once per process and stream; then the seq, the `data` key, the bin header, and the payload, copied once
 * into a shared slab as packr copies it into its buffer. No object is built and no key re-encoded per frame.
 */
function packDataFrame(origin: FrameOrigin, frame: DataFrame): Buffer {
  const prefix = prefixOf(origin, frame.stream);
  const { seq, data } = frame;
  const n = data.length;
  const size =
    prefix.length + (seq < 0x80 ? 1 : seq < 0x100 ? 2 : seq < 0x10000 ? 3 : 5) + DATA_KEY.length + (n < 0x100 ? 2 : n < 0x10000 ? 3 : 5) + n;
  if (slab.length - slabUsed < size) {
    slab = Buffer.allocUnsafeSlow(Math.max(SLAB_BYTES, size));
    slabUsed = 0;
  }
  const out = slab.subarray(slabUsed, slabUsed + size);
  slabUsed += size;
  let at = prefix.copy(out, 0);
  // Unsigned integers as packr writes them without records: positive fixint below 0x80, then uint8/16/32.
  if (seq < 0x80) out[at++] = seq;
  else if (seq < 0x100) {
    out[at++] = 0xcc;
    out[at++] = seq;
  } else if (seq < 0x10000) {
    out[at++] = 0xcd;
    at = out.writeUInt16BE(seq, at);
  } else {
    out[at++] = 0xce;
    at = out.writeUInt32BE(seq, at);
  }
  at += DATA_KEY.copy(out, at);
  if (n < 0x100) {
    out[at++] = 0xc4;
    out[at++] = n;
  } else if (n < 0x10000) {
    out[at++] = 0xc5;
    at = out.writeUInt16BE(n, at);
  } else {
    out[at++] = 0xc6;
    at = out.writeUInt32BE(n, at);
  }
  data.copy(out, at);
  return out;
}

/** Frames are carved from slabs this size; a slab is left to the collector once its frames are written. */
const SLAB_BYTES = 1024 * 1024;
let slab = Buffer.alloc(0);
let slabUsed = 0;
const prefixes = new WeakMap<FrameOrigin, Partial<Record<OutputStream, Buffer>>>();
/** The key `data` as a fixstr (0xa0 | length, then the bytes), as packr writes it. */
const DATA_KEY = Buffer.from([0xa4, 0x64, 0x61, 0x74, 0x61]);

function prefixOf(origin: FrameOrigin, stream: OutputStream): Buffer {
  let forOrigin = prefixes.get(origin);
  if (forOrigin === undefined) prefixes.set(origin, (forOrigin = {}));
  let prefix = forOrigin[stream];
  if (prefix === undefined) {
    const { packr } = msgpackr();
    // A fixmap of five entries, then each key and value as packr encodes a lone string.
    const parts = ['type', 'stream', 'processId', origin.processId, 'stream', stream, 'seq'].map((v) => packr.pack(v));
    prefix = forOrigin[stream] = Buffer.concat([Buffer.from([0x85]), ...parts]);
  }
  return prefix;
}
