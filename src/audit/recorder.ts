/**
 * The audit as the RPC layer uses it: one recorder per daemon, one AuditConnection per accepted connection.
 *
 *     const audit = await AuditRecorder.open({ ...auditServeOptions(…), version, log, token });   // daemon start
 *     const a = audit.unixConnection(connNumber, socket);            // at accept (starts the peer lookup)
 *     const a = audit.webSocketConnection(connNumber, upgradeRequest);
 *     // for every request that passed the parse stage (refused ones included):
 *     const admission = a.admit(req.method);                         // before the gate's auth step
 *     if (!admission.ok) → reply CATALOGUE.auditUnavailable(admission.reason), record nothing (it is counted)
 *     … dispatch …
 *     a.record(admission, { transport, authenticated, method, idJson, params, literals, caller, reply });
 *     audit.exit({ processId, pid, exitCode, signal, killedBy, ms, stdoutBytes, stderrBytes });  // exit frames
 *     await audit.close();                                           // graceful shutdown, after the listeners
 *
 * A record waits for its connection's peer lookup (bounded by PEER_LOOKUP_TIMEOUT_MS) so that even a one-shot
 * client's only request names its process; the request itself never waits for it. Records keep the order in which
 * they were made (a request's reply, an exit), whoever waits: records behind a pending lookup wait in line, so an
 * exit is never written before the spawn that started it. The line is part of the queue: under `block` its records
 * hold admitted places; under `drop`, a record that would make the line longer than the queue is dropped and counted.
 */
import type http from 'node:http';
import type net from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from '../log/logger.js';
import type { NumberLiterals } from '../server/rpc/request.js';
import { type Caller, type IdentifyOutcome, identify, parseCaller } from './caller.js';
import type { AuditServeOptions } from './cli.js';
import { type PeerResolverOptions, UnixPeerResolver, webSocketPeer } from './peer.js';
import { cutString } from './canonical.js';
import { type ExitEntry, MAX_NAME_BYTES, type PeerInfo, type RequestFacts, requestEntry, Scrubber, type Transport } from './record.js';
import { type AuditStats, AuditWriter, type Ticket } from './writer.js';

const SHUTDOWN = 'server.shutdown';

export interface RecorderOptions extends AuditServeOptions {
  readonly version: string;
  readonly log: Logger;
  /** The daemon's token: scrubbed from every recorded string. */
  readonly token: string;
  readonly queueRecords?: number;
  readonly peer?: PeerResolverOptions;
}

export type Admission = { readonly ok: true; readonly ticket: Ticket; readonly startedAt: number } | { readonly ok: false; readonly reason: string };

/** What the RPC layer knows of a request once answered; the rest (conn, peer, timing) the connection adds. */
export interface RequestOutcome {
  readonly transport: Transport;
  readonly authenticated: boolean;
  readonly method: string;
  readonly idJson: string;
  readonly params: unknown;
  readonly literals: NumberLiterals | undefined;
  /** The request's own `caller` member as decoded (validated here); undefined when absent. */
  readonly caller: unknown;
  readonly reply: RequestFacts['reply'];
}

export class AuditRecorder {
  readonly writer: AuditWriter;
  readonly peers: UnixPeerResolver;
  readonly #scrubber: Scrubber;
  /** Records made but waiting (behind a peer lookup) to be appended, in order. */
  #line: Promise<void> = Promise.resolve();
  #waiting = 0;

  private constructor(writer: AuditWriter, peers: UnixPeerResolver, scrubber: Scrubber) {
    this.writer = writer;
    this.peers = peers;
    this.#scrubber = scrubber;
  }

  static async open(o: RecorderOptions): Promise<AuditRecorder> {
    const writer = await AuditWriter.open({
      path: o.path,
      maxBytes: o.maxBytes,
      keep: o.keep,
      full: o.full,
      queueRecords: o.queueRecords,
      version: o.version,
      log: o.log,
    });
    return new AuditRecorder(writer, new UnixPeerResolver(o.peer), new Scrubber([o.token]));
  }

  unixConnection(conn: number, socket: net.Socket): AuditConnection {
    return new AuditConnection(this, conn, this.peers.resolve(socket));
  }

  webSocketConnection(conn: number, req: http.IncomingMessage): AuditConnection {
    return new AuditConnection(this, conn, Promise.resolve(webSocketPeer(req)));
  }

  /** A child's exit (its exit frame). Never refused: it reports what already happened. */
  exit(e: Omit<ExitEntry, 'kind'>): void {
    const entry: ExitEntry = {
      kind: 'exit',
      processId: cutString(this.#scrubber.scrub(e.processId), MAX_NAME_BYTES),
      pid: e.pid,
      exitCode: e.exitCode,
      signal: e.signal,
      killedBy: e.killedBy,
      // Whole milliseconds: canonical numbers are integers.
      ms: Math.max(0, Math.floor(e.ms)),
      stdoutBytes: e.stdoutBytes,
      stderrBytes: e.stderrBytes,
    };
    this.inOrder(
      undefined,
      () => this.writer.append(entry),
      () => this.writer.drop(),
    );
  }

  /**
   * Appends in the order of the calls: at once when nothing waits and `peer` is settled (or absent), else behind
   * what waits. `append` queues the record; `lose` accounts for one that cannot wait (`drop`, the line full).
   * @internal
   */
  inOrder(peer: Promise<unknown> | undefined, append: () => void, lose: () => void): void {
    if (this.#waiting === 0 && peer === undefined) {
      append();
      return;
    }
    if (this.writer.full === 'drop' && this.#waiting + this.writer.stats().queueDepth >= this.writer.queueRecords) {
      lose();
      return;
    }
    this.#waiting++;
    this.#line = this.#line
      .then(() => peer)
      .then(() => {
        this.#waiting--;
        append();
      });
  }

  stats(): AuditStats {
    return this.writer.stats();
  }

  /** After the listeners closed: the records waiting in line (bounded by the lookup timeout), then the writer. */
  async close(reason = 'shutdown'): Promise<void> {
    await this.#line;
    await this.writer.close(reason);
  }

  /** @internal */
  get scrubber(): Scrubber {
    return this.#scrubber;
  }
}

export class AuditConnection {
  readonly conn: number;
  readonly #recorder: AuditRecorder;
  readonly #peer: Promise<PeerInfo>;
  #settledPeer: PeerInfo | undefined;
  /** Declared with session.identify; asserted, not verified. */
  #caller: Caller | undefined;

  constructor(recorder: AuditRecorder, conn: number, peer: Promise<PeerInfo>) {
    this.#recorder = recorder;
    this.conn = conn;
    this.#peer = peer.then((p) => (this.#settledPeer = p));
  }

  get caller(): Caller | undefined {
    return this.#caller;
  }

  /** The peer once looked up (undefined before). */
  get peer(): PeerInfo | undefined {
    return this.#settledPeer;
  }

  /**
   * `session.identify` for this connection: sets its caller once. Only for an authenticated request: the RPC layer
   * never calls this for one that failed auth, so an unauthenticated connection can declare nothing.
   */
  identify(params: unknown): IdentifyOutcome {
    const out = identify(params, this.#caller);
    if (out.ok) this.#caller = out.caller;
    return out;
  }

  /**
   * Validates a request's own `caller` envelope member: undefined when absent (the connection's caller applies), the
   * caller, or the reason for `Invalid caller: <reason>`.
   */
  static requestCaller(value: unknown): { readonly caller: Caller | undefined } | { readonly reason: string } {
    if (value === undefined || value === null) return { caller: undefined };
    const parsed = parseCaller(value);
    return parsed.ok ? { caller: parsed.caller } : { reason: parsed.reason };
  }

  /**
   * Right after the parse stage: a place for the record, or (under -audit-full block) the reason to refuse. Never
   * refused for server.shutdown: a full disk must not keep the daemon from stopping (its record may pass the limit).
   */
  admit(method: string): Admission {
    const r = this.#recorder.writer.reserve({ force: method === SHUTDOWN });
    return r.ok ? { ok: true, ticket: r.ticket, startedAt: performance.now() } : { ok: false, reason: r.reason };
  }

  /** Once the reply is known: the request's record, after the peer lookup has settled. */
  record(admission: Extract<Admission, { ok: true }>, o: RequestOutcome): void {
    const endedAt = performance.now();
    const own = AuditConnection.requestCaller(o.caller);
    const caller = 'caller' in own && own.caller !== undefined ? own.caller : this.#caller;
    const build = (peer: PeerInfo) =>
      requestEntry(
        {
          conn: this.conn,
          transport: o.transport,
          peer,
          caller,
          authenticated: o.authenticated,
          method: o.method,
          idJson: o.idJson,
          params: o.params,
          literals: o.literals,
          reply: o.reply,
          startedAt: admission.startedAt,
          endedAt,
        },
        this.#recorder.scrubber,
      );
    this.#recorder.inOrder(
      this.#settledPeer !== undefined ? undefined : this.#peer,
      () => admission.ticket.append(build(this.#settledPeer!)),
      () => {
        admission.ticket.cancel();
        this.#recorder.writer.drop();
      },
    );
  }
}
