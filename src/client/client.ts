/**
 * The resuming client: one connection at a time to one daemon, re-established whenever it drops.
 *
 * Reconnection, in order: wait a capped, jittered backoff; re-read the token (a replaced daemon writes a new one);
 * connect and authenticate with `server.capabilities` (its `instanceId` tells whether the daemon was replaced, in
 * which case every held process is reported lost); then bring every held process onto the new connection (a
 * reattach from the last seq it delivered, or the spawn it was still waiting to send) and send the requests queued
 * meanwhile. Requests that were on the wire when it dropped are sent again when repeating them is harmless, and
 * rejected with InterruptedError when it is not. See PROTOCOL.md, "Client library and -run".
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { ndjson, type Codec } from './codec.js';
import { defaultSocketPath, ensureDaemon, readTokenFile, type StartDaemonOptions } from './daemon.js';
import { AuthError, ClosedError, ConnectError, DroppedError, InterruptedError, ProcessLostError, RpcError } from './errors.js';
import { ObserverHandle } from './observer.js';
import type { GapInfo } from './output.js';
import { checkTerminalSize, type HandleHost, ProcessHandle } from './process.js';
import { msgpack } from './msgpack.js';
import { unixTransport, type Channel, type Transport } from './transport.js';
import { websocketTransport, type WebSocketTransportOptions } from './websocket.js';
import type {
  Caller,
  MethodName,
  ParamsOf,
  ResultOf,
  CapabilitiesResult,
  Incoming,
  KillAndWaitResult,
  KillResult,
  ListResult,
  PingResult,
  ShutdownResult,
  SpawnParams,
  StatsResult,
  StdinParams,
  StdinResult,
} from './wire.js';
import { TOKEN_FILE } from '../protocol/paths.js';

/** Read pause: bytes held by output iterators that are being consumed. Above HIGH the connection stops being read. */
export const QUEUED_HIGH_BYTES = 8 * 1024 * 1024;
export const QUEUED_LOW_BYTES = 2 * 1024 * 1024;
/** How long a first connect waits for `daemon.token` to appear beside a socket that accepts (a daemon starting). */
const TOKEN_WAIT_MS = 3000;
const UNAUTHORIZED = -32001;

export interface ReconnectOptions extends BackoffOptions {
  /** Give up (close the client, fail every held process) after this long without a working connection. Default 60 s. */
  readonly giveUpAfterMs?: number;
}

export interface ConnectOptions {
  /** The daemon's Unix socket; the daemon's default (`$XDG_RUNTIME_DIR/claustrum/rpc.sock`, else `~/.claustrum/rpc.sock`). */
  readonly socket?: string;
  /** The token. Without one, `daemon.token` beside the socket is read, and read again at every reconnect. */
  readonly token?: string;
  /** Where to read the token instead of `daemon.token` beside the socket. */
  readonly tokenFile?: string;
  /** Start a daemon (`claustrum -serve -socket …`) when nothing answers on the socket. */
  readonly startDaemon?: boolean | StartDaemonOptions;
  /**
   * Wire format on the Unix socket: `ndjson` (the reference's, the default) or `msgpack` (extension `wire.msgpack`:
   * output and stdin as binary, no base64), or a Codec of your own.
   */
  readonly wire?: 'ndjson' | 'msgpack' | Codec;
  /**
   * Connect over WebSocket instead (extension `transport.websocket`, daemon flag `-ws-addr`): a URL such as
   * `ws://127.0.0.1:7777/rpc` (MessagePack messages), or options. `socket` then only says where `daemon.token` is.
   */
  readonly websocket?: string | WebSocketTransportOptions;
  /** Any other transport; overrides `socket`, `wire` and `websocket` for connecting. */
  readonly transport?: Transport;
  /** Reconnection; `false` makes a drop close the client. */
  readonly reconnect?: ReconnectOptions | false;
  /** Prefix of generated process ids. Default `c-`. */
  readonly idPrefix?: string;
  /**
   * On whose behalf this client acts, for the daemon's audit log (`session.identify`, feature `session.identify`):
   * declared on every connection, right after authenticating and before anything else is sent, so every request of
   * the client is recorded with it. A caller the daemon refuses fails the connect with its reason
   * (`Invalid caller: …`). A daemon without the feature gets nothing: its requests are simply not attributed.
   */
  readonly caller?: Caller;
}

export interface SpawnOptions {
  /** Any non-empty string; a random one by default. Must not name a live process (a spawn would replace it). */
  readonly id?: string;
  readonly command: string;
  readonly args?: readonly string[];
  readonly cwd?: string;
  /** Merged over the daemon's environment. */
  readonly env?: Readonly<Record<string, string>>;
  /** Ask for pid and startTime (`handle.pid`, `handle.startTime` once ready). */
  readonly wantPid?: boolean;
  /**
   * Extension `process.pty`: run on a pseudo-terminal of this size (1 to 1000 columns and rows). Its output is one
   * stream (`stdout`); `handle.resize()` changes the size; TerminalScreen renders what it draws.
   */
  readonly pty?: { readonly cols: number; readonly rows: number };
  /** With `pty`: TERM for the program (the daemon's default: `xterm-256color`). */
  readonly term?: string;
}

export interface AttachOptions {
  /** Deliver frames after this seq (0: everything the daemon still holds; a gap event if that is not all). */
  readonly fromSeq?: number;
  readonly wantPid?: boolean;
  /**
   * Terminals: start with the screen as it is now (`process.reattach` `screen: true`): a `screen` item standing for
   * the frames the daemon no longer holds, then the frames it does, so nothing is reported lost. `fromSeq` is then
   * ignored. Without it a terminal whose older frames were evicted also gets a `screen` instead of a gap.
   */
  readonly screen?: boolean;
}

export interface ObserveOptions {
  /** Deliver frames after this seq (0: everything the daemon still holds; a gap event if that is not all). */
  readonly fromSeq?: number;
}

export interface CallOptions {
  /** Whether the request may be sent again after a drop that left its outcome unknown. Default false. */
  readonly idempotent?: boolean;
}

export interface ClientEvents {
  /** Authenticated on a (new) connection. */
  connect: [info: { instanceId: string; reconnect: boolean; replaced: boolean }];
  disconnect: [error: Error | undefined];
  reconnecting: [info: { attempt: number; delayMs: number; error: Error | undefined }];
  /** From any held process. */
  gap: [gap: GapInfo];
  lost: [error: ProcessLostError];
  /** Closed for good: by close() (no error) or after giving up reconnecting. */
  close: [error: Error | undefined];
}

interface Inflight {
  readonly method: string;
  readonly done: (error: Error | undefined, result: unknown) => void;
}

interface Queued {
  readonly method: string;
  readonly params: object | undefined;
  readonly idempotent: boolean;
  readonly resolve: (result: unknown) => void;
  readonly reject: (error: Error) => void;
}

export class Client extends EventEmitter<ClientEvents> {
  readonly #transport: Transport;
  readonly #socket: string | undefined;
  readonly #tokenFile: string | undefined;
  #token: string | undefined;
  readonly #explicitToken: boolean;
  readonly #reconnect: ReconnectOptions | false;
  readonly #idPrefix: string;
  readonly #caller: Caller | undefined;

  #channel: Channel | undefined;
  /** Generation of the newest channel; messages and closes of older ones are ignored. */
  #gen = 0;
  /** The generation that is open and authenticated, if any. */
  #live: number | undefined;
  readonly #inflight = new Map<number, Inflight>();
  #queue: Queued[] = [];
  readonly #handles = new Map<string, ProcessHandle>();
  readonly #observers = new Map<string, ObserverHandle>();
  /**
   * Process ids whose frames may still arrive on connection `gen` though no follower asks for them: a handle was
   * detached (the connection stays the owner: nothing is said on the wire), or an observer ended before its
   * `process.unobserve` was answered. Cleared when the connection goes, and per id at the process's exit frame.
   */
  readonly #strays = new Map<string, number>();
  #nextId = 1;
  #closed = false;
  #reconnecting = false;
  #wake: (() => void) | undefined;
  #instanceId: string | undefined;
  #capabilities: CapabilitiesResult | undefined;
  #queuedBytes = 0;
  /** Whether the connection and timers keep the program alive (see #updateRef). */
  #referenced = true;
  #sleepTimer: NodeJS.Timeout | undefined;
  #paused = false;
  readonly #host: HandleHost;

  /** Use `connect()`. */
  constructor(options: ConnectOptions = {}) {
    super();
    const viaUnix = options.transport === undefined && options.websocket === undefined;
    const socket = viaUnix || options.socket !== undefined ? path.resolve(options.socket ?? defaultSocketPath()) : undefined;
    this.#socket = viaUnix ? socket : undefined;
    const codec = options.wire === 'msgpack' ? msgpack : options.wire === 'ndjson' || options.wire === undefined ? ndjson : options.wire;
    this.#transport =
      options.transport ??
      (options.websocket !== undefined
        ? websocketTransport(typeof options.websocket === 'string' ? { url: options.websocket } : options.websocket)
        : unixTransport({ path: socket!, codec }));
    this.#explicitToken = options.token !== undefined;
    this.#token = options.token;
    this.#tokenFile = options.tokenFile ?? (socket !== undefined ? path.join(path.dirname(socket), TOKEN_FILE) : undefined);
    this.#reconnect = options.reconnect ?? {};
    this.#idPrefix = options.idPrefix ?? 'c-';
    this.#caller = options.caller;
    const self = this;
    this.#host = {
      get liveGeneration() {
        return self.#live;
      },
      sendOn: (gen, method, params, done) => this.#sendOn(gen, method, params, done),
      request: <T>(method: string, params: object, idempotent = false) => this.#request<T>(method, params, idempotent),
      queuedBytes: (delta) => this.#onQueuedBytes(delta),
      release: (handle, followedOn) => {
        if (this.#handles.get(handle.id) === handle) this.#handles.delete(handle.id);
        if (this.#observers.get(handle.id) === handle) this.#observers.delete(handle.id);
        if (followedOn !== undefined && followedOn === this.#gen && this.#channel !== undefined) this.#strays.set(handle.id, followedOn);
        this.#updateRef();
      },
      strayFrames: (id, gen) => this.#strays.get(id) === gen,
      report: (event, payload) => {
        if (event === 'gap') this.emit('gap', payload as GapInfo);
        else this.emit('lost', payload as ProcessLostError);
      },
    };
  }

  /** The daemon's instance id on the current (or last) connection. */
  get instanceId(): string | undefined {
    return this.#instanceId;
  }

  /** What `server.capabilities` said at the last connect. */
  get serverCapabilities(): CapabilitiesResult | undefined {
    return this.#capabilities;
  }

  get connected(): boolean {
    return this.#live !== undefined;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Processes held (spawned or attached, not yet exited). */
  get processes(): ProcessHandle[] {
    return [...this.#handles.values()];
  }

  /** Processes observed (not yet exited or unobserved). */
  get observing(): ObserverHandle[] {
    return [...this.#observers.values()];
  }

  /** @internal First connection; starts a daemon if asked to and nothing answers. */
  async open(startDaemon: boolean | StartDaemonOptions | undefined): Promise<void> {
    // The first connection is not retried: a drop during it fails connect() instead of starting the reconnect loop.
    this.#reconnecting = true;
    try {
      await this.#open(true);
    } catch (err) {
      const nothingThere = err instanceof ConnectError && (err.errno === 'ENOENT' || err.errno === 'ECONNREFUSED');
      if (!startDaemon || !nothingThere || this.#socket === undefined) throw err;
      await ensureDaemon(this.#socket, typeof startDaemon === 'object' ? startDaemon : {});
      await this.#open(true);
    } finally {
      this.#reconnecting = false;
    }
    // Dropped right after the handshake: now the loop takes over.
    if (this.#live === undefined && !this.#closed) {
      if (this.#reconnect === false) this.#shutdown(new ClosedError('connection lost (reconnection is off)'));
      else void this.#reconnectLoop(this.#reconnect);
    }
  }

  // ---- methods ----

  ping(): Promise<PingResult> {
    return this.#typed('server.ping', undefined, true);
  }

  capabilities(): Promise<CapabilitiesResult> {
    return this.#typed('server.capabilities', undefined, true);
  }

  /** Stops the daemon and every child. */
  shutdown(): Promise<ShutdownResult> {
    return this.#typed('server.shutdown', undefined, false);
  }

  /**
   * Spawns a process and returns its handle at once, so listeners and iterators are in place before any output.
   * `handle.ready` settles when the daemon answered.
   */
  spawn(options: SpawnOptions): ProcessHandle {
    if (this.#closed) throw new ClosedError();
    const id = options.id ?? `${this.#idPrefix}${randomUUID()}`;
    this.#claim(id);
    const params: SpawnParams = {
      id,
      command: options.command,
      ...(options.args !== undefined ? { args: options.args } : {}),
      ...(options.cwd !== undefined ? { cwd: options.cwd } : {}),
      ...(options.env !== undefined ? { env: options.env } : {}),
      ...(options.wantPid ? { wantPid: true } : {}),
      ...(options.pty !== undefined ? { pty: { cols: options.pty.cols, rows: options.pty.rows } } : {}),
      ...(options.term !== undefined ? { term: options.term } : {}),
    };
    if (options.pty !== undefined) checkTerminalSize(options.pty.cols, options.pty.rows);
    return this.#hold(new ProcessHandle(this.#host, id, { spawn: params }));
  }

  /**
   * Follows a process spawned elsewhere (another client, an earlier run): this connection becomes its receiver
   * (a previous receiver's connection is closed by the daemon). `ready` rejects when the daemon does not know it.
   */
  attach(id: string, options: AttachOptions = {}): ProcessHandle {
    if (this.#closed) throw new ClosedError();
    this.#claim(id);
    const screen = options.screen === true;
    return this.#hold(
      new ProcessHandle(this.#host, id, { attachFrom: screen ? 0 : (options.fromSeq ?? 0), wantPid: options.wantPid === true, screen }),
    );
  }

  /**
   * Follows a process read-only (extension `process.observe`): every retained frame, then live ones, without taking
   * it from its owner or ever holding its child back. Frames the daemon evicted before this observer got them are
   * reported as `gap` events. `ready` rejects when the daemon does not know the process.
   */
  observe(id: string, options: ObserveOptions = {}): ObserverHandle {
    if (this.#closed) throw new ClosedError();
    this.#claim(id);
    const observer = new ObserverHandle(this.#host, id, options.fromSeq ?? 0);
    this.#observers.set(id, observer);
    this.#updateRef();
    if (this.#live !== undefined) void observer.resync(this.#live);
    return observer;
  }

  kill(id: string, signal?: string): Promise<KillResult> {
    return this.#typed('process.kill', signal === undefined ? { id } : { id, signal }, false);
  }

  killAndWait(id: string, options: { signal?: string; timeoutMs?: number; escalate?: boolean } = {}): Promise<KillAndWaitResult> {
    return this.#typed('process.killAndWait', { id, ...options }, false);
  }

  /**
   * A raw `process.stdin` (prefer `handle.write`, which assigns offsets and resends). With an `offset` it is
   * retried after a drop (offsets make it exactly-once); without one it is not.
   */
  stdin(params: StdinParams): Promise<StdinResult> {
    return this.#typed('process.stdin', params, params.offset !== undefined);
  }

  /** `process.list` (an extension; listed in `server.capabilities` when the daemon has it). */
  list(): Promise<ListResult> {
    return this.#typed('process.list', {}, true);
  }

  /** `process.stats` (an extension). */
  stats(id: string): Promise<StatsResult> {
    return this.#typed('process.stats', { id }, true);
  }

  /** Any method, for namespaces this client does not wrap (`files.*`, `git.*`). */
  call<T = unknown>(method: string, params?: object, options: CallOptions = {}): Promise<T> {
    return this.#request<T>(method, params, options.idempotent === true);
  }

  /**
   * Closes the connection and stops reconnecting. Held processes keep running on the daemon (attach to them again
   * later, or kill them first); their handles end with ClosedError.
   */
  async close(): Promise<void> {
    this.#shutdown(undefined);
  }

  /** `await using client = await connect()` closes it at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- requests ----

  /** A request whose params and result the protocol's MethodMap types. */
  #typed<M extends MethodName>(method: M, params: ParamsOf<M>, idempotent: boolean): Promise<ResultOf<M>> {
    return this.#request<ResultOf<M>>(method, params ?? undefined, idempotent);
  }

  #request<T>(method: string, params: object | undefined, idempotent: boolean): Promise<T> {
    if (this.#closed) return Promise.reject(new ClosedError());
    return new Promise<T>((resolve, reject) => {
      const q: Queued = { method, params, idempotent, resolve: resolve as (r: unknown) => void, reject };
      if (this.#live !== undefined) this.#dispatch(q, this.#live);
      else {
        this.#queue.push(q);
        this.#updateRef();
      }
    });
  }

  #dispatch(q: Queued, gen: number): void {
    this.#sendOn(gen, q.method, q.params, (err, result) => {
      if (err === undefined) q.resolve(result);
      else if (!(err instanceof DroppedError)) q.reject(err);
      else if (this.#closed) q.reject(new ClosedError());
      else if (q.idempotent) this.#queue.push(q);
      else q.reject(new InterruptedError(q.method));
    });
  }

  #sendOn(gen: number, method: string, params: object | undefined, done: (error: Error | undefined, result: unknown) => void): void {
    const channel = this.#channel;
    if (channel === undefined || gen !== this.#gen || this.#closed) {
      queueMicrotask(() => done(this.#closed ? new ClosedError() : new DroppedError(), undefined));
      return;
    }
    const id = this.#nextId++;
    this.#inflight.set(id, { method, done });
    this.#updateRef();
    channel.send({ jsonrpc: '2.0', id, method, ...(params !== undefined ? { params } : {}), auth: this.#token ?? '' });
  }

  #call<T>(gen: number, method: string, params?: object): Promise<T> {
    return new Promise((resolve, reject) => this.#sendOn(gen, method, params, (err, result) => (err ? reject(err) : resolve(result as T))));
  }

  // ---- connection ----

  #onMessage(gen: number, msg: Incoming): void {
    if (gen !== this.#gen) return;
    switch (msg.kind) {
      case 'frame':
        // Nothing follows a process's exit frame, on any subscription.
        if (msg.stream === 'exit') this.#strays.delete(msg.processId);
        this.#handles.get(msg.processId)?.deliver(msg);
        this.#observers.get(msg.processId)?.deliver(msg);
        return;
      case 'gap':
        this.#observers.get(msg.processId)?.gapNotice(msg);
        return;
      case 'reply': {
        if (typeof msg.id !== 'number') return;
        const pending = this.#inflight.get(msg.id);
        if (pending === undefined) return;
        this.#inflight.delete(msg.id);
        this.#updateRef();
        if (msg.error) pending.done(new RpcError(pending.method, msg.error.code, msg.error.message), undefined);
        else pending.done(undefined, msg.result);
        return;
      }
      case 'unknown':
        return;
      case 'invalid':
        // Not the protocol we speak: start over on a fresh connection rather than guess.
        this.#channel?.destroy();
        return;
    }
  }

  #onClose(gen: number, error: Error | undefined): void {
    if (gen !== this.#gen) return;
    this.#channel = undefined;
    this.#strays.clear();
    const wasLive = this.#live !== undefined;
    this.#live = undefined;
    for (const h of this.#handles.values()) h.channelDown();
    for (const o of this.#observers.values()) o.channelDown();
    const inflight = [...this.#inflight.values()];
    this.#inflight.clear();
    const dropped = this.#closed ? new ClosedError() : new DroppedError();
    for (const p of inflight) p.done(dropped, undefined);
    if (this.#closed) return;
    if (wasLive) this.emit('disconnect', error);
    if (this.#reconnecting) return; // the loop in progress notices
    if (this.#reconnect === false) {
      this.#shutdown(new ClosedError('connection lost (reconnection is off)', { cause: error }));
      return;
    }
    void this.#reconnectLoop(this.#reconnect);
  }

  async #reconnectLoop(options: ReconnectOptions): Promise<void> {
    this.#reconnecting = true;
    let since = Date.now();
    let attempt = 0;
    let lastError: Error | undefined;
    while (!this.#closed) {
      const delayMs = backoffDelay(attempt, options);
      this.emit('reconnecting', { attempt: attempt + 1, delayMs, error: lastError });
      await this.#sleep(delayMs);
      if (this.#closed) break;
      try {
        const gen = await this.#open(false);
        // A drop during the resync it started is this loop's to handle, not a new loop's.
        if (this.#live === gen) {
          this.#reconnecting = false;
          return;
        }
        attempt = 0;
        since = Date.now();
      } catch (err) {
        lastError = err as Error;
        attempt++;
      }
      if (Date.now() - since > (options.giveUpAfterMs ?? 60_000)) {
        this.#shutdown(
          new ClosedError(`gave up reconnecting to ${this.#transport.description}: ${lastError?.message ?? 'connection keeps dropping'}`, {
            cause: lastError,
          }),
        );
      }
    }
    this.#reconnecting = false;
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        this.#sleepTimer = undefined;
        resolve();
      }, ms);
      if (!this.#referenced) timer.unref();
      this.#sleepTimer = timer;
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
  }

  /** One connection attempt: connect, authenticate, resync held processes, flush queued requests. */
  async #open(first: boolean): Promise<number> {
    const gen = ++this.#gen;
    const channel = await this.#transport.open({
      message: (m) => this.#onMessage(gen, m),
      close: (e) => this.#onClose(gen, e),
    });
    if (this.#closed || gen !== this.#gen) {
      channel.destroy();
      throw new ClosedError();
    }
    this.#channel = channel;
    if (this.#paused) channel.pause();
    this.#updateRef();
    let caps: CapabilitiesResult;
    try {
      // After the connect: a daemon that accepts but has not written its token yet is worth a short wait.
      await this.#refreshToken(first);
      caps = await this.#call<CapabilitiesResult>(gen, 'server.capabilities');
      // Before the queue and the reattaches: every request on this connection then carries the caller.
      if (this.#caller !== undefined && caps.features.includes('session.identify')) {
        await this.#call(gen, 'session.identify', { caller: this.#caller });
      }
    } catch (err) {
      channel.destroy();
      if (err instanceof RpcError && err.rpcCode === UNAUTHORIZED) {
        throw new AuthError(
          `${this.#transport.description}: the daemon refused the token${this.#explicitToken ? '' : ` read from ${this.#tokenFile}`}`,
        );
      }
      throw err instanceof DroppedError ? new ConnectError(`${this.#transport.description}: connection dropped during the handshake`) : err;
    }
    const replaced = this.#instanceId !== undefined && caps.instanceId !== this.#instanceId;
    const previous = this.#instanceId;
    this.#instanceId = caps.instanceId;
    this.#capabilities = caps;
    // A daemon that took over from the previous one (feature process.handover) has its processes: each handle
    // reattaches from its last seq and checks it found the same process (pid and start time). Otherwise nothing
    // of the old daemon's processes survives it: do not reattach (a new process may reuse the id).
    if (replaced && !caps.features.includes('process.handover')) {
      for (const h of [...this.#handles.values()]) {
        // A spawn that no daemon is known to have run is simply made on the new one.
        if (h.spawnPending) continue;
        h.fail(new ProcessLostError(h.id, `the daemon was replaced (instance ${previous} → ${caps.instanceId})`));
      }
      for (const o of [...this.#observers.values()]) {
        o.fail(new ProcessLostError(o.id, `the daemon was replaced (instance ${previous} → ${caps.instanceId})`));
      }
    }
    this.#live = gen;
    this.emit('connect', { instanceId: caps.instanceId, reconnect: !first, replaced });
    this.#updateRef();
    const resyncs = [...this.#handles.values(), ...this.#observers.values()].map((h) => h.resync(gen));
    const queued = this.#queue;
    this.#queue = [];
    for (const q of queued) this.#dispatch(q, gen);
    await Promise.all(resyncs);
    return gen;
  }

  async #refreshToken(first: boolean): Promise<void> {
    if (this.#explicitToken) return;
    if (this.#tokenFile === undefined) throw new AuthError('no token: pass `token` or `tokenFile`');
    const deadline = Date.now() + (first ? TOKEN_WAIT_MS : 0);
    for (;;) {
      const token = await readTokenFile(this.#tokenFile);
      if (token !== undefined) {
        this.#token = token;
        return;
      }
      if (this.#token !== undefined) return; // keep the last one; the connect will tell
      if (Date.now() >= deadline) {
        throw new ConnectError(`no token: ${this.#tokenFile} does not exist (is a daemon running on ${this.#socket}?)`, 'ENOENT');
      }
      await sleep(50);
    }
  }

  /**
   * One follower per process per client: an owner and an observer on one connection would each get every frame,
   * and the owner's handle would read the observer's copies as out of order.
   */
  #claim(id: string): void {
    if (this.#handles.has(id)) throw new Error(`process ${id} is already held by this client`);
    if (this.#observers.has(id)) throw new Error(`process ${id} is already observed by this client`);
  }

  /**
   * A client with nothing to do does not keep the program alive (as a forgotten close() would): the connection and
   * the reconnect timer are unreferenced while no request is in flight or queued and no process is followed.
   */
  #updateRef(): void {
    const busy = this.#inflight.size > 0 || this.#queue.length > 0 || this.#handles.size > 0 || this.#observers.size > 0;
    if (busy === this.#referenced) return;
    this.#referenced = busy;
    if (busy) this.#channel?.ref();
    else this.#channel?.unref();
    if (busy) this.#sleepTimer?.ref();
    else this.#sleepTimer?.unref();
  }

  #hold(handle: ProcessHandle): ProcessHandle {
    this.#handles.set(handle.id, handle);
    this.#updateRef();
    if (this.#live !== undefined) void handle.resync(this.#live);
    return handle;
  }

  #onQueuedBytes(delta: number): void {
    this.#queuedBytes += delta;
    if (!this.#paused && this.#queuedBytes > QUEUED_HIGH_BYTES) {
      this.#paused = true;
      this.#channel?.pause();
    } else if (this.#paused && this.#queuedBytes <= QUEUED_LOW_BYTES) {
      this.#paused = false;
      this.#channel?.resume();
    }
  }

  #shutdown(error: Error | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#wake?.();
    const closedError = error ?? new ClosedError();
    for (const q of this.#queue.splice(0)) q.reject(closedError);
    const channel = this.#channel;
    this.#channel = undefined;
    this.#live = undefined;
    this.#gen++;
    this.#strays.clear();
    const inflight = [...this.#inflight.values()];
    this.#inflight.clear();
    for (const p of inflight) p.done(closedError, undefined);
    const lost = error instanceof ClosedError ? error : new ClosedError(error ? error.message : 'client closed');
    for (const h of [...this.#handles.values()]) h.fail(lost);
    for (const o of [...this.#observers.values()]) o.fail(lost);
    channel?.destroy();
    this.emit('close', error);
  }
}

/**
 * Connects to a daemon (see ConnectOptions). Resolves once authenticated; rejects with ConnectError when nothing
 * answers (after starting a daemon, if asked to) or AuthError when the token is refused.
 */
export async function connect(options: ConnectOptions = {}): Promise<Client> {
  const client = new Client(options);
  try {
    await client.open(options.startDaemon);
  } catch (err) {
    await client.close();
    throw err;
  }
  return client;
}
