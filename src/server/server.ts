/**
 * The RPC server: the listeners (Unix socket; WebSocket when asked), their connections, the dispatcher with every
 * method, and the supervisor. Life-cycle concerns (token sources, lock, daemonizing, signals) live in src/daemon.
 */
import { randomBytes } from 'node:crypto';
import type http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { WebSocket } from 'ws';
import { DEFAULT_MAX_EXTRACT_BYTES } from '../files/extract.js';
import { DEFAULT_GIT_TIMEOUT_MS } from '../git/run.js';
import type { Logger } from '../log/logger.js';
import { Supervisor, type SupervisorOptions } from '../process/supervisor.js';
import { formatDuration } from '../util/duration.js';
import { TokenCheck } from './auth.js';
import { Connection, DEFAULT_FLOW_LIMITS, type ConnectionHooks, type FlowLimits, type Outbound, type WireCodec } from './connection.js';
import { Dispatcher, type DispatchOptions, type MethodDef } from './dispatch.js';
import { LineSplitter, MAX_LINE_BYTES } from './framing.js';
import { extensionMethods } from './methods/extensions.js';
import { filesMethods, type FilesOptions } from './methods/files.js';
import { gitMethods, type GitMethodOptions } from './methods/git.js';
import { processMethods, type ProcessMethodHooks } from './methods/process.js';
import { serverMethods } from './methods/server.js';
import { decodeMessage, isMapHeader, MessageSplitter, msgpackCodec } from './msgpack.js';
import { decodeLine, ndjsonCodec } from './ndjson.js';
import { NOT_A_REQUEST, type DecodedRequest } from './request.js';
import { clearStaleSocket, listenUnix, prepareSocketDirectory } from './unix.js';
import type { WebSocketListener, WebSocketOptions } from './websocket.js';

/** Features advertised by server.capabilities, reference names first in reference order. */
export const REFERENCE_FEATURES = ['process.stdin.offset', 'git.status.baseRepo'] as const;
/** Our extensions that are always on, listed after the reference's features. */
export const EXTENSION_FEATURES = ['process.stdin.eof', 'process.list', 'process.stats', 'wire.msgpack'] as const;

/** Most simultaneous connections; further ones are closed at accept. */
export const MAX_CONNECTIONS = 1024;
/** How long shutdown lets each connection flush what is queued before cutting it. */
export const SHUTDOWN_FLUSH_MS = 500;
/** A connection with no read and no write for this long is closed (reference: 5 minutes, fixed). */
export const IDLE_TIMEOUT_MS = 5 * 60_000;

export interface ServerOptions {
  readonly socketPath: string;
  readonly token: string;
  readonly version: string;
  readonly log: Logger;
  readonly flow?: Partial<FlowLimits>;
  readonly maxLineBytes?: number;
  readonly maxConnections?: number;
  readonly supervisor?: SupervisorOptions;
  /** files.* and git.* limits (`-max-extract-bytes`, `-git-timeout`); each defaults to off. */
  readonly workspace?: Partial<FilesOptions & GitMethodOptions>;
  readonly hooks?: ConnectionHooks & ProcessMethodHooks & { connected?(): void };
  /** Fixed per boot by the daemon (it goes into the lock record too); random when not given. */
  readonly instanceId?: string;
  readonly idleTimeoutMs?: number;
  /** Serve WebSocket too (`-ws-addr`). */
  readonly websocket?: WebSocketOptions;
  /** Called when a client asks for shutdown; the daemon runs the teardown. */
  readonly onShutdownRequest: (reason: string) => void;
}

export class RpcServer {
  readonly instanceId: string;
  readonly startedAt = Date.now();
  readonly supervisor: Supervisor;
  readonly dispatcher: Dispatcher;
  readonly #options: ServerOptions;
  readonly #log: Logger;
  readonly #limits: FlowLimits;
  readonly #maxLine: number;
  readonly #connections = new Set<Connection>();
  readonly #listener: net.Server;
  readonly #idleTimer: NodeJS.Timeout;
  readonly #idleTimeoutMs: number;
  #websocket: WebSocketListener | undefined;
  #connectionSeq = 0;
  /** performance.now() when the last connection closed; while one is open, `connectionCount` says so. */
  #lastConnectionAt = performance.now();

  constructor(options: ServerOptions) {
    this.#options = options;
    this.instanceId = options.instanceId ?? randomBytes(16).toString('hex');
    this.#log = options.log;
    this.#limits = { ...DEFAULT_FLOW_LIMITS, ...options.flow };
    this.#maxLine = options.maxLineBytes ?? MAX_LINE_BYTES;
    this.supervisor = new Supervisor(options.log, options.supervisor);
    const methods: MethodDef[] = [
      ...serverMethods(
        {
          version: options.version,
          instanceId: this.instanceId,
          startedAt: this.startedAt,
          methodNames: () => this.dispatcher.methodNames,
          features: () => [...REFERENCE_FEATURES, 'server.instance_id', ...EXTENSION_FEATURES, ...(this.#websocket ? ['transport.websocket'] : [])],
          requestShutdown: (reason) => options.onShutdownRequest(reason),
        },
        options.log,
      ),
      ...filesMethods({ maxExtractBytes: options.workspace?.maxExtractBytes ?? DEFAULT_MAX_EXTRACT_BYTES }),
      ...gitMethods({ gitTimeoutMs: options.workspace?.gitTimeoutMs ?? DEFAULT_GIT_TIMEOUT_MS }),
      ...processMethods(this.supervisor, options.log, options.hooks),
      ...extensionMethods(this.supervisor),
    ];
    this.dispatcher = new Dispatcher(methods, new TokenCheck(options.token), options.log);
    this.#listener = net.createServer({ allowHalfOpen: true }, (socket) => this.#acceptUnix(socket));
    this.#listener.maxConnections = options.maxConnections ?? MAX_CONNECTIONS;
    this.#listener.on('error', (err) => this.#log.error('Server', `listener error: ${err.message}`));
    this.#idleTimeoutMs = options.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    // Reference cadence: the watcher polls every min(timeout/4, 30 s).
    this.#idleTimer = setInterval(() => this.#closeIdle(), Math.min(this.#idleTimeoutMs / 4, 30_000));
    this.#idleTimer.unref();
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Milliseconds since a client was last connected (0 while one is). */
  get clientlessMs(): number {
    return this.#connections.size > 0 ? 0 : performance.now() - this.#lastConnectionAt;
  }

  /** The WebSocket listener's address, when there is one. */
  get websocketAddress(): net.AddressInfo | undefined {
    return this.#websocket?.address;
  }

  /** Prepares the directory, replaces a stale socket, and listens; then the WebSocket listener, if asked for. */
  async listen(): Promise<void> {
    const { socketPath } = this.#options;
    await prepareSocketDirectory(socketPath);
    await clearStaleSocket(socketPath);
    await listenUnix(this.#listener, socketPath);
    this.#log.info('Server', `listening on ${socketPath}`);
    if (this.#options.websocket) {
      // Loaded only when asked for: `ws` and node:http add 8 MB to a daemon whose spawn cost grows with its memory.
      const { listenWebSocket } = await import('./websocket.js');
      this.#websocket = await listenWebSocket(this.#options.websocket, this.#log, (ws, req) => this.#acceptWebSocket(ws, req));
    }
  }

  /** Stops accepting, closes every connection (flushing what is queued), and resolves with how many there were. */
  async close(): Promise<number> {
    const count = this.#connections.size;
    clearInterval(this.#idleTimer);
    const closed = new Promise<void>((resolve) => this.#listener.close(() => resolve()));
    for (const conn of this.#connections) conn.close();
    // A peer that does not read must not hold the shutdown: whatever it has not taken after a grace is dropped.
    const grace = setTimeout(() => {
      for (const conn of this.#connections) conn.destroy();
    }, SHUTDOWN_FLUSH_MS);
    await Promise.all([closed, this.#websocket?.close()]);
    clearTimeout(grace);
    this.supervisor.close();
    return count;
  }

  #closeIdle(): void {
    const now = performance.now();
    for (const conn of this.#connections) {
      if (now - conn.lastActivity >= this.#idleTimeoutMs) {
        this.#log.info('Server', `closing connection idle ${formatDuration(this.#idleTimeoutMs)} in both directions: ${conn.label}`);
        conn.destroy();
      }
    }
  }

  /** Registers a new connection; the transport calls `closed()` when it is gone. */
  #open(label: string, out: Outbound, codec: WireCodec, options: DispatchOptions) {
    this.#options.hooks?.connected?.();
    this.#log.debug('Server', `New connection from: ${label}`);
    const conn = new Connection(label, out, codec, this.dispatcher, options, this.#limits, this.#log, this.#options.hooks);
    this.#connections.add(conn);
    const handle = (req: DecodedRequest | typeof NOT_A_REQUEST | null) => {
      try {
        if (req !== null) conn.handle(req);
      } catch (err) {
        // A bug on the read path costs this connection, never the daemon.
        this.#log.error('Server', `closing connection ${label}: unexpected error: ${(err as Error).stack ?? String(err)}`);
        conn.destroy();
      }
    };
    const closed = () => {
      if (!this.#connections.delete(conn)) return;
      this.#lastConnectionAt = performance.now();
      conn.transportClosed();
      this.#log.debug('Server', `Connection closed: ${label}`);
    };
    return { conn, handle, closed };
  }

  #acceptUnix(socket: net.Socket): void {
    const label = `unix#${++this.#connectionSeq}`;
    const out: Outbound = {
      write: (data, flushed) => {
        if (!socket.destroyed) socket.write(data, flushed);
      },
      get backlog() {
        return socket.writableLength;
      },
      end: () => socket.end(),
      destroy: () => socket.destroy(),
      pauseInput: () => socket.pause(),
      resumeInput: () => socket.resume(),
    };
    const { conn, handle, closed } = this.#open(label, out, ndjsonCodec, { shutdownNeedsAuth: false });

    // The first byte picks the wire format for both directions: a MessagePack map header, or NDJSON.
    let feed: ((chunk: Buffer) => boolean) | undefined;
    let atEnd: (() => void) | undefined;
    const chooseFormat = (first: number) => {
      if (isMapHeader(first)) {
        conn.useCodec(msgpackCodec);
        const splitter = new MessageSplitter(this.#maxLine);
        feed = (chunk) => splitter.push(chunk, (m) => handle(decodeMessage(m)));
        // A value cut off by EOF cannot be decoded: it is answered as a parse error.
        atEnd = () => {
          if (splitter.pendingBytes > 0) handle(NOT_A_REQUEST);
        };
      } else {
        const splitter = new LineSplitter(this.#maxLine);
        const onLine = (line: Buffer) => handle(decodeLine(line));
        feed = (chunk) => splitter.push(chunk, onLine);
        atEnd = () => splitter.end(onLine);
      }
    };
    socket.on('data', (chunk: Buffer) => {
      conn.touch(); // every read counts, a partial request included (reference)
      if (feed === undefined) chooseFormat(chunk[0]!);
      if (!feed!(chunk)) {
        // Reference behaviour: an over-long request closes the connection with no reply.
        this.#log.refusal('request-too-long', 'Server', `closing connection ${label}: request longer than ${this.#maxLine} bytes`);
        socket.destroy();
      }
    });
    socket.on('end', () => {
      atEnd?.();
      conn.inputEnded();
    });
    socket.on('error', (err) => this.#log.debug('Server', `connection ${label}: ${err.message}`));
    socket.on('close', closed);
  }

  #acceptWebSocket(ws: WebSocket, req: http.IncomingMessage): void {
    const label = `ws#${++this.#connectionSeq} ${req.socket.remoteAddress}:${req.socket.remotePort}`;
    // Replies and frames go back in the kind of message the client last sent.
    let binary = false;
    const codec: WireCodec = {
      reply: (r) => (binary ? msgpackCodec.reply(r) : withoutNewline(ndjsonCodec.reply(r) as string)),
      frame: (origin, frame) => (binary ? msgpackCodec.frame(origin, frame) : withoutNewline(ndjsonCodec.frame(origin, frame) as string)),
    };
    const out: Outbound = {
      write: (data, flushed) => {
        if (ws.readyState === ws.OPEN) ws.send(data, { binary: typeof data !== 'string' }, () => flushed());
      },
      get backlog() {
        return ws.bufferedAmount;
      },
      end: () => ws.close(1001, 'server shutting down'),
      destroy: () => ws.terminate(),
      pauseInput: () => ws.pause(),
      resumeInput: () => ws.resume(),
    };
    // A TCP port has no file permissions: every request is authenticated, server.shutdown included.
    const { conn, handle, closed } = this.#open(label, out, codec, { shutdownNeedsAuth: true });
    ws.on('message', (data: Buffer, isBinary: boolean) => {
      conn.touch();
      binary = isBinary;
      handle(isBinary ? decodeMessage(data) : decodeLine(data));
    });
    ws.on('error', (err) => this.#log.debug('Server', `connection ${label}: ${err.message}`));
    ws.on('close', closed);
  }
}

function withoutNewline(line: string): string {
  return line.endsWith('\n') ? line.slice(0, -1) : line;
}
