/**
 * The MessagePack codec (extension `wire.msgpack`): the same messages as NDJSON, one MessagePack map each, with
 * `data` as binary both ways (no base64). On a Unix socket the daemon picks the format from the first byte of the
 * connection, so a client speaks it from its first request; values follow one another with no separator and are
 * cut by walking the MessagePack grammar (the daemon's own splitter, without its request-size cap: replies such as
 * `files.read` may be large).
 */
import { Packr, Unpackr } from 'msgpackr';
import { MessageSplitter } from '../server/msgpack.js';
import { classify, type Codec, type StreamDecoder } from './codec.js';
import type { Incoming } from './wire.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

function decodeValue(message: Buffer): Incoming {
  let value: unknown;
  try {
    value = unpackr.unpack(message);
  } catch {
    return { kind: 'invalid', reason: 'not MessagePack' };
  }
  return classify(value);
}

class MsgpackDecoder implements StreamDecoder {
  readonly #splitter = new MessageSplitter(Number.MAX_SAFE_INTEGER);

  push(chunk: Buffer): Incoming[] {
    const out: Incoming[] = [];
    this.#splitter.push(chunk, (message) => out.push(decodeValue(message)));
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
