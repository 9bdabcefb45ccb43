/**
 * The keeper's own protocol: between the daemon (the front: RPC, transports, replay delivery) and the keeper (the
 * children's parent: pipes, terminals, stdin, exits, the frame journal), over `keeper/keeper.sock` in the socket's
 * directory. Never on the client wire: the socket is the daemon user's (0600 in a 0700 directory), and nothing a
 * client sends reaches it unparsed.
 *
 * Each message is a 4-byte big-endian length, then one MessagePack map. The keeper changes rarely and outlives the
 * fronts that talk to it, so a front of a newer build must speak to an older keeper: KEEPER_PROTOCOL is raised only
 * for a change an older peer cannot ignore, and each side refuses a protocol it does not know with a message that
 * says which build to use.
 */
import { Packr, Unpackr } from 'msgpackr';
import type { KilledBy } from '../protocol/messages.js';
import type { StdinOutcome } from '../process/stdin.js';

/** The version of this protocol; a keeper answers a hello of another version with `protocolMismatch`. */
export const KEEPER_PROTOCOL = 1;
/**
 * The largest message either side accepts (32 MiB): a hello reply lists every process the keeper holds (about 600
 * bytes each), and a stdin message carries at most one request's bytes (under 1 MiB). A larger length prefix means
 * a corrupt stream: the connection is closed.
 */
export const KEEPER_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

export interface TerminalSize {
  readonly cols: number;
  readonly rows: number;
}

/** What a front asks the keeper to start: resolved already (command lookup, cwd check, environment). */
export interface SpawnSpec {
  readonly id: string;
  /** As the client gave it: argv[0], and the name in log lines. */
  readonly command: string;
  /** The resolved executable. */
  readonly file: string;
  readonly args: readonly string[];
  readonly cwd: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly pty: TerminalSize | undefined;
  readonly term: string | undefined;
  /** The instance id of the daemon that spawned it (process.list's `instance`). */
  readonly spawnedBy: string;
}

/** A process as the keeper holds it: what a front needs to adopt it. */
export interface KeptState {
  /** The keeper's name for the process: unique for the keeper's state directory, never reused. */
  readonly key: string;
  readonly id: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string | undefined;
  readonly pid: number;
  /** The reference's opaque start token: epoch seconds at the spawn. */
  readonly startTime: number;
  /** Epoch milliseconds of the spawn. */
  readonly startedAt: number;
  /** The terminal's size now; absent for a piped process. */
  readonly pty: TerminalSize | undefined;
  /** The terminal's size at the spawn: in force before the journal's first resize frame. */
  readonly spawnPty: TerminalSize | undefined;
  readonly spawnedBy: string;
  /** Daemons that adopted it after the one that spawned it. */
  readonly restarts: number;
  /** Set from the reap on. */
  readonly reaped: ReapInfo | undefined;
  /** Set once its exit frame is in the journal. */
  readonly exit: ExitInfo | undefined;
  /** The newest seq in its journal. */
  readonly lastSeq: number;
  readonly stdin: { readonly applied: number; readonly ended: boolean };
}

export interface ReapInfo {
  readonly code: number | null;
  readonly signal: string | null;
  /** Epoch milliseconds. */
  readonly at: number;
}

export interface ExitInfo {
  readonly exitCode: number;
  readonly signal: string | undefined;
  readonly killedBy: KilledBy | undefined;
  /** Epoch milliseconds of the exit frame. */
  readonly at: number;
}

export type SpawnFailure = { readonly kind: 'ptyUnavailable'; readonly reason: string } | { readonly kind: 'forkExec'; readonly reason: string };

/** Requests a front sends; each carries `rid` and gets exactly one reply with the same `rid`. */
export type FrontRequest =
  | {
      readonly t: 'hello';
      readonly rid: number;
      readonly protocol: number;
      readonly instance: string;
      readonly build: string;
      /** The token this front serves with, handed to the next front of a handover; absent until it has one. */
      readonly token: string | undefined;
      /** The replay budget (`-replay-budget`), which bounds the journal's disk use while no front is connected. */
      readonly budgetBytes: number;
    }
  | { readonly t: 'spawn'; readonly rid: number; readonly spec: SpawnSpec }
  | {
      readonly t: 'stdin';
      readonly rid: number;
      readonly key: string;
      readonly data: Uint8Array;
      readonly offset: number | undefined;
      readonly eof: boolean;
    }
  | {
      readonly t: 'signal';
      readonly rid: number;
      readonly key: string;
      readonly signal: string;
      readonly by: KilledBy;
      readonly afterReap: boolean;
      readonly group: boolean;
    }
  | { readonly t: 'resize'; readonly rid: number; readonly key: string; readonly cols: number; readonly rows: number }
  | { readonly t: 'killAll'; readonly rid: number; readonly by: KilledBy; readonly waitMs: number }
  | { readonly t: 'bye'; readonly rid: number; readonly keep: boolean };

/** Messages a front sends that need no reply. */
export type FrontNotice =
  /** The owner lags (hold) or caught up: pause or resume reading the child. */
  | { readonly t: 'hold'; readonly key: string; readonly hold: boolean }
  /** The front's replay buffer let go of every frame up to `through`: the journal may too. */
  | { readonly t: 'drop'; readonly key: string; readonly through: number }
  /** The process is forgotten (retention passed): its journal and record go. */
  | { readonly t: 'forget'; readonly key: string }
  | { readonly t: 'token'; readonly token: string };

export type FrontMessage = FrontRequest | FrontNotice;

export interface HelloReply {
  readonly protocol: number;
  readonly keeper: { readonly pid: number; readonly instance: string; readonly build: string; readonly startedAt: number };
  /** The token of the previous front, for a front that brought none. */
  readonly token: string | undefined;
  /** The front this hello superseded (it has been told to go), if one was connected. */
  readonly superseded: string | undefined;
  readonly processes: readonly KeptState[];
}

/** The reply's body for each request type. */
export interface ReplyBodies {
  hello: HelloReply;
  spawn: { readonly state: KeptState } | { readonly failure: SpawnFailure };
  stdin: { readonly outcome: StdinOutcome; readonly applied: number; readonly ended: boolean; readonly queued: number };
  signal: { readonly sent: boolean };
  resize: { readonly resized: boolean };
  killAll: { readonly count: number };
  bye: { readonly live: number };
}

export type KeeperReply = { readonly t: 'reply'; readonly rid: number } & (
  | { readonly ok: true; readonly body: ReplyBodies[keyof ReplyBodies] }
  | { readonly ok: false; readonly error: KeeperErrorBody }
);

/** Why the keeper refused a request. */
export type KeeperErrorBody =
  | { readonly code: 'protocolMismatch'; readonly message: string; readonly protocol: number }
  /** This front was superseded by a newer one: it may no longer act on the processes. */
  | { readonly code: 'superseded'; readonly message: string }
  | { readonly code: 'notFound'; readonly message: string }
  | { readonly code: 'badRequest'; readonly message: string };

/** Messages the keeper sends unasked. */
export type KeeperNotice =
  /** New frames are in these processes' journals, up to the seq given: `[key, lastSeq]` pairs, one message per turn. */
  | { readonly t: 'appended'; readonly procs: readonly (readonly [string, number])[] }
  | { readonly t: 'reaped'; readonly key: string; readonly reap: ReapInfo }
  | { readonly t: 'drainTimedOut'; readonly key: string }
  /** Another front said hello: this one must stop serving and exit, leaving the processes running. */
  | { readonly t: 'superseded'; readonly by: string }
  /** An entry of the keeper's log (also in keeper.log), for the daemon's log. */
  | { readonly t: 'log'; readonly level: 'debug' | 'info' | 'warn' | 'error'; readonly component: string; readonly msg: string };

export type KeeperMessage = KeeperReply | KeeperNotice;

const packr = new Packr({ useRecords: false, variableMapSize: true, skipValues: [undefined] } as import('msgpackr').Options);
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

/** One message with its length prefix, ready to write. */
export function encodeMessage(msg: FrontMessage | KeeperMessage): Buffer {
  const body = packr.pack(msg);
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

export class KeeperStreamError extends Error {}

/**
 * Cuts a byte stream into messages. A length over KEEPER_MAX_MESSAGE_BYTES or a body that does not decode throws
 * KeeperStreamError: the peer is not speaking this protocol, and the connection must be closed.
 */
export class MessageReader {
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  push(chunk: Buffer, onMessage: (msg: unknown) => void): void {
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    // A large message arrives in many reads: join them once it is whole, not at every read.
    if (this.#pending.length > 1 && this.#pendingBytes >= 4) {
      const head = this.#pending[0]!.length >= 4 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
      const len = head.readUInt32BE(0);
      if (len <= KEEPER_MAX_MESSAGE_BYTES && this.#pendingBytes < 4 + len) return;
    }
    let buf = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32BE(at);
      if (len > KEEPER_MAX_MESSAGE_BYTES) throw new KeeperStreamError(`message of ${len} bytes is over the ${KEEPER_MAX_MESSAGE_BYTES}-byte limit`);
      if (buf.length - at - 4 < len) break;
      let msg: unknown;
      try {
        msg = unpackr.unpack(buf.subarray(at + 4, at + 4 + len));
      } catch (err) {
        throw new KeeperStreamError(`undecodable message: ${(err as Error).message}`);
      }
      at += 4 + len;
      onMessage(msg);
    }
    buf = buf.subarray(at);
    this.#pending = buf.length > 0 ? [buf] : [];
    this.#pendingBytes = buf.length;
  }
}

/** Bytes as a Buffer without a copy (MessagePack decodes `bin` as a Uint8Array view). */
export function asBuffer(data: Uint8Array): Buffer {
  return Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
}
