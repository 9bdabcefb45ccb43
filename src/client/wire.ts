/**
 * The wire as the client sees it. Every shape comes from the protocol core (src/protocol), which the daemon uses
 * too, so the two sides cannot drift apart; this file only adds how the client's codecs classify what arrives.
 * Whatever the codec, `data` reaches the client as a Buffer.
 */
import type { GapNotice, ProcessEntry, StreamFrame } from '../protocol/messages.js';

export type {
  CapabilitiesResult,
  DataFrameBody,
  ExitFrameBody,
  GapNotice,
  KillAndWaitResult,
  KillResult,
  ListResult,
  ObserveResult,
  OutputStream,
  PingResult,
  ReattachResult,
  ShutdownResult,
  SpawnResult,
  StatsResult,
  StdinResult,
  StreamFrame,
  UnobserveResult,
} from '../protocol/messages.js';
export type {
  Caller,
  KillAndWaitParams,
  KillParams,
  MethodMap,
  MethodName,
  ObserveParams,
  ParamsOf,
  ReattachParams,
  ResultOf,
  SpawnParams,
  StdinParams,
} from '../protocol/methods.js';

/** One entry of `process.list`: a process the daemon still knows, oldest first. */
export type ProcessInfo = ProcessEntry;

/** A JSON-RPC request as the client writes it. `data` members may hold bytes; the codec renders them. */
export interface WireRequest {
  readonly jsonrpc: '2.0';
  readonly id: number;
  readonly method: string;
  readonly params?: object;
  readonly auth: string;
}

export interface WireErrorObject {
  readonly code: number;
  readonly message: string;
}

/** A reply to one request, matched by `id`. */
export type WireReply =
  | { readonly kind: 'reply'; readonly id: unknown; readonly result: unknown; readonly error?: undefined }
  | { readonly kind: 'reply'; readonly id: unknown; readonly error: WireErrorObject };

/** A stream frame as the client handles it. */
export type IncomingFrame = StreamFrame & { readonly kind: 'frame' };
/** An observer's gap notice as the client handles it. */
export type IncomingGap = GapNotice & { readonly kind: 'gap' };

/**
 * Everything a codec can hand the client: a reply, a frame, a gap notice, a well-formed message of a kind this
 * client does not know (a later daemon's notification: ignored), or bytes that are not this protocol at all (the
 * connection is dropped and made again).
 */
export type Incoming =
  | WireReply
  | IncomingFrame
  | IncomingGap
  | { readonly kind: 'unknown'; readonly type: string }
  | { readonly kind: 'invalid'; readonly reason: string };
