/**
 * The RPC server: the Unix listener, its connections, the dispatcher with every method, and the supervisor.
 * Life-cycle concerns (token sources, lock, daemonizing, signals) live in src/daemon; this class only serves.
 */
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import { Supervisor, type SupervisorOptions } from '../process/supervisor.js';
import { TokenCheck } from './auth.js';
import { Connection, DEFAULT_FLOW_LIMITS, type ConnectionHooks, type FlowLimits, type Outbound } from './connection.js';
import { Dispatcher, type MethodDef } from './dispatch.js';
import { LineSplitter, MAX_LINE_BYTES } from './framing.js';
import { processMethods, type ProcessMethodHooks } from './methods/process.js';
import { serverMethods } from './methods/server.js';
import { decodeLine, ndjsonCodec } from './ndjson.js';
import { formatDuration } from '../util/duration.js';
import { clearStaleSocket, listenUnix, prepareSocketDirectory } from './unix.js';

/** Features advertised by server.capabilities, reference names first in reference order, `server.instance_id` last. */
export const REFERENCE_FEATURES = ['process.stdin.offset'] as const;
/** Our extensions that are always on, listed after the reference's features. */
export const EXTENSION_FEATURES = ['process.stdin.eof'] as const;

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
  readonly hooks?: ConnectionHooks & ProcessMethodHooks & { connected?(): void };
  /** Fixed per boot by the daemon (it goes into the lock record too); random when not given. */
  readonly instanceId?: string;
  readonly idleTimeoutMs?: number;
  /** Called when a client asks for shutdown; the daemon runs the teardown. */
  readonly onShutdownRequest: (reason: string) => void;
}

interface Tracked {
  readonly socket: net.Socket;
  lastActivity: number;
}

export class RpcServer {
  readonly instanceId: string;
  readonly startedAt = Date.now();
  readonly supervisor: Supervisor;
  readonly dispatcher: Dispatcher;
  readonly #options: ServerOptions;
  readonly #log: Logger;
  readonly #limits: FlowLimits;
  readonly #connections = new Map<Connection, Tracked>();
  readonly #listener: net.Server;
  readonly #idleTimer: NodeJS.Timeout;
  readonly #idleTimeoutMs: number;
  #connectionSeq = 0;
  /** performance.now() when the last connection closed; while one is open, `connectionCount` says so. */
  #lastConnectionAt = performance.now();

  constructor(options: ServerOptions) {
    this.#options = options;
    this.instanceId = options.instanceId ?? randomBytes(16).toString('hex');
    this.#log = options.log;
    this.#limits = { ...DEFAULT_FLOW_LIMITS, ...options.flow };
    this.supervisor = new Supervisor(options.log, options.supervisor);
    const methods: MethodDef[] = [
      ...serverMethods(
        {
          version: options.version,
          instanceId: this.instanceId,
          startedAt: this.startedAt,
          methodNames: () => this.dispatcher.methodNames,
          features: () => [...REFERENCE_FEATURES, 'server.instance_id', ...EXTENSION_FEATURES],
          requestShutdown: (reason) => options.onShutdownRequest(reason),
        },
        options.log,
      ),
      ...processMethods(this.supervisor, options.log, options.hooks),
    ];
    this.dispatcher = new Dispatcher(methods, new TokenCheck(options.token), options.log);
    this.#listener = net.createServer({ allowHalfOpen: true, pauseOnConnect: false }, (socket) => this.#accept(socket));
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

  #closeIdle(): void {
    const now = performance.now();
    for (const [conn, t] of this.#connections) {
      if (now - t.lastActivity >= this.#idleTimeoutMs) {
        this.#log.info('Server', `closing connection idle ${formatDuration(this.#idleTimeoutMs)} in both directions: ${conn.label}`);
        t.socket.destroy();
      }
    }
  }

  /** Prepares the directory, replaces a stale socket, and listens. */
  async listen(): Promise<void> {
    const { socketPath } = this.#options;
    await prepareSocketDirectory(socketPath);
    await clearStaleSocket(socketPath);
    await listenUnix(this.#listener, socketPath);
    this.#log.info('Server', `listening on ${socketPath}`);
  }

  /** Stops accepting, closes every connection (flushing what is queued), and resolves with how many there were. */
  async close(): Promise<number> {
    const count = this.#connections.size;
    clearInterval(this.#idleTimer);
    const closed = new Promise<void>((resolve) => this.#listener.close(() => resolve()));
    for (const conn of this.#connections.keys()) conn.close();
    // A peer that does not read must not hold the shutdown: whatever it has not taken after a grace is dropped.
    const grace = setTimeout(() => {
      for (const t of this.#connections.values()) t.socket.destroy();
    }, SHUTDOWN_FLUSH_MS);
    await closed;
    clearTimeout(grace);
    this.supervisor.close();
    return count;
  }

  #accept(socket: net.Socket): void {
    const label = `unix#${++this.#connectionSeq}`;
    this.#options.hooks?.connected?.();
    this.#log.debug('Server', `New connection from: ${label}`);
    const tracked: Tracked = { socket, lastActivity: performance.now() };
    const out: Outbound = {
      write: (data, flushed) => {
        tracked.lastActivity = performance.now();
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
    const conn = new Connection(label, out, ndjsonCodec, this.dispatcher, { shutdownNeedsAuth: false }, this.#limits, this.#log, this.#options.hooks);
    this.#connections.set(conn, tracked);
    const maxLine = this.#options.maxLineBytes ?? MAX_LINE_BYTES;
    const splitter = new LineSplitter(maxLine);
    const onLine = (line: Buffer) => {
      try {
        const req = decodeLine(line);
        if (req !== null) conn.handle(req);
      } catch (err) {
        // A bug on the read path costs this connection, never the daemon.
        this.#log.error('Server', `closing connection ${label}: unexpected error: ${(err as Error).stack ?? String(err)}`);
        socket.destroy();
      }
    };
    socket.on('data', (chunk: Buffer) => {
      tracked.lastActivity = performance.now();
      if (!splitter.push(chunk, onLine)) {
        // Reference behaviour: an over-long line closes the connection with no reply.
        this.#log.warn('Server', `closing connection ${label}: request line longer than ${maxLine} bytes`);
        socket.destroy();
      }
    });
    socket.on('end', () => {
      splitter.end(onLine);
      conn.inputEnded();
    });
    socket.on('error', (err) => this.#log.debug('Server', `connection ${label}: ${err.message}`));
    socket.on('close', () => {
      this.#connections.delete(conn);
      this.#lastConnectionAt = performance.now();
      conn.transportClosed();
      this.#log.debug('Server', `Connection closed: ${label}`);
    });
  }
}
