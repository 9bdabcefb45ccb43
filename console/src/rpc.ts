/**
 * One connection to the daemon: a WebSocket speaking MessagePack (binary messages), every request carrying the
 * token. Replies are matched by id; stream and gap frames go to `onFrame` in arrival order. The socket is injected,
 * so the same code runs in the page (the browser's WebSocket) and in Node tests (the `ws` package) against a real
 * daemon.
 */
import { decodeMessage, encodeRequest } from './codec.js';
import { ERR_UNAUTHORIZED, type Frame, type MethodMap, type MethodName } from './wire.js';

/** The part of the WebSocket API this uses (the browser's, and `ws`'s). */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'close' | 'error', listener: () => void): void;
  addEventListener(type: 'message', listener: (ev: { data: unknown }) => void): void;
}
export type SocketFactory = (url: string) => SocketLike;

export class RpcError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'RpcError';
    this.code = code;
  }
}

/** The connection closed before the reply came: whether the request was applied is unknown. */
export class ConnectionClosedError extends Error {
  constructor(why: string) {
    super(why);
    this.name = 'ConnectionClosedError';
  }
}

export interface RpcOptions {
  readonly socket?: SocketFactory;
  readonly onFrame?: (frame: Frame) => void;
  readonly onClose?: (why: string) => void;
}

interface Pending {
  resolve(result: unknown): void;
  reject(err: Error): void;
}

/** Text of a refused token, shown on the login form. */
export const REFUSED_TOKEN = 'The daemon refused this token (-32001). Copy it again from daemon.token beside the daemon socket.';

export class Rpc {
  readonly #ws: SocketLike;
  readonly #token: string;
  readonly #pending = new Map<number, Pending>();
  /** Where stream and gap frames go, in arrival order. */
  onFrame: ((frame: Frame) => void) | undefined;
  /** Called once when the connection ends, with why. */
  onClose: ((why: string) => void) | undefined;
  #nextId = 1;
  #closed: string | undefined;
  /** Messages received, replies and frames together (the flood figure). */
  messages = 0;

  private constructor(ws: SocketLike, token: string, options: RpcOptions) {
    this.#ws = ws;
    this.#token = token;
    this.onFrame = options.onFrame;
    this.onClose = options.onClose;
    ws.addEventListener('message', (ev) => this.#onMessage(ev.data));
    ws.addEventListener('close', () => this.#shut('the connection to the daemon closed'));
  }

  /**
   * Opens a connection and proves the token with server.ping: a refused token rejects with RpcError -32001 (and the
   * connection is closed); a listener that cannot be reached rejects with ConnectionClosedError.
   */
  static open(url: string, token: string, options: RpcOptions = {}): Promise<Rpc> {
    const ws = (options.socket ?? ((u: string) => new WebSocket(u) as unknown as SocketLike))(url);
    ws.binaryType = 'arraybuffer';
    return new Promise<Rpc>((resolve, reject) => {
      let opened = false;
      ws.addEventListener('error', () => {
        if (!opened) reject(new ConnectionClosedError(`cannot reach the daemon at ${url}`));
      });
      ws.addEventListener('open', () => {
        opened = true;
        const rpc = new Rpc(ws, token, options);
        rpc.call('server.ping', undefined).then(
          () => resolve(rpc),
          (err: Error) => {
            rpc.close();
            reject(err instanceof RpcError && err.code === ERR_UNAUTHORIZED ? new RpcError(err.code, REFUSED_TOKEN) : err);
          },
        );
      });
      ws.addEventListener('close', () => {
        if (!opened) reject(new ConnectionClosedError(`the daemon at ${url} refused the connection`));
      });
    });
  }

  get closed(): boolean {
    return this.#closed !== undefined;
  }

  call<M extends MethodName>(method: M, params: MethodMap[M]['params']): Promise<MethodMap[M]['result']> {
    if (this.#closed !== undefined) return Promise.reject(new ConnectionClosedError(this.#closed));
    const id = this.#nextId++;
    const request =
      params === undefined
        ? { jsonrpc: '2.0' as const, id, method, auth: this.#token }
        : { jsonrpc: '2.0' as const, id, method, params, auth: this.#token };
    return new Promise<MethodMap[M]['result']>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (r: unknown) => void, reject });
      this.#ws.send(encodeRequest(request));
    });
  }

  close(): void {
    this.#shut('closed by the page');
    this.#ws.close(1000, 'closed by the page');
  }

  #onMessage(data: unknown): void {
    this.messages++;
    if (!(data instanceof ArrayBuffer) && !(data instanceof Uint8Array)) {
      this.#protocolError('a text message (this page speaks MessagePack)');
      return;
    }
    const msg = decodeMessage(data instanceof Uint8Array ? data : new Uint8Array(data));
    switch (msg.kind) {
      case 'frame':
        this.onFrame?.(msg.frame);
        return;
      case 'result': {
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        p?.resolve(msg.result);
        return;
      }
      case 'error': {
        if (typeof msg.id !== 'number') {
          this.#protocolError(`error ${msg.error.code} ${msg.error.message} for no request`);
          return;
        }
        const p = this.#pending.get(msg.id);
        this.#pending.delete(msg.id);
        p?.reject(new RpcError(msg.error.code, msg.error.message));
        return;
      }
      case 'unknown':
        return;
      case 'invalid':
        this.#protocolError(msg.reason);
        return;
    }
  }

  #protocolError(reason: string): void {
    this.#shut(`the daemon sent something this page cannot read (${reason})`);
    this.#ws.close(1002, 'protocol error');
  }

  #shut(why: string): void {
    if (this.#closed !== undefined) return;
    this.#closed = why;
    const err = new ConnectionClosedError(why);
    for (const p of this.#pending.values()) p.reject(err);
    this.#pending.clear();
    this.onClose?.(why);
  }
}
