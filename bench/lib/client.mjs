/**
 * Benchmark clients, one per wire, each decoding what it receives the way a real client must:
 * - ndjson: split lines, JSON.parse each, base64-decode a frame's `data` back to bytes;
 * - msgpack: unpack the stream of MessagePack values (frame `data` arrives as binary);
 * - ws-binary / ws-text: one MessagePack value per binary message, one JSON value per text message.
 *
 * Every stream frame goes to `onFrame` as an object with `data` a Buffer; replies settle `call()`.
 */
import net from 'node:net';
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import { MessageSplitter } from '../../dist/src/protocol/msgpack.js';

const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export class BenchClient {
  /** @type {(frame: any) => void} */
  onFrame = () => {};
  #nextId = 1;
  #pending = new Map();
  #send;
  #close;
  closed;
  token;

  constructor(token, send, close, closed) {
    this.token = token;
    this.#send = send;
    this.#close = close;
    this.closed = closed;
  }

  #watchers = new Map();

  /** Routes the frames of one process to `fn` (instead of onFrame) until unwatched. */
  watch(processId, fn) {
    this.#watchers.set(processId, fn);
  }

  unwatch(processId) {
    this.#watchers.delete(processId);
  }

  /** Resolves with the exit frame of `processId` (its data frames are decoded and dropped). */
  waitExit(processId) {
    return new Promise((resolve) => {
      this.watch(processId, (f) => {
        if (f.stream !== 'exit') return;
        this.unwatch(processId);
        resolve(f);
      });
    });
  }

  /** Called by the transport for each decoded message. */
  received(msg) {
    if (msg.type === 'stream') {
      const w = this.#watchers.get(msg.processId);
      if (w) w(msg);
      else this.onFrame(msg);
      return;
    }
    const p = this.#pending.get(msg.id);
    if (!p) return;
    this.#pending.delete(msg.id);
    if (msg.error) p.reject(Object.assign(new Error(`${p.method}: ${msg.error.code} ${msg.error.message}`), { code: msg.error.code }));
    else p.resolve(msg.result);
  }

  /** Sends a request without waiting; the promise settles with its reply. */
  call(method, params) {
    const id = this.#nextId++;
    const msg = { jsonrpc: '2.0', id, method, auth: this.token };
    if (params !== undefined) msg.params = params;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject, method });
      this.#send(msg);
    });
  }

  close() {
    this.#close();
    return this.closed;
  }
}

/** NDJSON line splitting on bytes; pending parts are joined once per line, so work is linear. */
function ndjsonReader(client) {
  let parts = [];
  return (chunk) => {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl === -1) {
        if (start < chunk.length) parts.push(chunk.subarray(start));
        return;
      }
      let line = chunk.subarray(start, nl);
      if (parts.length > 0) {
        parts.push(line);
        line = Buffer.concat(parts);
        parts = [];
      }
      start = nl + 1;
      client.received(decodeJson(line.toString('utf8')));
    }
  };
}

function decodeJson(text) {
  const msg = JSON.parse(text);
  if (msg.type === 'stream' && typeof msg.data === 'string') msg.data = Buffer.from(msg.data, 'base64');
  return msg;
}

/**
 * A stream of MessagePack values, split with the daemon's own splitter (the built dist/): it walks the grammar,
 * hands out values whole in a chunk as views, and copies only a value cut across chunks. Each is then unpacked.
 */
function msgpackReader(client) {
  const splitter = new MessageSplitter(Number.MAX_SAFE_INTEGER);
  const onMessage = (m) => client.received(fixBinary(unpackr.unpack(m)));
  return (chunk) => {
    splitter.push(chunk, onMessage);
  };
}

function fixBinary(msg) {
  if (msg.type === 'stream' && msg.data instanceof Uint8Array && !Buffer.isBuffer(msg.data)) {
    msg.data = Buffer.from(msg.data.buffer, msg.data.byteOffset, msg.data.byteLength);
  }
  return msg;
}

/**
 * @param {{ wire: 'ndjson'|'msgpack'|'ws-binary'|'ws-text', socket?: string, url?: string, token: string, codec?: { encode(m: object): Buffer } }} o
 *   codec: encode requests with this instead (a Unix socket wire only): the client library's own codec
 *   (dist/src/client/codec.js `ndjson`, dist/src/client/msgpack.js `msgpack`), so a figure sends what the library sends.
 * @returns {Promise<BenchClient>}
 */
export function connect(o) {
  if (o.wire === 'ws-binary' || o.wire === 'ws-text') return connectWs(o);
  return new Promise((resolve, reject) => {
    const s = net.connect(o.socket);
    s.once('error', reject);
    s.once('connect', () => {
      s.removeListener('error', reject);
      s.on('error', () => {});
      const closed = new Promise((r) => s.once('close', r));
      const send = o.codec
        ? (m) => s.write(o.codec.encode(m))
        : o.wire === 'msgpack'
          ? (m) => s.write(packr.pack(m))
          : (m) => s.write(`${JSON.stringify(m)}\n`);
      const client = new BenchClient(o.token, send, () => s.end(), closed);
      client.socket = s;
      s.on('data', o.wire === 'msgpack' ? msgpackReader(client) : ndjsonReader(client));
      resolve(client);
    });
  });
}

function connectWs(o) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(o.url, { perMessageDeflate: false, maxPayload: 256 * 1024 * 1024 });
    ws.once('error', reject);
    ws.once('open', () => {
      ws.removeListener('error', reject);
      ws.on('error', () => {});
      const closed = new Promise((r) => ws.once('close', r));
      const binary = o.wire === 'ws-binary';
      const send = binary ? (m) => ws.send(packr.pack(m), { binary: true }) : (m) => ws.send(JSON.stringify(m));
      const client = new BenchClient(o.token, send, () => ws.close(), closed);
      client.ws = ws;
      ws.on('message', (data, isBinary) => {
        client.received(isBinary ? fixBinary(unpackr.unpack(data)) : decodeJson(data.toString('utf8')));
      });
      resolve(client);
    });
  });
}

/** Packs a request the way the msgpack client does (for tests of the client itself). */
export function packRequest(m) {
  return packr.pack(m);
}
