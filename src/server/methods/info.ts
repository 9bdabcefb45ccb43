/**
 * `server.info` (extension): what an operator asks of a running daemon (`claustrum -status`). Authenticated like
 * every method but the Unix socket's `server.shutdown`, because it names paths (socket, token file, log).
 *
 * The daemon builds the answer (src/daemon/serve.ts owns the facts); this module only puts it on the wire.
 * Registered through `ServerOptions.methods`, after the built-in methods, so it is last in `server.capabilities`.
 */
import { defineServerMethod, type MethodDef } from '../dispatch.js';

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

export function infoMethods(read: () => InfoResult): MethodDef[] {
  return [defineServerMethod('server.info', (): InfoResult => read())];
}
