/**
 * The audit as the daemon uses it: one recorder per daemon, one AuditConnection per accepted connection, and the
 * writer thread (thread.ts) behind them.
 *
 *     const audit = await AuditRecorder.open({ ...auditServeOptions(…), version, log, token });   // daemon start
 *     const a = audit.connection(connNumber, { kind: 'unix', socket });   // at accept (starts the peer lookup)
 *     // for every request that passed the parse stage (refused ones included):
 *     const admission = a.admit(req.method);                              // before the gate
 *     if (!admission.ok) → reply auditUnavailable(admission.reason); nothing runs (counted, not recorded)
 *     … gate and dispatch …
 *     a.record(admission, { wire, authenticated, method, idJson, params, literals, caller, reply });
 *     audit.exit({ processId, pid, exitCode, signal, killedBy, ms, stdoutBytes, stderrBytes });  // exit frames
 *     await audit.close();                                                // graceful shutdown, after the listeners
 *
 * What runs on the request path: the admission (a counter), redaction, the record's canonical text by
 * concatenation (record.ts, RecordParts) and one UTF-8 write of it into a ring of shared memory (ring.ts); once per
 * turn of the event loop the writer thread is woken. The chain (seq, prev, SHA-256), the write and rotation run in
 * that thread, which counts in shared memory how many records are on disk. So a reply is written before its record
 * reaches the disk: the record follows within a turn of the writer thread's loop while the disk keeps up
 * (PROTOCOL.md, "Audit log", says exactly what a crash can lose).
 *
 * The queue: records made and not yet on disk (waiting for this turn's message, in the thread, or behind a peer
 * lookup) and, under `block`, places held by requests in progress, are at most `queueRecords`. Past it, per
 * `-audit-full`:
 * - `block`: `admit()` refuses, and the request is answered with the auditUnavailable error: nothing happens that is
 *   not recorded. Refusals are counted and the next record carries `refused: n`. server.shutdown is never refused,
 *   and exits never (they report what already happened): the queue may pass its limit by those.
 * - `drop`: the record is dropped, counted (logged at the first and then at most every DROP_LOG_INTERVAL_MS), and
 *   the next record carries `lost: n`, so the verifier reports the loss at the place it happened.
 *
 * Every request record names its connection's peer, looked up at accept (bounded by PEER_LOOKUP_TIMEOUT_MS): a
 * connection is read once its peer is known (connection.ts), so records never wait for a lookup and keep the order
 * in which they were made (a request's reply, an exit): an exit is never written before the spawn that started it.
 * (Should a record still find its peer unknown, it waits in line, and everything after it waits behind it.)
 */
import type http from 'node:http';
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../log/logger.js';
import type { KilledBy } from '../protocol/messages.js';
import { isPlainObject, member, type NumberLiterals } from '../server/rpc/request.js';
import type { Caller } from './caller.js';
import { type AdoptedExit, exitKey, findRecordedExits, MAX_ADOPTED_SCAN_BYTES } from './adopted.js';
import { canonicalJson, cutString } from './canonical.js';
import type { AuditServeOptions } from './cli.js';
import { type PeerResolverOptions, UnixPeerResolver, webSocketPeer } from './peer.js';
import {
  type ExitEntry,
  entryParts,
  type FrameChain,
  frameText,
  MAX_NAME_BYTES,
  type PeerInfo,
  type RequestFacts,
  requestText,
  Scrubber,
  type Transport,
} from './record.js';
import { createRingMemory, DEFAULT_RING_BYTES, RingProducer, SharedStatsReader } from './ring.js';
import type { FromThread, ThreadOptions, ToThread } from './thread.js';
import { type AuditStats, AuditSetupError, CLOSE_FLUSH_MS, DEFAULT_AUDIT_QUEUE_RECORDS, type FullPolicy } from './writer.js';

const SHUTDOWN = 'server.shutdown';
const SPAWN = 'process.spawn';

/** Drops are logged at the first one and then at most this often, with the running count. */
export const DROP_LOG_INTERVAL_MS = 10_000;

/** How long close() waits for the writer thread beyond its own flush bound before it is stopped. */
export const THREAD_STOP_GRACE_MS = 1000;

/** While the ring is full, records wait on the request side and are offered to it again this often. */
export const RING_RETRY_MS = 5;

export interface RecorderOptions extends AuditServeOptions {
  readonly version: string;
  readonly log: Logger;
  /** The daemon's token: scrubbed from every recorded string. */
  readonly token: string;
  /** Records that may wait for the disk; DEFAULT_AUDIT_QUEUE_RECORDS (4,096) by default. */
  readonly queueRecords?: number;
  /** After a failed write, the writer retries this often (1 s by default). */
  readonly retryMs?: number;
  readonly peer?: PeerResolverOptions;
  /** The shared ring's size in bytes, a power of two (DEFAULT_RING_BYTES, 4 MiB, by default). */
  readonly ringBytes?: number;
  /**
   * The writer thread's script: thread.js beside this module. Tests that run the TypeScript sources point it at the
   * build (Node runs a worker from JavaScript only).
   */
  readonly threadUrl?: URL;
}

/** `spawn`: the process id a `process.spawn` request names, whose exit record must wait for this request's record. */
export type Admission = { readonly ok: true; readonly startedAt: number; readonly spawn?: string } | { readonly ok: false; readonly reason: string };

/** What the daemon knows of the other end at accept: the Unix socket, or the WebSocket upgrade request. */
export type PeerSource = { readonly kind: 'unix'; readonly socket: net.Socket } | { readonly kind: 'ws'; readonly request: http.IncomingMessage };

/** The wire format of one request: a Unix connection picks one; a WebSocket message is text (JSON) or binary. */
export type Wire = 'json' | 'msgpack';

/** What the RPC layer knows of a request once answered; the rest (conn, peer, timing) the connection adds. */
export interface RequestOutcome {
  readonly wire: Wire;
  readonly authenticated: boolean;
  readonly method: string;
  readonly idJson: string;
  readonly params: unknown;
  readonly literals: NumberLiterals | undefined;
  /** The request's own caller (validated by the gate), else the connection's; undefined when neither. */
  readonly caller: Caller | undefined;
  readonly reply: RequestFacts['reply'];
}

export class AuditRecorder {
  readonly path: string;
  readonly full: FullPolicy;
  readonly queueRecords: number;
  readonly peers: UnixPeerResolver;
  readonly #log: Logger;
  readonly #scrubber: Scrubber;
  readonly #worker: Worker;
  readonly #ring: RingProducer;
  readonly #shared: SharedStatsReader;
  /** Records handed over (into the ring, or waiting for room in it), modulo 2^32; `#shared.written` of them are on disk. */
  #posted = 0;
  /** Records waiting for room in the ring, in order: while any wait, new ones queue behind them. */
  #overflow: string[] = [];
  /** The log's id, and the last record time formatted (once per millisecond). */
  readonly #logId: string;
  #isoMs = -1;
  #iso = '';
  #retry: NodeJS.Timeout | undefined;
  /** Places held by requests in progress (`block`). */
  #reserved = 0;
  /** Records made but waiting (behind a peer lookup) to be queued, in order. */
  #line: Promise<void> = Promise.resolve();
  #waiting = 0;
  /** Exits made but held for their spawn's record. */
  #held = 0;
  #lostSinceLast = 0;
  #refusedSinceLast = 0;
  #dropped = 0;
  #refused = 0;
  #lastDropLog = Number.NEGATIVE_INFINITY;
  /** The writer thread's current write failure. */
  #failing: string | undefined;
  /** Why the writer thread is gone, when it stopped without being asked to. */
  #broken: string | undefined;
  #closing: Promise<void> | undefined;
  /** The writer thread was told to close: a record made now cannot be written. */
  #sealed = false;
  #closed: (() => void) | undefined;

  private constructor(o: RecorderOptions, worker: Worker, ring: RingProducer, shared: SharedStatsReader, logId: string) {
    this.#logId = logId;
    this.path = o.path;
    this.full = o.full;
    this.queueRecords = o.queueRecords ?? DEFAULT_AUDIT_QUEUE_RECORDS;
    this.peers = new UnixPeerResolver(o.peer);
    this.#log = o.log;
    this.#scrubber = new Scrubber([o.token]);
    this.#worker = worker;
    this.#ring = ring;
    this.#shared = shared;
    worker.on('message', (m: FromThread) => this.#onMessage(m));
    worker.on('error', (err) => this.#stopped(`the audit writer thread failed: ${err.stack ?? err.message}`));
    worker.on('exit', (code) => {
      if (this.#closed) this.#closed();
      else this.#stopped(`the audit writer thread exited (code ${code})`);
    });
  }

  /**
   * Starts the writer thread, which opens (or creates) the log, continues its chain and writes a start header.
   * Resolves once that header is on disk; a log that cannot be written rejects with an AuditSetupError that says why.
   */
  static async open(o: RecorderOptions): Promise<AuditRecorder> {
    const queueRecords = o.queueRecords ?? DEFAULT_AUDIT_QUEUE_RECORDS;
    if (!Number.isSafeInteger(queueRecords) || queueRecords < 1) {
      throw new AuditSetupError(`the audit queue must hold at least one record (got ${queueRecords})`);
    }
    const memory = createRingMemory(o.ringBytes ?? DEFAULT_RING_BYTES);
    const audit: ThreadOptions = { path: o.path, maxBytes: o.maxBytes, keep: o.keep, version: o.version, retryMs: o.retryMs, memory };
    const worker = new Worker(o.threadUrl ?? new URL('./thread.js', import.meta.url), { workerData: { audit } });
    // Until the thread says it is ready: its log lines, or why it could not open the log. (Only our own listeners
    // are removed afterwards: the Worker keeps hooks of its own on its events.)
    let onMessage!: (m: FromThread) => void;
    let onError!: (err: Error) => void;
    let onExit!: (code: number) => void;
    const first = await new Promise<FromThread | { type: 'error'; message: string }>((resolve) => {
      onMessage = (m) => {
        if (m.type === 'log') o.log[m.level]('Audit', m.message);
        else if (m.type !== 'failing') resolve(m);
      };
      onError = (err) => resolve({ type: 'error', message: err.message });
      onExit = (code) => resolve({ type: 'error', message: `the audit writer thread exited (code ${code})` });
      worker.on('message', onMessage).once('error', onError).once('exit', onExit);
    });
    worker.off('message', onMessage).off('error', onError).off('exit', onExit);
    if (first.type !== 'ready') {
      await worker.terminate();
      throw new AuditSetupError(first.type === 'failed' || first.type === 'error' ? first.message : `unexpected message ${first.type}`);
    }
    return new AuditRecorder(o, worker, new RingProducer(memory), new SharedStatsReader(memory), first.log);
  }

  /** At accept: the connection's audit, and (Unix socket) the start of its peer lookup. */
  connection(conn: number, peer: PeerSource): AuditConnection {
    if (peer.kind === 'unix') return new AuditConnection(this, conn, 'unix', this.peers.resolve(peer.socket));
    return new AuditConnection(this, conn, 'ws', webSocketPeer(peer.request));
  }

  /**
   * A child's exit (its exit frame). Never refused: it reports what already happened. Between `holdExits()` and
   * `settleAdopted()` exits are held: those are the adopted processes' (the keeper's journals read to their ends),
   * which the previous daemon may have recorded already. `startedAt` (epoch ms) bounds the search for that record.
   */
  exit(e: Omit<ExitEntry, 'kind'>, startedAt = 0): void {
    const processId = cutString(this.#scrubber.scrub(e.processId), MAX_NAME_BYTES);
    if (this.#adopted !== undefined) {
      this.#adopted.push({ e, exit: { processId, pid: e.pid, startedAt } });
      return;
    }
    const entry: ExitEntry = {
      kind: 'exit',
      processId,
      pid: e.pid,
      exitCode: e.exitCode,
      signal: e.signal,
      killedBy: e.killedBy,
      // Whole milliseconds: canonical numbers are integers.
      ms: Math.max(0, Math.floor(e.ms)),
      stdoutBytes: e.stdoutBytes,
      stderrBytes: e.stderrBytes,
    };
    const parts = entryParts(entry);
    const at = Date.now();
    const make = (chain: FrameChain) => frameText(parts, chain);
    // A child can exit before its spawn request is answered: its exit waits for the spawn's record.
    const held = this.#spawning.get(e.processId);
    if (held !== undefined) {
      held.exits.push({ at, make });
      this.#held++;
    } else this.inOrder(undefined, at, make);
  }

  /** Exits seen between holdExits() and settleAdopted(); undefined otherwise. */
  #adopted: { e: Omit<ExitEntry, 'kind'>; exit: AdoptedExit }[] | undefined;

  /** Before the supervisor adopts the keeper's processes: their exits wait for settleAdopted(). */
  holdExits(): void {
    this.#adopted ??= [];
  }

  /**
   * Once the supervisor has adopted the keeper's processes: the exits seen meanwhile are recorded, except those the
   * log already holds (the previous daemon saw them: adopted.ts). Exits after this are recorded as they come.
   */
  async settleAdopted(): Promise<void> {
    const held = this.#adopted;
    if (held === undefined) return;
    let found = new Set<string>();
    if (held.length > 0) {
      try {
        const scan = await findRecordedExits(
          this.path,
          held.map((h) => h.exit),
        );
        found = scan.found;
        if (scan.cut) {
          this.#log.warn(
            'Audit',
            `looked for the exits of adopted processes in the last ${MAX_ADOPTED_SCAN_BYTES} bytes of the log only; those not found there are recorded, perhaps again`,
          );
        }
      } catch (err) {
        this.#log.warn(
          'Audit',
          `could not read the log for the exits of adopted processes (${(err as Error).message}); recording them, perhaps again`,
        );
      }
    }
    this.#adopted = undefined;
    for (const h of held) if (!found.has(exitKey(h.exit.processId, h.exit.pid))) this.exit(h.e);
    if (found.size > 0) this.#log.info('Audit', `${found.size} exit(s) of adopted processes are in the log already (the previous daemon's records)`);
  }

  /** Process ids of spawn requests in progress, and the exits that wait for their records. */
  readonly #spawning = new Map<string, { requests: number; exits: { at: number; make: (chain: FrameChain) => string }[] }>();

  /** @internal A `process.spawn` naming `id` is admitted. */
  spawnStarted(id: string): void {
    const s = this.#spawning.get(id);
    if (s) s.requests++;
    else this.#spawning.set(id, { requests: 1, exits: [] });
  }

  /** @internal That spawn's record is queued (or it will have none): the exits held for it follow. */
  spawnRecorded(id: string): void {
    const s = this.#spawning.get(id);
    if (s === undefined || --s.requests > 0) return;
    this.#spawning.delete(id);
    for (const x of s.exits) {
      this.#held--;
      this.inOrder(undefined, x.at, x.make);
    }
  }

  stats(): AuditStats {
    const s = this.#shared.read();
    return {
      records: s.records,
      bytes: s.bytes,
      writes: s.writes,
      rotations: s.rotations,
      writeErrors: s.writeErrors,
      failing: s.failing ? (this.#failing ?? 'writes fail') : undefined,
      head: s.head,
      queueDepth: this.#depth(),
      dropped: this.#dropped,
      refused: this.#refused,
      reserved: this.#reserved,
    };
  }

  /**
   * After the listeners closed: the records waiting in line (bounded by the lookup timeout), then the writer
   * thread writes what it holds and a stop record (for at most CLOSE_FLUSH_MS) and releases the lock.
   */
  close(reason = 'shutdown'): Promise<void> {
    this.#closing ??= (async () => {
      // A start cut short before the adoption settled: its exits are recorded as they are.
      const held = this.#adopted;
      this.#adopted = undefined;
      for (const h of held ?? []) this.exit(h.e);
      // Exits still waiting for a spawn's record (a spawn cut short by the shutdown) are written anyway.
      for (const id of [...this.#spawning.keys()]) {
        const s = this.#spawning.get(id)!;
        s.requests = 1;
        this.spawnRecorded(id);
      }
      await this.#line;
      // Records still waiting for room in the ring get it while the thread drains, up to the flush bound.
      const deadline = performance.now() + CLOSE_FLUSH_MS;
      while (this.#overflow.length > 0 && this.#broken === undefined && performance.now() < deadline) {
        this.#offerOverflow();
        if (this.#overflow.length > 0) await new Promise((r) => setTimeout(r, RING_RETRY_MS));
      }
      if (this.#broken !== undefined) {
        await this.#worker.terminate();
        return;
      }
      const exited = new Promise<void>((resolve) => (this.#closed = resolve));
      this.#sealed = true;
      const gaps = { lost: this.#lostSinceLast, refused: this.#refusedSinceLast };
      this.#worker.postMessage({ type: 'close', reason, flushMs: CLOSE_FLUSH_MS, ...gaps } satisfies ToThread);
      const timer = setTimeout(() => void this.#worker.terminate(), CLOSE_FLUSH_MS + THREAD_STOP_GRACE_MS);
      await exited;
      clearTimeout(timer);
      clearTimeout(this.#retry);
      const left = this.#depth();
      if (left > 0) this.#log.error('Audit', `closed with ${left} records not written to ${this.path}`);
    })();
    return this.#closing;
  }

  // ---- the queue ----

  /** Records made and not yet on disk. */
  #depth(): number {
    return ((this.#posted - this.#shared.written) >>> 0) + this.#waiting + this.#held;
  }

  /** @internal AuditConnection.admit. */
  reserve(method: string): Admission {
    if (this.#closing !== undefined) return { ok: false, reason: 'the audit log is closed: the daemon is shutting down' };
    if (this.full === 'block') {
      // server.shutdown: a full disk must not keep the daemon from stopping (its record may pass the limit).
      if (method !== SHUTDOWN && (this.#broken !== undefined || this.#depth() + this.#reserved >= this.queueRecords)) {
        this.#refused++;
        this.#refusedSinceLast++;
        return {
          ok: false,
          reason: this.#why(`the audit queue is full (${this.#depth()} records waiting for the disk, ${this.#reserved} requests in progress)`),
        };
      }
      this.#reserved++;
    }
    return { ok: true, startedAt: performance.now() };
  }

  /** @internal A request in progress has its record (or will never have one): its place is given back. */
  release(): void {
    if (this.full === 'block') this.#reserved--;
  }

  /**
   * Queues in the order of the calls: at once when nothing waits and `peer` is settled (or absent), else behind
   * what waits. `make` builds the record's frame text (record.ts, frameText) on the chain fields it is given when its
   * turn comes; `at` is its time.
   * @internal
   */
  inOrder(peer: Promise<unknown> | undefined, at: number, make: (chain: FrameChain) => string): void {
    if (this.#waiting === 0 && peer === undefined) {
      this.#queue(at, make);
      return;
    }
    if (this.full === 'drop' && this.#depth() >= this.queueRecords) {
      this.#countDrop();
      return;
    }
    this.#waiting++;
    this.#line = this.#line
      .then(() => peer)
      .then(() => {
        this.#waiting--;
        this.#queue(at, make);
      });
  }

  #queue(at: number, make: (chain: FrameChain) => string): void {
    if (this.#broken !== undefined || this.#sealed || (this.full === 'drop' && this.#depth() >= this.queueRecords)) {
      this.#countDrop();
      return;
    }
    this.#posted = (this.#posted + 1) >>> 0;
    if (at !== this.#isoMs) {
      this.#isoMs = at;
      this.#iso = new Date(at).toISOString();
    }
    let chain: FrameChain = { log: this.#logId, ts: this.#iso };
    if (this.#lostSinceLast > 0 || this.#refusedSinceLast > 0) {
      // What was dropped or refused since the last record goes on this one.
      chain = {
        ...chain,
        lost: this.#lostSinceLast > 0 ? this.#lostSinceLast : undefined,
        refused: this.#refusedSinceLast > 0 ? this.#refusedSinceLast : undefined,
      };
      this.#lostSinceLast = 0;
      this.#refusedSinceLast = 0;
    }
    const text = make(chain);
    if (this.#overflow.length > 0 || !this.#ring.push(text)) {
      this.#overflow.push(text);
      this.#retryLater();
    }
  }

  /** Records wait for room in the ring (a disk slower than the requests): they are offered again shortly. */
  #retryLater(): void {
    if (this.#retry !== undefined || this.#broken !== undefined) return;
    this.#retry = setTimeout(() => {
      this.#retry = undefined;
      this.#offerOverflow();
      if (this.#overflow.length > 0) this.#retryLater();
    }, RING_RETRY_MS);
  }

  #offerOverflow(): void {
    let i = 0;
    for (; i < this.#overflow.length; i++) if (!this.#ring.push(this.#overflow[i]!)) break;
    this.#overflow.splice(0, i);
  }

  #countDrop(): void {
    this.#dropped++;
    this.#lostSinceLast++;
    const now = performance.now();
    if (now - this.#lastDropLog >= DROP_LOG_INTERVAL_MS) {
      this.#lastDropLog = now;
      this.#log.error(
        'Audit',
        `audit queue full (${this.#depth()} records): ${this.#why('records are dropped')}; ${this.#dropped} records dropped so far (-audit-full drop)`,
      );
    }
  }

  #why(what: string): string {
    if (this.#broken !== undefined) return `${what}: ${this.#broken}`;
    const failing = this.#failing;
    return failing !== undefined ? `${what}: writing ${this.path} fails (${failing})` : `${what}: the disk is not keeping up`;
  }

  #onMessage(m: FromThread): void {
    if (m.type === 'log') this.#log[m.level]('Audit', m.message);
    else if (m.type === 'failing') this.#failing = m.reason ?? undefined;
  }

  /** The writer thread is gone without being asked: nothing more can be written. */
  #stopped(why: string): void {
    if (this.#broken !== undefined) return;
    this.#broken = why;
    clearTimeout(this.#retry);
    this.#log.error(
      'Audit',
      `${why}; no more audit records can be written (${this.full === 'block' ? 'requests are refused' : 'records are dropped'})`,
    );
  }

  /** @internal */
  get scrubber(): Scrubber {
    return this.#scrubber;
  }
}

export class AuditConnection {
  readonly conn: number;
  readonly #recorder: AuditRecorder;
  readonly #listener: 'unix' | 'ws';
  readonly #connJson: string;
  readonly #peer: Promise<PeerInfo>;
  #settledPeer: PeerInfo | undefined;
  /** The peer's canonical JSON, made once. */
  #peerJson = '';

  constructor(recorder: AuditRecorder, conn: number, listener: 'unix' | 'ws', peer: PeerInfo | Promise<PeerInfo>) {
    this.#recorder = recorder;
    this.conn = conn;
    this.#connJson = canonicalJson(conn);
    this.#listener = listener;
    const settle = (p: PeerInfo) => {
      this.#peerJson = canonicalJson(p);
      this.#settledPeer = p;
      return p;
    };
    if (peer instanceof Promise) this.#peer = peer.then(settle);
    else this.#peer = Promise.resolve(settle(peer));
  }

  /** The peer once looked up (undefined before). */
  get peer(): PeerInfo | undefined {
    return this.#settledPeer;
  }

  /**
   * True while the peer lookup runs. The connection reads no request meanwhile (src/server/rpc/connection.ts): its
   * records then never wait for the lookup, so no record of another connection waits behind them, and none is
   * held in memory.
   */
  get peerPending(): boolean {
    return this.#settledPeer === undefined;
  }

  /** Runs `fn` once the peer is known. */
  onPeer(fn: () => void): void {
    void this.#peer.then(fn);
  }

  /**
   * Right after the parse stage: a place for the record, or (under -audit-full block) the reason to refuse. Never
   * refused for server.shutdown: a full disk must not keep the daemon from stopping.
   */
  admit(method: string, params?: unknown): Admission {
    const a = this.#recorder.reserve(method);
    if (!a.ok || method !== SPAWN) return a;
    // The id as the handler will read it (bindParams' member lookup); a spawn without one starts nothing.
    const id = isPlainObject(params) ? member(params, 'id')?.[1] : undefined;
    if (typeof id !== 'string' || id === '') return a;
    this.#recorder.spawnStarted(id);
    return { ...a, spawn: id };
  }

  /** Once the reply is known: the request's record, after the peer lookup has settled. */
  record(admission: Extract<Admission, { ok: true }>, o: RequestOutcome): void {
    const endedAt = performance.now();
    const at = Date.now();
    const recorder = this.#recorder;
    recorder.release();
    const transport: Transport =
      this.#listener === 'unix' ? (o.wire === 'json' ? 'unix/ndjson' : 'unix/msgpack') : o.wire === 'json' ? 'ws/json' : 'ws/msgpack';
    const make = (chain: FrameChain) => {
      const facts: RequestFacts = {
        conn: this.conn,
        transport,
        peer: this.#settledPeer!,
        caller: o.caller,
        authenticated: o.authenticated,
        method: o.method,
        idJson: o.idJson,
        params: o.params,
        literals: o.literals,
        reply: o.reply,
        startedAt: admission.startedAt,
        endedAt,
      };
      return requestText(facts, recorder.scrubber, this.#peerJson, this.#connJson, chain);
    };
    recorder.inOrder(this.#settledPeer !== undefined ? undefined : this.#peer, at, make);
    if (admission.spawn !== undefined) recorder.spawnRecorded(admission.spawn);
  }
}

/** The exit record of a supervised process, from its exit frame: the supervisor's `exited` observer hook. */
export interface ExitedProcess {
  readonly id: string;
  readonly pid: number;
  /** Epoch milliseconds of the start. */
  readonly startedAt: number;
  /** Epoch milliseconds of the reap (an adopted process may have exited before this daemon started). */
  readonly exitedAt: number | undefined;
  readonly exitFrame: { readonly exitCode: number; readonly signal?: string; readonly killedBy?: KilledBy | undefined } | undefined;
  readonly stdoutBytes: number;
  readonly stderrBytes: number;
}

export function exitObserver(audit: AuditRecorder): { exited(proc: ExitedProcess): void } {
  return {
    exited(proc) {
      const frame = proc.exitFrame;
      audit.exit(
        {
          processId: proc.id,
          pid: proc.pid,
          exitCode: frame?.exitCode ?? -1,
          signal: frame?.signal ?? null,
          killedBy: frame?.killedBy ?? null,
          ms: (proc.exitedAt ?? Date.now()) - proc.startedAt,
          stdoutBytes: proc.stdoutBytes,
          stderrBytes: proc.stderrBytes,
        },
        proc.startedAt,
      );
    },
  };
}
