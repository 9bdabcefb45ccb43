/**
 * The wire's messages, one definition for the daemon and the client: stream frames, notifications, and the result of
 * every method. Key order in these object types is the order the daemon builds them in, which is the reference's
 * wire order (PROTOCOL.md); the NDJSON encoder relies on it.
 *
 * `B` is how bytes are held: a Buffer in the daemon and in the Node client, a Uint8Array where Buffer is absent.
 */

// ---- stream frames ----

export type OutputStream = 'stdout' | 'stderr';
/**
 * Who ended a process: a client's kill, the daemon's shutdown, or (extension) `lost`: the keeper that ran it died,
 * so its exit is unknown (PROTOCOL.md, "Restarts and crashes").
 */
export type KilledBy = 'client' | 'shutdown' | 'lost';

/** One read of a child's output. On NDJSON `data` is base64 text; on MessagePack it is binary. */
export interface DataFrameBody<B = Buffer> {
  readonly seq: number;
  readonly stream: OutputStream;
  readonly data: B;
}

/** The last frame of a process: it follows every byte of output. */
export interface ExitFrameBody {
  readonly seq: number;
  readonly stream: 'exit';
  /** The exit status, or -1 when a signal ended the process. */
  readonly exitCode: number;
  /** `SIGTERM`-style name of the signal that ended the process, if one did. */
  readonly signal?: string | undefined;
  readonly killedBy?: KilledBy | undefined;
}

/** Extension (terminals): the terminal was resized; everything after it was drawn at this size. */
export interface ResizeFrameBody {
  readonly seq: number;
  readonly stream: 'resize';
  readonly cols: number;
  readonly rows: number;
}

/**
 * Extension (terminals): the screen as of `seq`, written instead of the frames up to it when they are no longer all
 * retained. `data` drawn on a fresh `cols`×`rows` terminal shows that screen (UTF-8 text; base64 on NDJSON, binary
 * on MessagePack); the frames after `seq` follow. Not stored: made for the reader that needs it.
 */
export interface ScreenFrameBody<B = Buffer> {
  readonly seq: number;
  readonly stream: 'screen';
  readonly cols: number;
  readonly rows: number;
  readonly data: B;
}

/** What a process's frame log holds, one entry per seq. */
export type FrameBody<B = Buffer> = DataFrameBody<B> | ExitFrameBody | ResizeFrameBody;

/** A stream frame as it travels: `{"type":"stream","processId":…,"stream":…,"seq":…,…}`. */
export type StreamFrame<B = Buffer> = (FrameBody<B> | ScreenFrameBody<B>) & { readonly type: 'stream'; readonly processId: string };

/** A terminal's size (extension). */
export interface TerminalSize {
  readonly cols: number;
  readonly rows: number;
}

/**
 * Extension: an observer fell behind the replay buffer's oldest frame; the frames `fromSeq`..`toSeq` (inclusive) are
 * gone and it continues from the oldest retained frame.
 */
export interface GapNotice {
  readonly type: 'gap';
  readonly processId: string;
  readonly fromSeq: number;
  readonly toSeq: number;
}

// ---- results: server.* ----

export interface PingResult {
  readonly pong: true;
}

export interface CapabilitiesResult {
  readonly version: string;
  readonly methods: readonly string[];
  readonly instanceId: string;
  readonly startedAt: number;
  readonly features: readonly string[];
}

export interface ShutdownResult {
  readonly ok: true;
}

/** Where the daemon is in its life: serving once `ready`; `draining` refuses spawns and waits for children. */
export type DaemonPhase = 'starting' | 'ready' | 'draining' | 'stopping';

export interface InfoResult {
  readonly version: string;
  /** The git commit of the build, when it was built from a checkout. */
  readonly commit?: string;
  readonly pid: number;
  readonly instanceId: string;
  /** Unix milliseconds of the start. */
  readonly startedAt: number;
  readonly state: DaemonPhase;
  readonly socket: string;
  /** `daemon.token`, or null when no token file was written (the token came from `-token-fd`). */
  readonly tokenFile: string | null;
  /** The log file, `"stderr"`, or null when the daemon runs without one. */
  readonly log: string | null;
  /** `http://host:port` of the metrics and health listener, or null. */
  readonly metrics: string | null;
  /** `ws://host:port/rpc`, or null. */
  readonly websocket: string | null;
  readonly processes: { readonly live: number; readonly retained: number };
  readonly connections: number;
  /** Serialized bytes held in the replay buffers of retained processes. */
  readonly replayBytes: number;
  readonly keepChildren: boolean;
  /** `-drain-timeout` in ms; 0: off. */
  readonly drainTimeoutMs: number;
  /** `-idle-exit` in ms; 0: off. */
  readonly idleExitMs: number;
  /** The listening socket came from systemd (`LISTEN_FDS`). */
  readonly socketActivated: boolean;
}

// ---- results: process.* ----

export type SpawnResult = { readonly success: true } | { readonly success: true; readonly pid: number; readonly startTime: number };

export type StdinResult =
  | { readonly success: true; readonly applied: number }
  | { readonly success: true; readonly applied: number; readonly duplicate: true };

export interface KillResult {
  readonly success: true;
}

export interface KillAndWaitResult {
  readonly found: boolean;
  readonly died: boolean;
  readonly alreadyExited?: true;
  readonly escalated?: true;
}

export interface ReattachResult {
  readonly found: boolean;
  readonly running: boolean;
  readonly firstSeq: number;
  readonly lastSeq: number;
  readonly stdinApplied: number;
  readonly pid?: number;
  readonly startTime?: number;
  /** Extension: stdin was closed by an `eof` write. */
  readonly stdinClosed?: true;
}

/** Extension `process.observe`: sent after the replayed frames. */
export interface ObserveResult {
  readonly found: boolean;
  readonly running: boolean;
  readonly firstSeq: number;
  readonly lastSeq: number;
}

/** Extension `process.resize`. */
export interface ResizeResult {
  readonly success: true;
}

/** Extension `session.identify`: the connection's caller is declared. */
export interface IdentifyResult {
  readonly ok: true;
}

/** Extension `process.unobserve`: whether this connection was observing the process. */
export interface UnobserveResult {
  readonly found: boolean;
}

/** One entry of process.list (extension). */
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
  /** Connections observing the process (`process.observe`). */
  readonly observers: number;
  /** A terminal process's current size (absent for a piped one). */
  readonly pty?: TerminalSize;
  /** Extension: the instance id of the daemon that spawned it. */
  readonly instance: string;
  /** Extension: how many daemon restarts, upgrades and crashes it has outlived (adopted by a later daemon). */
  readonly restarts: number;
}

export interface ListResult {
  readonly processes: readonly ProcessEntry[];
}

export type StatsResult =
  | { readonly found: false }
  | {
      readonly found: true;
      readonly running: boolean;
      readonly pid: number;
      /** Percent of one core, summed over the child and its descendants. */
      readonly cpu: number;
      /** Resident set size in bytes, summed over the child and its descendants. */
      readonly memory: number;
      /** Milliseconds since the child started (until its exit, once it exited). */
      readonly elapsed: number;
      /** Live descendants counted in the sums. */
      readonly descendants: number;
    };

// ---- results: files.* ----

export interface FilesListEntry {
  readonly name: string;
  readonly path: string;
  readonly isDir: boolean;
}

export interface FilesListResult {
  readonly entries: readonly FilesListEntry[];
}

export interface StatResult {
  readonly exists: boolean;
  readonly isDir: boolean;
  readonly size: number;
  readonly mode: string;
}

export type ValidateResult =
  | { readonly valid: true; readonly isDir: boolean }
  | { readonly valid: false; readonly isDir: false; readonly error: string };

export type ReadResult = { readonly content: string; readonly exists: true } | { readonly content: ''; readonly exists: false };

export type ExtractTarResult =
  | { readonly success: true; readonly fileCount: number }
  | { readonly success: false; readonly fileCount: number; readonly error: string };

// ---- results: git.* ----

export type GitInfoResult =
  | {
      readonly isRepo: true;
      readonly repo: string;
      readonly branch?: string;
      readonly root: string;
      readonly repoSlug: string;
      readonly defaultBranch: string;
    }
  | { readonly isRepo: false; readonly repoSlug: ''; readonly defaultBranch: '' };

export interface GitBranchesResult {
  readonly isRepo: boolean;
  readonly branches: string[];
}

export type GitStatusResult =
  | { readonly isRepo: false; readonly clean: false }
  | { readonly isRepo: true; readonly clean: true }
  | { readonly isRepo: true; readonly clean: false; readonly changes: string[] };

import type { WorktreeErrorCode } from './failures.js';

export type { WorktreeErrorCode };

export type WorktreeCreateResult =
  | { readonly success: true; readonly path: string; readonly sourceBranch?: string }
  | { readonly success: false; readonly error: string; readonly errorCode: WorktreeErrorCode };

export type WorktreeRemoveResult = { readonly success: true } | { readonly success: false; readonly error: string };
