/**
 * The wire as the client sees it: request params, results and stream frames, typed.
 *
 * Result shapes come from the server's own declarations (type-only imports: no server code is loaded), so the two
 * sides cannot drift apart silently. Frames are typed here in their decoded form: whatever the codec, `data`
 * reaches the client as a Buffer.
 */
import type {
  CapabilitiesResult,
  KillAndWaitResult,
  KillResult,
  ListResult,
  PingResult,
  ProcessEntry,
  ReattachResult,
  ShutdownResult,
  SpawnResult,
  StatsResult,
  StdinResult,
} from '../server/wire.js';

/** One entry of `process.list`: a process the daemon still knows, oldest first. */
export type ProcessInfo = ProcessEntry;

export type {
  CapabilitiesResult,
  KillAndWaitResult,
  KillResult,
  ListResult,
  PingResult,
  ReattachResult,
  ShutdownResult,
  SpawnResult,
  StatsResult,
  StdinResult,
};

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

export type OutputStream = 'stdout' | 'stderr';

export interface DataFrame {
  readonly kind: 'frame';
  readonly processId: string;
  readonly stream: OutputStream;
  readonly seq: number;
  readonly data: Buffer;
}

export interface ExitFrame {
  readonly kind: 'frame';
  readonly processId: string;
  readonly stream: 'exit';
  readonly seq: number;
  /** The exit status, or -1 when a signal ended the process. */
  readonly exitCode: number;
  readonly signal?: string;
  readonly killedBy?: 'client' | 'shutdown';
}

export type StreamFrame = DataFrame | ExitFrame;

/**
 * Everything a codec can hand the client: a reply, a frame, a well-formed message of a kind this client does not
 * know (a later daemon's notification: ignored), or bytes that are not this protocol at all (the connection is
 * dropped and made again).
 */
export type Incoming =
  | WireReply
  | StreamFrame
  | { readonly kind: 'unknown'; readonly type: string }
  | { readonly kind: 'invalid'; readonly reason: string };

// ---- params ----

export interface SpawnParams {
  readonly id: string;
  readonly command: string;
  readonly args?: readonly string[];
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly wantPid?: boolean;
}

export interface StdinParams {
  readonly id: string;
  /** Raw bytes; the codec sends base64 (NDJSON) or binary (MessagePack). */
  readonly data?: Uint8Array;
  readonly offset?: number;
  /** Extension `process.stdin.eof`: close the child's stdin once every accepted byte is written. */
  readonly eof?: boolean;
}

export interface KillParams {
  readonly id: string;
  /** `TERM` (default), `INT`, `HUP`, `KILL`, with or without `SIG`. */
  readonly signal?: string;
}

export interface KillAndWaitParams extends KillParams {
  readonly timeoutMs?: number;
  readonly escalate?: boolean;
}

export interface ReattachParams {
  readonly id: string;
  readonly fromSeq?: number;
  readonly wantPid?: boolean;
}

/** Every method the client wraps, with its params and result. Anything else goes through `call()`. */
export interface MethodMap {
  'server.ping': { params: undefined; result: PingResult };
  'server.capabilities': { params: undefined; result: CapabilitiesResult };
  'server.shutdown': { params: undefined; result: ShutdownResult };
  'process.spawn': { params: SpawnParams; result: SpawnResult };
  'process.stdin': { params: StdinParams; result: StdinResult };
  'process.kill': { params: KillParams; result: KillResult };
  'process.killAndWait': { params: KillAndWaitParams; result: KillAndWaitResult };
  'process.reattach': { params: ReattachParams; result: ReattachResult };
  'process.list': { params: Record<string, never>; result: ListResult };
  'process.stats': { params: { readonly id: string }; result: StatsResult };
}

export type MethodName = keyof MethodMap;
