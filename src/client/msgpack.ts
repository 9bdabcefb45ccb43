/**
 * The MessagePack codec (extension `wire.msgpack`): the same messages as NDJSON, one MessagePack map each, with
 * `data` as binary both ways (no base64). On a Unix socket the daemon picks the format from the first byte of the
 * connection, so a client speaks it from its first request; values follow one another with no separator and are
 * cut by walking the MessagePack grammar (the protocol's splitter, with the client's message cap: replies such as
 * `files.read` may be larger than any request).
 */
import { Packr, Unpackr } from 'msgpackr';
import { containsExt, MessageSplitter } from '../protocol/msgpack.js';
import { type Codec, classify, MAX_INCOMING_MESSAGE_BYTES, type StreamDecoder } from './codec.js';
import type { Incoming } from './wire.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

function decodeValue(message: Buffer): Incoming {
  // The wire uses no extension type; msgpackr would resolve its own (records, shared references) at any cost.
  if (containsExt(message)) return { kind: 'invalid', reason: 'a MessagePack extension type (the wire uses none)' };
  let value: unknown;
  try {
    value = unpackr.unpack(message);
  } catch {
    return { kind: 'invalid', reason: 'not MessagePack' };
  }
  return classify(value);
}

class MsgpackDecoder implements StreamDecoder {
  readonly #splitter = new MessageSplitter(MAX_INCOMING_MESSAGE_BYTES);

  push(chunk: Buffer): Incoming[] {
    const out: Incoming[] = [];
    const ok = this.#splitter.push(chunk, (message) => out.push(decodeValue(message)));
    if (!ok) out.push({ kind: 'invalid', reason: `a message longer than ${MAX_INCOMING_MESSAGE_BYTES} bytes` });
    return out;
  }
}

export const msgpack: Codec = {
  name: 'msgpack',
  encode(request) {
    return packr.pack(request);
  },
  decoder() {
    return new MsgpackDecoder();
  },
  decodeMessage(message) {
    return decodeValue(message);
  },
};
