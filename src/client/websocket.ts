/**
 * The WebSocket transport (extension `transport.websocket`, daemon flag `-ws-addr`): one request per message, text
 * (JSON) or binary (MessagePack); the daemon answers in the kind of message the client last sent. Every request
 * carries `auth` (a TCP port has no file permissions), which the client does anyway.
 */
import WebSocket from 'ws';
import { MAX_INCOMING_MESSAGE_BYTES, ndjson } from './codec.js';
import { ConnectError } from './errors.js';
import { msgpack } from './msgpack.js';
import type { Channel, Transport } from './transport.js';

export interface WebSocketTransportOptions {
  /** `ws://127.0.0.1:7777/rpc`. */
  readonly url: string;
  /** `msgpack` (binary messages, no base64; the default) or `json` (text messages). */
  readonly format?: 'msgpack' | 'json';
  /** Sent as the `Origin` header (a browser-like client; the daemon's allow list must name it). */
  readonly origin?: string;
  /** How long the connect and upgrade may take. Default 10 s. */
  readonly connectTimeoutMs?: number;
}

export function websocketTransport(options: WebSocketTransportOptions): Transport {
  const binary = (options.format ?? 'msgpack') === 'msgpack';
  const codec = binary ? msgpack : ndjson;
  return {
    description: options.url,
    codec,
    open(events) {
      return new Promise<Channel>((resolve, reject) => {
        const ws = new WebSocket(options.url, {
          perMessageDeflate: false,
          maxPayload: MAX_INCOMING_MESSAGE_BYTES,
          handshakeTimeout: options.connectTimeoutMs ?? 10_000,
          ...(options.origin !== undefined ? { origin: options.origin } : {}),
        });
        let open = false;
        let failure: Error | undefined;
        let socket: import('node:net').Socket | undefined;
        ws.once('upgrade', (res) => {
          socket = res.socket as import('node:net').Socket;
        });
        ws.once('unexpected-response', (_req, res) => {
          ws.terminate();
          if (!open) reject(new ConnectError(`${options.url}: the upgrade was refused with HTTP ${res.statusCode}`, `HTTP_${res.statusCode}`));
        });
        ws.on('error', (err: NodeJS.ErrnoException) => {
          if (!open) reject(new ConnectError(`${options.url}: ${err.message}`, err.code));
          else failure = err;
        });
        ws.once('open', () => {
          open = true;
          ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
            const bytes = Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
            events.message(isBinary ? msgpack.decodeMessage(bytes) : ndjson.decodeMessage(bytes));
          });
          ws.once('close', () => events.close(failure));
          resolve({
            send(request) {
              if (ws.readyState !== WebSocket.OPEN) return;
              const encoded = codec.encode(request);
              // A text message is one JSON value: no line terminator.
              ws.send(binary ? encoded : encoded.subarray(0, encoded.length - 1).toString('utf8'), { binary });
            },
            pause: () => ws.pause(),
            resume: () => ws.resume(),
            destroy: () => ws.terminate(),
            unref: () => socket?.unref(),
            ref: () => socket?.ref(),
          });
        });
      });
    },
  };
}
