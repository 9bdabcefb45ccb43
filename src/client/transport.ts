/**
 * Transports: a connection to the daemon that carries encoded requests one way and decoded messages the other.
 *
 * The client needs only what `Channel` offers, so a WebSocket transport (one request per message) fits beside the
 * Unix socket (a byte stream cut by the codec). A transport opens one channel per connection; the client opens a
 * new one after every drop.
 */
import net from 'node:net';
import { ndjson, type Codec } from './codec.js';
import { ConnectError } from './errors.js';
import type { Incoming, WireRequest } from './wire.js';

export interface ChannelEvents {
  /** One decoded message, in arrival order. */
  message(msg: Incoming): void;
  /** The connection is gone (called once); `error` when it broke rather than closed. */
  close(error?: Error): void;
}

export interface Channel {
  /** Writes one request. Writes on a closed channel are dropped (its close has been, or will be, reported). */
  send(request: WireRequest): void;
  /** Stops reading (the daemon then holds the children feeding this connection); `resume` undoes it. */
  pause(): void;
  resume(): void;
  /** Tears the connection down at once; `close` is reported. */
  destroy(): void;
  /** Lets the program exit while this connection is open and idle (`ref` undoes it), as net.Socket's unref. */
  unref(): void;
  ref(): void;
}

export interface Transport {
  /** For messages: `unix:/run/user/1000/claustrum/rpc.sock`. */
  readonly description: string;
  /** The codec in use, for the client to shape binary params. */
  readonly codec: Codec;
  /** Connects. Rejects with ConnectError when nothing answers. */
  open(events: ChannelEvents): Promise<Channel>;
}

export interface UnixTransportOptions {
  readonly path: string;
  /** Wire format; NDJSON by default. */
  readonly codec?: Codec;
  /** How long a connect may take before it counts as failed. Default 5 s. */
  readonly connectTimeoutMs?: number;
}

export function unixTransport(options: UnixTransportOptions): Transport {
  const codec = options.codec ?? ndjson;
  const timeoutMs = options.connectTimeoutMs ?? 5000;
  return {
    description: `unix:${options.path}`,
    codec,
    open(events) {
      return new Promise<Channel>((resolve, reject) => {
        const socket = net.connect(options.path);
        const timer = setTimeout(
          () => socket.destroy(Object.assign(new Error(`connect ${options.path}: timed out`), { code: 'ETIMEDOUT' })),
          timeoutMs,
        );
        const failConnect = (err: Error) => {
          clearTimeout(timer);
          reject(new ConnectError(`connect ${options.path}: ${err.message}`, (err as NodeJS.ErrnoException).code));
        };
        socket.once('error', failConnect);
        socket.once('connect', () => {
          clearTimeout(timer);
          socket.off('error', failConnect);
          const decoder = codec.decoder();
          let failure: Error | undefined;
          socket.on('error', (err) => (failure = err));
          socket.on('data', (chunk: Buffer) => {
            for (const msg of decoder.push(chunk)) {
              if (socket.destroyed) return;
              events.message(msg);
            }
          });
          // A half-close from the daemon ends the conversation: replies to requests still in flight would never come.
          socket.on('end', () => socket.destroy());
          socket.once('close', () => events.close(failure));
          resolve({
            send(request) {
              if (!socket.destroyed && socket.writable) socket.write(codec.encode(request));
            },
            pause: () => socket.pause(),
            resume: () => socket.resume(),
            destroy: () => socket.destroy(),
            unref: () => socket.unref(),
            ref: () => socket.ref(),
          });
        });
      });
    },
  };
}
