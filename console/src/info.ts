/**
 * The daemon panel's figures. `server.info` (operations issue) is read when the daemon has it; the page does not
 * depend on its exact layout and takes a number from the first of a few plausible places, so a renamed counter
 * shows as "n/a" instead of breaking the page. Without `server.info` (an older daemon answers Unknown method) the
 * figures come from `server.capabilities` and `process.list`: version and uptime, processes, and the output rate as
 * frames per second (the sum of the processes' lastSeq advancing) instead of bytes.
 */
import type { CapabilitiesResult, ProcessEntry } from './wire.js';

export interface DaemonFigures {
  readonly version: string | undefined;
  readonly instance: string | undefined;
  readonly startedAt: number | undefined;
  readonly processes: number | undefined;
  readonly running: number | undefined;
  readonly connections: number | undefined;
  readonly replayBytes: number | undefined;
  /** Monotonic totals the rates come from. */
  readonly spawns: number | undefined;
  readonly output: number | undefined;
  /** 'bytes' from server.info, 'frames' from the list fallback. */
  readonly outputUnit: 'bytes' | 'frames';
  readonly auditHead: string | undefined;
  readonly auditTail: readonly string[];
  readonly source: 'server.info' | 'fallback';
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The first finite number found at one of the dotted paths. */
export function pickNumber(o: Obj, ...paths: string[]): number | undefined {
  for (const p of paths) {
    let v: unknown = o;
    for (const k of p.split('.')) v = isObj(v) ? v[k] : undefined;
    if (typeof v === 'number' && Number.isFinite(v)) return v;
  }
  return undefined;
}

function pickString(o: Obj, ...paths: string[]): string | undefined {
  for (const p of paths) {
    let v: unknown = o;
    for (const k of p.split('.')) v = isObj(v) ? v[k] : undefined;
    if (typeof v === 'string') return v;
  }
  return undefined;
}

export function fromServerInfo(info: Obj): DaemonFigures {
  const startedAt = pickNumber(info, 'startedAt');
  // `uptime` in seconds (as /info and -status print it), or `uptimeMs`.
  const uptimeMs = pickNumber(info, 'uptimeMs') ?? (pickNumber(info, 'uptime') ?? Number.NaN) * 1000;
  const tail = isObj(info.audit) && Array.isArray(info.audit.tail) ? info.audit.tail : [];
  return {
    version: pickString(info, 'version'),
    instance: pickString(info, 'instance', 'instanceId'),
    startedAt: startedAt ?? (Number.isFinite(uptimeMs) ? Date.now() - uptimeMs : undefined),
    processes: pickNumber(info, 'processes.total', 'processes.retained', 'processes'),
    running: pickNumber(info, 'processes.running', 'running'),
    connections: pickNumber(info, 'connections.open', 'connections.current', 'connections'),
    replayBytes: pickNumber(info, 'replayBytes', 'replay.bytes', 'replay'),
    spawns: pickNumber(info, 'spawns', 'spawned', 'counters.spawns', 'spawns.total'),
    output: pickNumber(info, 'outputBytes', 'output.bytes', 'counters.outputBytes', 'output'),
    outputUnit: 'bytes',
    auditHead: pickString(info, 'audit.head', 'auditHead', 'audit.headHash'),
    auditTail: tail.map((r) => (typeof r === 'string' ? r : JSON.stringify(r))),
    source: 'server.info',
  };
}

/** What the fallback carries from one poll to the next: the processes it saw (bounded by the list) and a spawn count. */
export interface FallbackState {
  keys: Set<string>;
  spawns: number;
}

/** Spawns are counted as processes not in the previous poll's list; output as the sum of lastSeq (frames). */
export function fromFallback(caps: CapabilitiesResult | undefined, list: readonly ProcessEntry[], state: FallbackState): DaemonFigures {
  const keys = new Set(list.map((p) => `${p.id}@${p.startedAt}`));
  for (const k of keys) if (!state.keys.has(k)) state.spawns++;
  state.keys = keys;
  return {
    version: caps?.version,
    instance: caps?.instanceId,
    startedAt: caps?.startedAt,
    processes: list.length,
    running: list.filter((p) => p.running).length,
    connections: undefined,
    replayBytes: undefined,
    spawns: state.spawns,
    output: list.reduce((n, p) => n + p.lastSeq, 0),
    outputUnit: 'frames',
    auditHead: undefined,
    auditTail: [],
    source: 'fallback',
  };
}

/** Per-second rate between two samples of a monotonic total; undefined when either is missing or time did not pass. */
export function rate(prev: { at: number; value: number | undefined } | undefined, at: number, value: number | undefined): number | undefined {
  if (!prev || prev.value === undefined || value === undefined || at <= prev.at) return undefined;
  // A total that went down belongs to a restarted daemon (or, in the fallback, to pruned processes): no rate then.
  if (value < prev.value) return undefined;
  return ((value - prev.value) * 1000) / (at - prev.at);
}
