/**
 * The wire as the console page sees it: the same JSON-RPC messages and stream frames every client gets, MessagePack
 * over the WebSocket (PROTOCOL.md "MessagePack and WebSocket"). Everything that arrives is checked here, once, and
 * becomes a typed value; nothing past this file looks at an unchecked object.
 *
 * The page is a client like any other: it declares the shapes it reads instead of importing the daemon's (the
 * bundle must not pull server code in). The fields marked "later" come with the observer, terminal and operations
 * work (issues 11, 12, 13) and are optional, so the page runs against a daemon with or without them.
 */

export interface ProcessEntry {
  readonly id: string;
  readonly running: boolean;
  readonly pid: number;
  readonly startTime: number;
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd: string;
  readonly startedAt: number;
  readonly exitCode?: number;
  readonly signal?: string;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly stdinApplied: number;
  /** Later (observers): how many connections observe it. */
  readonly observers?: number;
  /** Later (terminals): the terminal's size, for a process on a pseudo-terminal. */
  readonly pty?: { readonly cols: number; readonly rows: number };
}

export interface StatsResult {
  readonly found: boolean;
  readonly running?: boolean;
  readonly pid?: number;
  readonly cpu?: number;
  readonly memory?: number;
  readonly elapsed?: number;
  readonly descendants?: number;
}

export interface CapabilitiesResult {
  readonly version: string;
  readonly methods: readonly string[];
  readonly instanceId: string;
  readonly startedAt: number;
  readonly features: readonly string[];
}

export interface AttachResult {
  readonly found: boolean;
  readonly running: boolean;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly stdinApplied?: number;
}

export interface StdinResult {
  readonly success: true;
  readonly applied: number;
  readonly duplicate?: true;
}

export interface KillAndWaitResult {
  readonly found: boolean;
  readonly died: boolean;
  readonly alreadyExited?: true;
  readonly escalated?: true;
}

export interface SpawnParams {
  readonly id: string;
  readonly command: string;
  readonly args?: readonly string[];
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  /** Later (terminals): run on a pseudo-terminal of this size. */
  readonly pty?: { readonly cols: number; readonly rows: number };
}

export interface StdinParams {
  readonly id: string;
  readonly data?: Uint8Array;
  readonly offset?: number;
  readonly eof?: boolean;
}

/** Every method the page calls, with its params and result. */
export interface MethodMap {
  'server.ping': { params: undefined; result: { pong: true } };
  'server.capabilities': { params: undefined; result: CapabilitiesResult };
  /** Later (operations): absent on older daemons (Unknown method). */
  'server.info': { params: undefined; result: Record<string, unknown> };
  'process.list': { params: Record<string, never>; result: { processes: readonly ProcessEntry[] } };
  'process.stats': { params: { id: string }; result: StatsResult };
  'process.spawn': { params: SpawnParams; result: { success: true; pid?: number } };
  'process.stdin': { params: StdinParams; result: StdinResult };
  'process.kill': { params: { id: string; signal?: string }; result: { success: true } };
  'process.killAndWait': {
    params: { id: string; signal?: string; timeoutMs?: number; escalate?: boolean };
    result: KillAndWaitResult;
  };
  'process.reattach': { params: { id: string; fromSeq?: number }; result: AttachResult };
  /** Later (observers). `screen` asks a terminal for a snapshot frame first (terminals issue). */
  'process.observe': { params: { id: string; fromSeq?: number; screen?: boolean }; result: AttachResult };
  'process.unobserve': { params: { id: string }; result: Record<string, unknown> };
  'process.resize': { params: { id: string; cols: number; rows: number }; result: Record<string, unknown> };
}
export type MethodName = keyof MethodMap;

export interface DataFrame {
  readonly type: 'stream';
  readonly processId: string;
  readonly stream: 'stdout' | 'stderr';
  readonly seq: number;
  readonly data: Uint8Array;
}
export interface ExitFrame {
  readonly type: 'stream';
  readonly processId: string;
  readonly stream: 'exit';
  readonly seq: number;
  /** -1 when a signal ended the process. */
  readonly exitCode: number;
  readonly signal?: string;
  readonly killedBy?: string;
}
export interface ResizeFrame {
  readonly type: 'stream';
  readonly processId: string;
  readonly stream: 'resize';
  readonly seq: number;
  readonly cols: number;
  readonly rows: number;
}
/** A serialized terminal screen as of `seq`; the frames after `seq` follow. */
export interface ScreenFrame {
  readonly type: 'stream';
  readonly processId: string;
  readonly stream: 'screen';
  readonly seq: number;
  readonly cols: number;
  readonly rows: number;
  readonly data: Uint8Array | string;
}
/** Frames `fromSeq`..`toSeq` were evicted before this observer read them: they will never arrive. */
export interface GapFrame {
  readonly type: 'gap';
  readonly processId: string;
  readonly fromSeq: number;
  readonly toSeq: number;
}
export type Frame = DataFrame | ExitFrame | ResizeFrame | ScreenFrame | GapFrame;

export interface RpcErrorObject {
  readonly code: number;
  readonly message: string;
}

export type Incoming =
  | { readonly kind: 'result'; readonly id: number; readonly result: unknown }
  | { readonly kind: 'error'; readonly id: unknown; readonly error: RpcErrorObject }
  | { readonly kind: 'frame'; readonly frame: Frame }
  /** A well-formed message of a kind this page does not know (a later daemon's): ignored. */
  | { readonly kind: 'unknown' }
  | { readonly kind: 'invalid'; readonly reason: string };

/** JSON-RPC error codes the page acts on. */
export const ERR_METHOD_NOT_FOUND = -32601;
export const ERR_INVALID_PARAMS = -32602;
export const ERR_UNAUTHORIZED = -32001;
export const ERR_STDIN_FULL = -32002;
export const ERR_STDIN_GAP = -32003;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isBytes = (v: unknown): v is Uint8Array => v instanceof Uint8Array;

/** Turns one decoded message into a checked value. */
export function classify(value: unknown): Incoming {
  if (!isObject(value)) return { kind: 'invalid', reason: 'not a map' };
  if (value.type === 'stream') {
    const { processId, stream, seq } = value;
    if (typeof processId !== 'string' || !isCount(seq)) return { kind: 'invalid', reason: 'stream frame without processId or seq' };
    switch (stream) {
      case 'stdout':
      case 'stderr':
        if (!isBytes(value.data)) return { kind: 'invalid', reason: `${stream} frame without binary data` };
        return { kind: 'frame', frame: { type: 'stream', processId, stream, seq, data: value.data } };
      case 'exit': {
        if (typeof value.exitCode !== 'number') return { kind: 'invalid', reason: 'exit frame without exitCode' };
        const frame: ExitFrame = {
          type: 'stream',
          processId,
          stream,
          seq,
          exitCode: value.exitCode,
          ...(typeof value.signal === 'string' ? { signal: value.signal } : {}),
          ...(typeof value.killedBy === 'string' ? { killedBy: value.killedBy } : {}),
        };
        return { kind: 'frame', frame };
      }
      case 'resize':
        if (!isCount(value.cols) || !isCount(value.rows)) return { kind: 'invalid', reason: 'resize frame without cols and rows' };
        return { kind: 'frame', frame: { type: 'stream', processId, stream, seq, cols: value.cols, rows: value.rows } };
      case 'screen':
        if (!isCount(value.cols) || !isCount(value.rows) || !(isBytes(value.data) || typeof value.data === 'string'))
          return { kind: 'invalid', reason: 'screen frame without cols, rows and data' };
        return { kind: 'frame', frame: { type: 'stream', processId, stream, seq, cols: value.cols, rows: value.rows, data: value.data } };
      default:
        return { kind: 'unknown' };
    }
  }
  if (value.type === 'gap') {
    const { processId, fromSeq, toSeq } = value;
    if (typeof processId !== 'string' || !isCount(fromSeq) || !isCount(toSeq)) return { kind: 'invalid', reason: 'gap frame without its seqs' };
    return { kind: 'frame', frame: { type: 'gap', processId, fromSeq, toSeq } };
  }
  if (value.type !== undefined) return { kind: 'unknown' };
  if (value.jsonrpc !== '2.0') return { kind: 'invalid', reason: 'not JSON-RPC 2.0' };
  if (isObject(value.error)) {
    const { code, message } = value.error;
    if (typeof code !== 'number' || typeof message !== 'string') return { kind: 'invalid', reason: 'error without code and message' };
    return { kind: 'error', id: value.id, error: { code, message } };
  }
  if (!('result' in value)) return { kind: 'invalid', reason: 'reply without result or error' };
  if (typeof value.id !== 'number') return { kind: 'unknown' };
  return { kind: 'result', id: value.id, result: value.result };
}
