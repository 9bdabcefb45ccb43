import type { EchoId } from './request.js';

/**
 * Result shapes of every method, typed; key order in these object types is the order handlers build them in, which
 * is the reference's wire order (claustrum-wire.md §4). Stream frames are typed in src/replay/frame.ts.
 */

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

/** A reply ready to encode: the echoed id and exactly one of result or error. */
export type Reply =
  | { readonly id: EchoId; readonly result: unknown; readonly error?: undefined }
  | { readonly id: EchoId; readonly error: { readonly code: number; readonly message: string } };

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

// files.* and git.*: the shapes are defined beside their logic (src/files, src/git), in wire key order.
export type { ListEntry as FilesListEntry, StatResult, ValidateResult, ReadResult } from '../files/inspect.js';
export type { ExtractResult as ExtractTarResult } from '../files/extract.js';
export type { InfoResult as GitInfoResult, StatusResult as GitStatusResult, BranchesResult as GitBranchesResult } from '../git/repo.js';
export type { CreateResult as WorktreeCreateResult, RemoveResult as WorktreeRemoveResult } from '../git/worktree.js';

export interface FilesListResult {
  readonly entries: readonly import('../files/inspect.js').ListEntry[];
}
