/**
 * A deliberately plain NDJSON client for tests: it writes exactly what it is given and records every line it reads,
 * so tests see the wire, not a library's interpretation of it.
 */
import { createHash, type Hash } from 'node:crypto';
import net from 'node:net';
import { LineSplitter } from '../../src/protocol/ndjson.js';

/** What a client saw of one process's stream, without keeping it: for floods too large to hold as lines. */
export interface Tally {
  /** Seq of the last frame or gap notice taken. */
  lastSeq: number;
  /** Every data frame's seq, in arrival order, as contiguous ranges (a frame after a gap starts a new range). */
  ranges: [number, number][];
  /** Gap notices, as received. */
  gaps: { fromSeq: number; toSeq: number }[];
  /** Frames whose seq did not follow the previous one with nothing between (no notice): must stay empty. */
  jumps: { after: number; seq: number }[];
  /** SHA-256 of the stdout bytes received, in order. */
  stdout: Hash;
  stdoutBytes: number;
  exit: WireFrame | undefined;
}

export interface WireFrame {
  type: 'stream';
  processId: string;
  stream: 'stdout' | 'stderr' | 'exit';
  seq: number;
  data?: string;
  exitCode?: number;
  signal?: string;
  killedBy?: string;
}

export interface WireReply {
  jsonrpc: '2.0';
  id: unknown;
  result?: any;
  error?: { code: number; message: string };
}

export class RpcClient {
  readonly socket: net.Socket;
  readonly token: string;
  /** Every line received, raw, in order. */
  readonly lines: string[] = [];
  readonly closed: Promise<void>;
  // Replies can be large (files.read up to 64 MiB): assemble lines without re-copying what was read.
  #splitter = new LineSplitter(Number.MAX_SAFE_INTEGER);
  #nextId = 1;
  #waiters: { pred: (m: any) => boolean; resolve: (m: any) => void }[] = [];
  #isClosed = false;
  readonly #keepFrames: boolean;
  readonly #tallies = new Map<string, Tally>();

  private constructor(socket: net.Socket, token: string, keepFrames: boolean) {
    this.socket = socket;
    this.token = token;
    this.#keepFrames = keepFrames;
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', () => {});
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#isClosed = true;
        resolve();
      }),
    );
  }

  /** With `keepFrames: false` stream frames are tallied (see `tally`) instead of kept in `lines`. */
  static connect(path: string, token = '', options: { keepFrames?: boolean } = {}): Promise<RpcClient> {
    return new Promise((resolve, reject) => {
      const s = net.connect(path);
      s.once('connect', () => resolve(new RpcClient(s, token, options.keepFrames ?? true)));
      s.once('error', reject);
    });
  }

  /** What arrived for a process (frames and gap notices), kept or not. */
  tally(processId: string): Tally {
    let t = this.#tallies.get(processId);
    if (t === undefined) {
      t = { lastSeq: 0, ranges: [], gaps: [], jumps: [], stdout: createHash('sha256'), stdoutBytes: 0, exit: undefined };
      this.#tallies.set(processId, t);
    }
    return t;
  }

  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Parsed messages, in arrival order. */
  messages(): any[] {
    return this.lines.map((l) => JSON.parse(l));
  }

  frames(processId?: string): WireFrame[] {
    return this.messages().filter((m) => m.type === 'stream' && (processId === undefined || m.processId === processId));
  }

  /** The concatenated bytes of one stream of a process, decoded from the frames received so far. */
  output(processId: string, stream: 'stdout' | 'stderr' = 'stdout'): Buffer {
    return Buffer.concat(
      this.frames(processId)
        .filter((f) => f.stream === stream)
        .map((f) => Buffer.from(f.data!, 'base64')),
    );
  }

  sendRaw(text: string | Buffer): void {
    this.socket.write(text);
  }

  /** Sends a request line built from the parts given (auth defaults to the token) and waits for its reply. */
  request(method: string, params?: unknown, extra: { id?: unknown; auth?: unknown; jsonrpc?: unknown; caller?: unknown } = {}): Promise<WireReply> {
    const id = 'id' in extra ? extra.id : this.#nextId++;
    const msg: Record<string, unknown> = { jsonrpc: 'jsonrpc' in extra ? extra.jsonrpc : '2.0', id, method };
    if (params !== undefined) msg.params = params;
    msg.auth = 'auth' in extra ? extra.auth : this.token;
    if ('caller' in extra) msg.caller = extra.caller;
    const reply = this.waitFor((m) => m.type !== 'stream' && JSON.stringify(m.id) === JSON.stringify(id));
    this.socket.write(`${JSON.stringify(msg)}\n`);
    return reply;
  }

  /** A request that must succeed; returns its result. */
  async call(method: string, params?: unknown): Promise<any> {
    const reply = await this.request(method, params);
    if (reply.error) throw new Error(`${method} failed: ${reply.error.code} ${reply.error.message}`);
    return reply.result;
  }

  /** Resolves with the first message (already received or future) matching `pred`. */
  waitFor(pred: (m: any) => boolean, timeoutMs = 20_000): Promise<any> {
    const have = this.messages().find(pred);
    if (have !== undefined) return Promise.resolve(have);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out; last lines: ${this.lines.slice(-3).join(' | ').slice(0, 500)}`)), timeoutMs);
      this.#waiters.push({
        pred,
        resolve: (m) => {
          clearTimeout(timer);
          resolve(m);
        },
      });
    });
  }

  waitExit(processId: string, timeoutMs = 20_000): Promise<WireFrame> {
    return this.waitFor((m) => m.type === 'stream' && m.processId === processId && m.stream === 'exit', timeoutMs);
  }

  destroy(): void {
    this.socket.destroy();
  }

  #count(msg: any): void {
    countInto(this.tally(msg.processId), msg);
  }

  #onData(chunk: Buffer): void {
    this.#splitter.push(chunk, (bytes) => this.#onLine(bytes.toString('utf8')));
  }

  #onLine(line: string): void {
    const msg = JSON.parse(line);
    if (msg.type === 'stream' || msg.type === 'gap') this.#count(msg);
    if (this.#keepFrames || (msg.type !== 'stream' && msg.type !== 'gap')) this.lines.push(line);
    if (this.#waiters.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => {
      if (!w.pred(msg)) return true;
      w.resolve(msg);
      return false;
    });
  }
}

function countInto(t: Tally, msg: any): void {
  if (msg.type === 'gap') {
    t.gaps.push({ fromSeq: msg.fromSeq, toSeq: msg.toSeq });
    t.lastSeq = msg.toSeq;
    return;
  }
  if (msg.seq !== t.lastSeq + 1) t.jumps.push({ after: t.lastSeq, seq: msg.seq });
  const last = t.ranges.at(-1);
  if (last && last[1] === msg.seq - 1) last[1] = msg.seq;
  else t.ranges.push([msg.seq, msg.seq]);
  t.lastSeq = msg.seq;
  if (msg.stream === 'stdout') {
    const data = Buffer.from(msg.data, 'base64');
    t.stdout.update(data);
    t.stdoutBytes += data.length;
  }
  if (msg.stream === 'exit') t.exit = msg;
}

export function b64(s: string | Buffer): string {
  return Buffer.from(s).toString('base64');
}
