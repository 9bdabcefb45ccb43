/**
 * Every method of the wire, by name: its params and its result. The single source of truth: the daemon's method
 * definitions are typed against it (src/server/rpc/dispatch.ts `defineMethod`), the client's calls too, and the order
 * of METHOD_NAMES is the order `server.capabilities` lists them in (the reference's methods first).
 *
 * Params are the shapes a client sends. Every member is optional on the wire (the daemon treats absent and null
 * alike and refuses a mistyped one with `Invalid params`); the ones marked required here are the ones a method
 * cannot do without, and a client written against this map always sends them.
 */
import type {
  CapabilitiesResult,
  ExtractTarResult,
  FilesListResult,
  GitBranchesResult,
  GitInfoResult,
  GitStatusResult,
  IdentifyResult,
  InfoResult,
  KillAndWaitResult,
  KillResult,
  ListResult,
  ObserveResult,
  PingResult,
  ReadResult,
  ReattachResult,
  ResizeResult,
  ShutdownResult,
  SpawnResult,
  StatResult,
  StatsResult,
  StdinResult,
  TerminalSize,
  UnobserveResult,
  ValidateResult,
  WorktreeCreateResult,
  WorktreeRemoveResult,
} from './messages.js';

export interface SpawnParams {
  readonly id: string;
  readonly command: string;
  readonly args?: readonly string[];
  readonly cwd?: string;
  /** Merged over the daemon's environment. */
  readonly env?: Readonly<Record<string, string>>;
  readonly wantPid?: boolean;
  /** Extension: run on a pseudo-terminal of this size (the program is its session leader). */
  readonly pty?: TerminalSize;
  /** With `pty`: TERM for the program; `xterm-256color` when absent. */
  readonly term?: string;
}

export interface ResizeParams {
  readonly id: string;
  readonly cols: number;
  readonly rows: number;
}

export interface StdinParams<B = Uint8Array> {
  readonly id: string;
  /** Raw bytes: base64 text on NDJSON, binary on MessagePack. */
  readonly data?: B | string;
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
  /** Extension (terminals): start with the screen as it is (a `screen` frame), not the frames from `fromSeq`. */
  readonly screen?: boolean;
}

export interface ObserveParams {
  readonly id: string;
  /** Frames with a seq above this are replayed; 0 (the default) replays everything retained. */
  readonly fromSeq?: number;
  /** Extension (terminals): as for process.reattach. */
  readonly screen?: boolean;
}

export interface IdParams {
  readonly id: string;
}

export interface FilesParams {
  readonly path?: string;
  readonly maxBytes?: number;
  readonly archivePath?: string;
  readonly destDir?: string;
}

export interface GitParams {
  readonly path?: string;
  readonly baseRepo?: string;
  readonly branchName?: string;
  readonly worktreePath?: string;
  readonly sourceBranch?: string;
}

/**
 * Who a client acts for, as it asserts it (the daemon cannot verify it; the audit records it as asserted): `driver`
 * and `identity` required, at most 8 members, names `[A-Za-z][A-Za-z0-9_]*` of at most 32 bytes, values non-empty
 * printable strings of at most 256 UTF-8 bytes. `session.identify` declares it for a connection; a request's own
 * top-level `caller` member overrides it for that request.
 */
export interface Caller {
  readonly driver: string;
  readonly identity: string;
  readonly runId?: string;
  readonly [member: string]: string | undefined;
}

export interface IdentifyParams {
  readonly caller: Caller;
}

type NoParams = Readonly<Record<string, never>> | undefined;

export interface MethodMap {
  'server.ping': { params: NoParams; result: PingResult };
  'server.capabilities': { params: NoParams; result: CapabilitiesResult };
  'server.shutdown': { params: NoParams; result: ShutdownResult };
  'server.info': { params: NoParams; result: InfoResult };
  'files.list': { params: FilesParams; result: FilesListResult };
  'files.validate': { params: FilesParams; result: ValidateResult };
  'files.stat': { params: FilesParams; result: StatResult };
  'files.read': { params: FilesParams; result: ReadResult };
  'files.extract_tar': { params: FilesParams; result: ExtractTarResult };
  'git.info': { params: GitParams; result: GitInfoResult };
  'git.status': { params: GitParams; result: GitStatusResult };
  'git.list_branches': { params: GitParams; result: GitBranchesResult };
  'git.worktree_create': { params: GitParams; result: WorktreeCreateResult };
  'git.worktree_remove': { params: GitParams; result: WorktreeRemoveResult };
  'process.spawn': { params: SpawnParams; result: SpawnResult };
  'process.stdin': { params: StdinParams; result: StdinResult };
  'process.kill': { params: KillParams; result: KillResult };
  'process.killAndWait': { params: KillAndWaitParams; result: KillAndWaitResult };
  'process.reattach': { params: ReattachParams; result: ReattachResult };
  'process.list': { params: NoParams; result: ListResult };
  'process.stats': { params: IdParams; result: StatsResult };
  'process.observe': { params: ObserveParams; result: ObserveResult };
  'process.unobserve': { params: IdParams; result: UnobserveResult };
  'process.resize': { params: ResizeParams; result: ResizeResult };
  'session.identify': { params: IdentifyParams; result: IdentifyResult };
}

export type MethodName = keyof MethodMap;
export type ParamsOf<M extends MethodName> = MethodMap[M]['params'];
export type ResultOf<M extends MethodName> = MethodMap[M]['result'];

/** Every method in `server.capabilities` order: the reference's, then the extensions. */
export const METHOD_NAMES = [
  'server.ping',
  'server.capabilities',
  'server.shutdown',
  'files.list',
  'files.validate',
  'files.stat',
  'files.read',
  'files.extract_tar',
  'git.info',
  'git.status',
  'git.list_branches',
  'git.worktree_create',
  'git.worktree_remove',
  'process.spawn',
  'process.stdin',
  'process.kill',
  'process.killAndWait',
  'process.reattach',
  'process.list',
  'process.stats',
  'process.observe',
  'process.unobserve',
  'process.resize',
  'session.identify',
  'server.info',
] as const satisfies readonly MethodName[];

// Compile-time check that METHOD_NAMES names every method of the map exactly.
type Missing = Exclude<MethodName, (typeof METHOD_NAMES)[number]>;
const everyMethodListed: [Missing] extends [never] ? true : Missing = true;
void everyMethodListed;
