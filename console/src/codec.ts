/**
 * MessagePack for the page: msgpackr's browser build (bundled by esbuild; no Node Buffer involved), with the options
 * the project's client uses (src/client/msgpack.ts): plain maps, no records extension, so the daemon's own encoder
 * and decoder read every message. One WebSocket message is one MessagePack value, so no splitting is needed.
 */
import { Packr, Unpackr } from 'msgpackr';
import { classify, type Incoming } from './wire.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export interface RequestMessage {
  readonly jsonrpc: '2.0';
  readonly id: number;
  readonly method: string;
  readonly params?: object;
  readonly auth: string;
}

export function encodeRequest(request: RequestMessage): Uint8Array {
  return packr.pack(request);
}

/** Decodes and checks one message; bytes that are not MessagePack come back as `invalid`, never as a throw. */
export function decodeMessage(bytes: Uint8Array): Incoming {
  let value: unknown;
  try {
    value = unpackr.unpack(bytes);
  } catch {
    return { kind: 'invalid', reason: 'not MessagePack' };
  }
  return classify(value);
}
