/**
 * The RPC layer: every method bound to the supervisor, the gate, and the connections the transports open. It knows
 * no socket: a transport hands it an Outbound (bytes out) and a codec, and feeds it decoded requests.
 */
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { AuditRecorder, PeerSource, Wire } from '../../audit/recorder.js';
import { DEFAULT_MAX_EXTRACT_BYTES } from '../../files/extract.js';
import { DEFAULT_GIT_TIMEOUT_MS } from '../../git/run.js';
import type { Logger } from '../../log/logger.js';
import type { Supervisor } from '../../process/supervisor.js';
import { formatDuration } from '../../util/duration.js';
import type { WireCodec } from './codec/codec.js';
import { Connection, type ConnectionHooks, DEFAULT_FLOW_LIMITS, type FlowLimits, type Outbound } from './connection.js';
import { Dispatcher, type DispatchOptions, type MethodDef } from './dispatch.js';
import { Gate, TokenCheck } from './gate.js';
import { extensionMethods } from './methods/extensions.js';
import { type FilesOptions, filesMethods } from './methods/files.js';
import { type GitMethodOptions, gitMethods } from './methods/git.js';
import { type ProcessMethodHooks, processMethods } from './methods/process.js';
import { serverMethods } from './methods/server.js';
import { sessionMethods } from './methods/session.js';
import type { DecodedRequest, NOT_A_REQUEST } from './request.js';

/** Features advertised by server.capabilities, reference names first in reference order. */
export const REFERENCE_FEATURES = ['process.stdin.offset', 'git.status.baseRepo'] as const;
/** Our extensions that are always on, listed after the reference's features. */
export const EXTENSION_FEATURES = [
  'process.stdin.eof',
  'process.list',
  'process.stats',
  'process.observe',
  'process.pty',
  'wire.msgpack',
  'process.kill.group',
  'process.spawn.clearEnv',
  'process.handover',
  'session.identify',
] as const;

/** How long shutdown lets each connection flush what is queued before cutting it. */
export const SHUTDOWN_FLUSH_MS = 500;
/** A connection with no read and no write for this long is closed (reference: 5 minutes, fixed). */
export const IDLE_TIMEOUT_MS = 5 * 60_000;

/** Why a connection was turned away (the `reason` label of `claustrum_connections_refused_total`). */
export type RefusalReason = 'unauthenticated' | 'authDeadline' | 'connections' | 'handshakes';

export interface RpcOptions {
  readonly supervisor: Supervisor;
  readonly token: string;
  readonly version: string;
  readonly log: Logger;
  readonly flow?: Partial<FlowLimits>;
  /** files.* and git.* limits (`-max-extract-bytes`, `-git-timeout`); each defaults to off. */
  readonly workspace?: Partial<FilesOptions & GitMethodOptions>;
  readonly hooks?: ConnectionHooks & ProcessMethodHooks & { connected?(): void; refused?(reason: RefusalReason): void };
  /** Fixed per boot by the daemon (it goes into the lock record too); random when not given. */
  readonly instanceId?: string;
  readonly idleTimeoutMs?: number;
  /** Called when a client asks for shutdown; the daemon runs the teardown. */
  readonly onShutdownRequest: (reason: string) => void;
  /** Methods the daemon adds (`server.info`), served in the protocol's order like the rest. */
  readonly methods?: readonly MethodDef[];
  /** `-audit`: every request after the parse stage is admitted and recorded by it (src/audit/recorder.ts). */
  readonly audit?: AuditRecorder;
}

/**
 * How a listener admits connections that have not authenticated yet (no request with the right token so far): at
 * most `maxUnauthenticated` of them at once (a further one is closed at once), each for at most `authDeadlineMs`.
 * Strangers on a TCP port can then hold only a bounded share of the daemon, whatever they send, and never the
 * Unix socket's share: each listener counts its own.
 */
export interface Admission {
  /** The listener's name in log lines and counts: `unix`, `ws`. */
  readonly transport: string;
  readonly maxUnauthenticated: number;
  readonly authDeadlineMs: number;
}

/** What a transport gets for each connection it opens. */
export interface OpenConnection {
  readonly conn: Connection;
  /**
   * Feeds one decoded message (null: a blank line, no reply) that came in `wire` format (JSON text by default). A
   * bug on the read path costs this connection only.
   */
  handle(req: DecodedRequest | typeof NOT_A_REQUEST | null, wire?: Wire): void;
  /** The transport is gone. */
  closed(): void;
}

export class RpcServer {
  readonly instanceId: string;
  readonly startedAt = Date.now();
  readonly supervisor: Supervisor;
  readonly dispatcher: Dispatcher;
  readonly #options: RpcOptions;
  readonly #log: Logger;
  readonly #limits: FlowLimits;
  readonly #connections = new Set<Connection>();
  readonly #idleTimer: NodeJS.Timeout;
  readonly #idleTimeoutMs: number;
  readonly #features = new Set<string>();
  /** Connections not yet authenticated, per listener. */
  readonly #strangers = new Map<string, Set<Connection>>();
  #connectionSeq = 0;
  /** performance.now() when the last connection closed; while one is open, `connectionCount` says so. */
  #lastConnectionAt = performance.now();

  constructor(options: RpcOptions) {
    this.#options = options;
    this.instanceId = options.instanceId ?? randomBytes(16).toString('hex');
    this.#log = options.log;
    this.#limits = { ...DEFAULT_FLOW_LIMITS, ...options.flow };
    this.supervisor = options.supervisor;
    const methods: MethodDef[] = [
      ...serverMethods(
        {
          version: options.version,
          instanceId: this.instanceId,
          startedAt: this.startedAt,
          methodNames: () => this.dispatcher.methodNames,
          features: () => [...REFERENCE_FEATURES, 'server.instance_id', ...EXTENSION_FEATURES, ...this.#features],
          requestShutdown: (reason) => options.onShutdownRequest(reason),
        },
        options.log,
      ),
      ...filesMethods({ maxExtractBytes: options.workspace?.maxExtractBytes ?? DEFAULT_MAX_EXTRACT_BYTES }),
      ...gitMethods({ gitTimeoutMs: options.workspace?.gitTimeoutMs ?? DEFAULT_GIT_TIMEOUT_MS }),
      ...processMethods(this.supervisor, options.log, options.hooks),
      ...extensionMethods(this.supervisor),
      ...sessionMethods(),
      ...(options.methods ?? []),
    ];
    this.dispatcher = new Dispatcher(new Gate(methods, new TokenCheck(options.token), options.log), options.log);
    this.#idleTimeoutMs = options.idleTimeoutMs ?? IDLE_TIMEOUT_MS;
    // Reference cadence: the watcher polls every min(timeout/4, 30 s).
    this.#idleTimer = setInterval(() => this.#closeIdle(), Math.min(this.#idleTimeoutMs / 4, 30_000));
    this.#idleTimer.unref();
    if (options.audit) this.addFeature('audit');
  }

  /** Advertises a feature a transport brings (`transport.websocket`). */
  addFeature(name: string): void {
    this.#features.add(name);
  }

  get connectionCount(): number {
    return this.#connections.size;
  }

  /** Milliseconds since a client was last connected (0 while one is). */
  get clientlessMs(): number {
    return this.#connections.size > 0 ? 0 : performance.now() - this.#lastConnectionAt;
  }

  /** A label for a new connection of a transport: `unix#3`, `ws#4 127.0.0.1:5555`. */
  nextLabel(transport: string, detail?: string): string {
    return `${transport}#${++this.#connectionSeq}${detail ? ` ${detail}` : ''}`;
  }

  /**
   * A transport turned a connection away before it became one (over a listener's cap): counted, and logged at most
   * a few times per window since a stranger can repeat it at will.
   */
  refused(reason: RefusalReason, message: string): void {
    this.#options.hooks?.refused?.(reason);
    this.#log.refusal(reason, 'Server', message);
  }

  /** Connections of a listener that have not authenticated yet. */
  unauthenticated(transport: string): number {
    return this.#strangers.get(transport)?.size ?? 0;
  }

  /**
   * Registers a new connection; the transport calls `closed()` when it is gone. Undefined when the listener already
   * holds its most unauthenticated connections: the transport closes this one at once. `peer` is what the audit
   * records of the other end (its lookup starts here).
   */
  open(
    label: string,
    out: Outbound,
    codec: WireCodec,
    options: Omit<DispatchOptions, 'authenticated'>,
    admission: Admission,
    peer?: PeerSource,
  ): OpenConnection | undefined {
    let strangers = this.#strangers.get(admission.transport);
    if (strangers === undefined) this.#strangers.set(admission.transport, (strangers = new Set()));
    if (strangers.size >= admission.maxUnauthenticated) {
      this.#options.hooks?.refused?.('unauthenticated');
      // A stranger can repeat this at will: rate-limited and counted (src/log/escape.ts).
      this.#log.refusal(
        'unauthenticated-cap',
        'Server',
        `refusing ${label}: ${strangers.size} ${admission.transport} connections have not authenticated yet (the most allowed)`,
      );
      return undefined;
    }
    this.#options.hooks?.connected?.();
    this.#log.debug('Server', `New connection from: ${label}`);
    let deadline: NodeJS.Timeout | undefined;
    const authenticated = () => {
      if (!strangers.delete(conn)) return;
      clearTimeout(deadline);
    };
    // The connection's number in the audit is the one in its label (`unix#3`): a log line and a record meet on it.
    const audit = peer && this.#options.audit?.connection(Number(/#(\d+)/.exec(label)?.[1] ?? 0), peer);
    const conn = new Connection(
      label,
      out,
      codec,
      this.dispatcher,
      { ...options, authenticated },
      this.#limits,
      this.#log,
      this.#options.hooks,
      audit,
    );
    this.#connections.add(conn);
    strangers.add(conn);
    deadline = setTimeout(() => {
      if (!strangers.has(conn)) return;
      this.#options.hooks?.refused?.('authDeadline');
      this.#log.refusal(
        'auth-deadline',
        'Server',
        `closing connection ${label}: not authenticated within ${formatDuration(admission.authDeadlineMs)}`,
      );
      conn.destroy();
    }, admission.authDeadlineMs);
    deadline.unref();
    return {
      conn,
      handle: (req, wire) => {
        try {
          if (req !== null) conn.handle(req, wire);
        } catch (err) {
          // A bug on the read path costs this connection, never the daemon.
          this.#log.error('Server', `closing connection ${label}: unexpected error: ${(err as Error).stack ?? String(err)}`);
          conn.destroy();
        }
      },
      closed: () => {
        clearTimeout(deadline);
        strangers.delete(conn);
        if (!this.#connections.delete(conn)) return;
        this.#lastConnectionAt = performance.now();
        conn.transportClosed();
        this.#log.debug('Server', `Connection closed: ${label}`);
      },
    };
  }

  /**
   * Closes every connection (flushing what is queued, cut after SHUTDOWN_FLUSH_MS) once `listenersClosed` settles,
   * and resolves with how many there were. The transports stop accepting first.
   */
  async close(listenersClosed: Promise<unknown>): Promise<number> {
    const count = this.#connections.size;
    clearInterval(this.#idleTimer);
    for (const conn of this.#connections) conn.close();
    // A peer that does not read must not hold the shutdown: whatever it has not taken after a grace is dropped.
    const grace = setTimeout(() => {
      for (const conn of this.#connections) conn.destroy();
    }, SHUTDOWN_FLUSH_MS);
    await listenersClosed;
    clearTimeout(grace);
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
}
