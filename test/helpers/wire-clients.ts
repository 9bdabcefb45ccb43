/**
 * Test clients for the extension wires: MessagePack over the Unix socket, and WebSocket (text or binary). Like
 * RpcClient they record every message received and send exactly what they are given.
 */
import net from 'node:net';
import { Packr, Unpackr } from 'msgpackr';
import WebSocket from 'ws';
import { MessageSplitter } from '../../src/protocol/msgpack.js';

export const packr = new Packr({ useRecords: false, variableMapSize: true });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'auto' as 'bigint' });

abstract class MessageClient {
  readonly messages: any[] = [];
  #nextId = 1;
  #waiters: { pred: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  constructor(readonly token: string) {}

  protected received(msg: any): void {
    this.messages.push(msg);
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.pred(msg)) return true;
      w.resolve(msg);
      return false;
    });
  }

  waitFor(pred: (m: any) => boolean, timeoutMs = 20_000): Promise<any> {
    const have = this.messages.find(pred);
    if (have !== undefined) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('timed out waiting for a message')), timeoutMs);
      this.#waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  protected abstract send(msg: Record<string, unknown>): void;

  request(method: string, params?: unknown, extra: { auth?: unknown; id?: unknown; caller?: unknown } = {}): Promise<any> {
    const id = 'id' in extra ? extra.id : this.#nextId++;
    const msg: Record<string, unknown> = { jsonrpc: '2.0', id, method };
    if (params !== undefined) msg.params = params;
    msg.auth = 'auth' in extra ? extra.auth : this.token;
    if ('caller' in extra) msg.caller = extra.caller;
    const reply = this.waitFor((m) => m.type !== 'stream' && sameId(m.id, id));
    this.send(msg);
    return reply;
  }

  async call(method: string, params?: unknown): Promise<any> {
    const r = await this.request(method, params);
    if (r.error) throw new Error(`${method}: ${r.error.code} ${r.error.message}`);
    return r.result;
  }

  frames(processId: string): any[] {
    return this.messages.filter((m) => m.type === 'stream' && m.processId === processId);
  }

  waitExit(processId: string): Promise<any> {
    return this.waitFor((m) => m.type === 'stream' && m.processId === processId && m.stream === 'exit');
  }
}

function sameId(a: unknown, b: unknown): boolean {
  return JSON.stringify(a, (_k, v) => (typeof v === 'bigint' ? Number(v) : v)) === JSON.stringify(b);
}

export class MsgpackClient extends MessageClient {
  readonly closed: Promise<void>;
  private constructor(
    readonly socket: net.Socket,
    token: string,
  ) {
    super(token);
    const splitter = new MessageSplitter(64 * 1024 * 1024);
    socket.on('data', (chunk: Buffer) => splitter.push(chunk, (m) => this.received(unpackr.unpack(m))));
    socket.on('error', () => {});
    this.closed = new Promise((r) => socket.once('close', () => r()));
  }

  static connect(path: string, token: string): Promise<MsgpackClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(path);
      s.once('connect', () => resolve(new MsgpackClient(s, token)));
      s.once('error', reject);
    });
  }

  protected send(msg: Record<string, unknown>): void {
    this.socket.write(packr.pack(msg));
  }

  sendRaw(bytes: Buffer): void {
    this.socket.write(bytes);
  }

  /** Concatenated binary data of a process's stream. */
  output(processId: string, stream = 'stdout'): Buffer {
    return Buffer.concat(
      this.frames(processId)
        .filter((f) => f.stream === stream)
        .map((f) => Buffer.from(f.data)),
    );
  }
}

export class WsClient extends MessageClient {
  /** How each reply arrived: 'text' or 'binary'. */
  readonly kinds: string[] = [];
  binary = false;
  readonly closed: Promise<{ code: number }>;
  private constructor(
    readonly ws: WebSocket,
    token: string,
  ) {
    super(token);
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      this.kinds.push(isBinary ? 'binary' : 'text');
      this.received(isBinary ? unpackr.unpack(data) : JSON.parse(data.toString('utf8')));
    });
    ws.on('error', () => {});
    this.closed = new Promise((r) => ws.once('close', (code) => r({ code })));
  }

  static connect(url: string, token: string, options: WebSocket.ClientOptions = {}): Promise<WsClient> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, options);
      ws.once('open', () => resolve(new WsClient(ws, token)));
      ws.once('unexpected-response', (_req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
      ws.once('error', reject);
    });
  }

  protected send(msg: Record<string, unknown>): void {
    this.ws.send(this.binary ? packr.pack(msg) : JSON.stringify(msg));
  }

  output(processId: string, stream = 'stdout'): Buffer {
    return Buffer.concat(
      this.frames(processId)
        .filter((f) => f.stream === stream)
        .map((f) => (typeof f.data === 'string' ? Buffer.from(f.data, 'base64') : Buffer.from(f.data))),
    );
  }
}
