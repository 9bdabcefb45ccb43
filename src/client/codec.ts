/**
 * Codecs: how requests become bytes and bytes become replies and frames. NDJSON is here; MessagePack plugs in
 * through the same interface (binary `data` both ways instead of base64).
 *
 * Decoding is strict about the shapes the client relies on: a reply (`id` plus `result` or `error`) or a stream
 * frame with the members it needs. A message with some other `type` is `{kind:'unknown'}` and ignored, so a later
 * daemon may add notifications; anything else is `{kind:'invalid'}`, which the client treats as a broken connection
 * rather than guessing.
 */
import { LineSplitter } from '../protocol/ndjson.js';
import type { Incoming, IncomingFrame, OutputStream, WireRequest } from './wire.js';

/**
 * The longest message the client takes from a daemon: a `files.read` of the daemon's 64 MiB ceiling, every byte
 * escaped as `\u00XX` in JSON, plus its envelope. A peer that sends more without ending the message is not a daemon
 * speaking this protocol; the connection is dropped rather than the memory given.
 */
export const MAX_INCOMING_MESSAGE_BYTES = 400 * 1024 * 1024;

/** Splits a byte stream into messages (a Unix socket); message transports use `decodeMessage` instead. */
export interface StreamDecoder {
  push(chunk: Buffer): Incoming[];
}

export interface Codec {
  /** `ndjson`, `msgpack`, … */
  readonly name: string;
  /** One whole request, ready for a stream (NDJSON includes its newline) or for one transport message. */
  encode(request: WireRequest): Buffer;
  /** A decoder for a byte stream. */
  decoder(): StreamDecoder;
  /** Decodes one transport message (WebSocket). */
  decodeMessage(message: Buffer): Incoming;
}

/** Turns a decoded message (JSON or MessagePack, `data` as base64 text or bytes) into what the client handles. */
export function classify(msg: unknown): Incoming {
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return invalid('not an object');
  const m = msg as Record<string, unknown>;
  if (m.type === 'stream') {
    const { processId, stream, seq } = m;
    if (typeof processId !== 'string' || !isSeq(seq)) return invalid('stream frame without processId or seq');
    if (stream === 'stdout' || stream === 'stderr') {
      const data = bytesOf(m.data);
      if (data === undefined) return invalid(`${stream} frame without data`);
      return { kind: 'frame', type: 'stream', processId, stream: stream satisfies OutputStream, seq, data };
    }
    if (stream === 'resize' || stream === 'screen') {
      const { cols, rows } = m;
      if (!isSize(cols) || !isSize(rows)) return invalid(`${stream} frame without cols and rows`);
      if (stream === 'resize') return { kind: 'frame', type: 'stream', processId, stream, seq, cols, rows };
      const data = bytesOf(m.data);
      if (data === undefined) return invalid('screen frame without data');
      return { kind: 'frame', type: 'stream', processId, stream, seq, cols, rows, data };
    }
    if (stream === 'exit') {
      if (typeof m.exitCode !== 'number') return invalid('exit frame without exitCode');
      let frame: IncomingFrame = { kind: 'frame', type: 'stream', processId, stream: 'exit', seq, exitCode: m.exitCode };
      if (typeof m.signal === 'string') frame = { ...frame, signal: m.signal };
      if (m.killedBy === 'client' || m.killedBy === 'shutdown' || m.killedBy === 'lost') frame = { ...frame, killedBy: m.killedBy };
      return frame;
    }
    return { kind: 'unknown', type: `stream:${String(stream)}` };
  }
  if (m.type === 'gap') {
    const { processId, fromSeq, toSeq } = m;
    if (typeof processId !== 'string' || !isSeq(fromSeq) || !isSeq(toSeq) || toSeq < fromSeq) return invalid('malformed gap notice');
    return { kind: 'gap', type: 'gap', processId, fromSeq, toSeq };
  }
  if (typeof m.type === 'string') return { kind: 'unknown', type: m.type };
  if ('id' in m && ('result' in m || 'error' in m)) {
    const e = m.error;
    if (e !== undefined && e !== null) {
      if (typeof e !== 'object') return invalid('error is not an object');
      const { code, message } = e as Record<string, unknown>;
      return { kind: 'reply', id: m.id, error: { code: typeof code === 'number' ? code : 0, message: typeof message === 'string' ? message : '' } };
    }
    return { kind: 'reply', id: m.id, result: m.result };
  }
  return invalid('neither a reply nor a stream frame');
}

function invalid(reason: string): Incoming {
  return { kind: 'invalid', reason };
}

function isSize(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= 65535;
}

function isSeq(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v > 0;
}

function bytesOf(v: unknown): Buffer | undefined {
  if (typeof v === 'string') return Buffer.from(v, 'base64');
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return undefined;
}

/** JSON.stringify replacer: byte arrays go out as standard base64 (what `process.stdin` takes in NDJSON). */
function bytesAsBase64(this: unknown, key: string, value: unknown): unknown {
  const raw = (this as Record<string, unknown>)[key];
  if (raw instanceof Uint8Array) return Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64');
  return value;
}

class NdjsonDecoder implements StreamDecoder {
  readonly #splitter = new LineSplitter(MAX_INCOMING_MESSAGE_BYTES);

  push(chunk: Buffer): Incoming[] {
    const out: Incoming[] = [];
    const ok = this.#splitter.push(chunk, (line) => {
      if (line.length > 0) out.push(parseLine(line));
    });
    if (!ok) out.push(invalid(`a message longer than ${MAX_INCOMING_MESSAGE_BYTES} bytes`));
    return out;
  }
}

function parseLine(line: Buffer): Incoming {
  let value: unknown;
  try {
    value = JSON.parse(line.toString('utf8'));
  } catch {
    return invalid('not JSON');
  }
  return classify(value);
}

/**
 * A request whose `params.data` is bytes (`process.stdin`), written as one Buffer: the envelope and the other params
 * by JSON.stringify, `data` last, its base64 copied into the line as Latin-1 (base64 needs no JSON escaping).
 *
 * Why not JSON.stringify with the replacer: it calls Buffer's toJSON first, an array of one number per byte, before
 * the replacer sees the value; then it scans the base64 string for escapes and the line is encoded to UTF-8 again.
 * On the development machine that cost the client 12–16 ms of CPU per MiB of stdin; this path 0.8–0.9 ms/MiB at
 * 64–95 KiB of data per request (bench/METHOD.md, "stdin chunk size").
 */
function encodeWithBytes(request: WireRequest, params: Record<string, unknown>, data: Uint8Array): Buffer {
  const { data: _bytes, ...rest } = params;
  const envelope = JSON.stringify({ ...request, params: undefined }, bytesAsBase64);
  const others = JSON.stringify(rest, bytesAsBase64);
  const head = `${envelope.slice(0, -1)},"params":${others.slice(0, -1)}${others === '{}' ? '' : ','}"data":"`;
  const base64 = Buffer.from(data.buffer, data.byteOffset, data.byteLength).toString('base64');
  const line = Buffer.allocUnsafe(Buffer.byteLength(head, 'utf8') + base64.length + 4);
  let at = line.write(head, 0, 'utf8');
  at += line.write(base64, at, 'latin1');
  at += line.write('"}}\n', at, 'latin1');
  return line.subarray(0, at);
}

/** Newline-delimited JSON, the reference wire: `data` as base64 both ways. */
export const ndjson: Codec = {
  name: 'ndjson',
  encode(request) {
    const params = request.params as Record<string, unknown> | undefined;
    if (params !== undefined && params.data instanceof Uint8Array) return encodeWithBytes(request, params, params.data);
    return Buffer.from(`${JSON.stringify(request, bytesAsBase64)}\n`, 'utf8');
  },
  decoder() {
    return new NdjsonDecoder();
  },
  decodeMessage(message) {
    return parseLine(message);
  },
};
