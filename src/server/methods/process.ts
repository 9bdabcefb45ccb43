/**
 * process.*: spawn, stdin, kill, killAndWait, reattach (claustrum-wire.md §4.4–4.8).
 *
 * A request naming an id whose spawn is still in progress waits for that spawn, in its connection's arrival order,
 * so a client may pipeline spawn → stdin → stdin → kill on one connection and have them apply in exactly that order
 * (the reference races them).
 */
import type { Logger } from '../../log/logger.js';
import type { SpawnFailure } from '../../process/command.js';
import { SpawnError } from '../../process/command.js';
import type { ManagedProcess } from '../../process/managed.js';
import { parseSignal } from '../../process/signals.js';
import { decodeBase64Strict } from '../../process/stdin.js';
import type { Supervisor } from '../../process/supervisor.js';
import { defineMethod, type CallContext, type MethodDef } from '../dispatch.js';
import { type WireError, wireError } from '../errors.js';
import type { KillAndWaitResult, KillResult, ReattachResult, SpawnResult, StdinResult } from '../wire.js';

/** killAndWait's grace when timeoutMs is absent or 0, and the most a caller may ask for. */
export const KILL_GRACE_DEFAULT_MS = 3000;
export const KILL_GRACE_MAX_MS = 30_000;
/** How long killAndWait waits for the reap after its escalating group SIGKILL. */
export const KILL_ESCALATION_WAIT_MS = 7000;

export interface ProcessMethodHooks {
  reattached?(): void;
  stdinAccepted?(bytes: number): void;
  /** False while the daemon drains (`-drain-timeout`): process.spawn is refused with `serverDraining`. */
  admitSpawn?(): boolean;
}

/**
 * Runs `fn` at once, or, while a spawn of `id` is in progress, once it has settled and every request that arrived
 * earlier on this connection has been applied. `fn` must not itself wait on the connection's order.
 */
export function afterSpawn<T>(sup: Supervisor, ctx: CallContext, id: string, fn: () => T): T | Promise<T> {
  const pending = sup.pendingSpawn(id);
  return pending ? ctx.peer.inOrder(() => pending.then(fn)) : fn();
}

export function processMethods(sup: Supervisor, log: Logger, hooks: ProcessMethodHooks = {}): MethodDef[] {
  return [
    defineMethod(
      'process.spawn',
      { id: 'string', command: 'string', args: 'stringArray', cwd: 'string', env: 'stringMap', wantPid: 'bool', clearEnv: 'bool' },
      async (p, ctx): Promise<SpawnResult> => {
        if (!p.id) throw wireError('processIdRequired');
        if (!p.command) throw wireError('commandRequired');
        if (hooks.admitSpawn?.() === false) throw wireError('serverDraining');
        let proc: ManagedProcess;
        try {
          const req = { id: p.id, command: p.command, args: p.args ?? [], cwd: p.cwd || undefined, env: p.env, clearEnv: p.clearEnv === true };
          proc = await sup.spawn(req);
        } catch (err) {
          if (!(err instanceof SpawnError)) throw err;
          const wire = spawnError(err.failure);
          log.error('process.Manager', `Failed to start process ${p.id}: ${wire.message}`);
          throw wire;
        }
        // The spawning connection becomes the receiver, but frames wait until the reply has gone out.
        proc.attach(ctx.peer, 0, 0);
        ctx.afterReply(() => proc.releaseLimit(ctx.peer));
        return p.wantPid ? { success: true, pid: proc.pid, startTime: proc.startTime } : { success: true };
      },
    ),

    defineMethod('process.stdin', { id: 'string', data: 'bytes', offset: 'uint64', eof: 'bool' }, (p, ctx) => {
      const data = decodeStdinData(p.data);
      const id = p.id ?? '';
      // Stdin is a byte stream: requests on one connection apply in arrival order, even behind a pending spawn.
      return ctx.peer.inOrder(() => {
        const pending = sup.pendingSpawn(id);
        return pending ? pending.then(apply) : apply();
      });
      function apply(): StdinResult {
        const proc = sup.get(id);
        if (!proc) throw wireError('processNotFound');
        const outcome = proc.writeStdin(data, p.offset, p.eof === true);
        switch (outcome.kind) {
          case 'gap':
            throw wireError('stdinOffsetGap');
          case 'duplicate':
            return { success: true, applied: outcome.applied, duplicate: true };
          case 'notRunning':
            throw wireError('processNotRunning');
          case 'full':
            throw wireError('stdinQueueFull');
          case 'closed':
            throw wireError('stdinClosed');
          case 'accepted':
            hooks.stdinAccepted?.(outcome.bytes);
            return { success: true, applied: outcome.applied };
        }
      }
    }),

    defineMethod('process.kill', { id: 'string', signal: 'string', group: 'bool' }, (p, ctx) => {
      const sig = parseSignal(p.signal);
      const id = p.id ?? '';
      const group = p.group === true;
      return afterSpawn(sup, ctx, id, (): KillResult => {
        const proc = sup.get(id);
        if (proc?.signal(sig, 'client', group, group))
          log.info('process.Manager', `Process ${id}: sent ${sig}${group ? ' to its process group' : ''} at client request`);
        return { success: true };
      });
    }),

    defineMethod(
      'process.killAndWait',
      { id: 'string', signal: 'string', timeoutMs: 'uint64', escalate: 'bool', group: 'bool' },
      async (p, ctx): Promise<KillAndWaitResult> => {
        if (!p.id) throw wireError('processIdRequired');
        const id = p.id;
        const sig = parseSignal(p.signal);
        // The signal goes out in arrival order; the waiting does not hold the connection's order.
        const begun = await afterSpawn(sup, ctx, id, () => {
          const proc = sup.get(id);
          if (!proc) return { proc, state: 'unknown' } as const;
          if (proc.exited) return { proc, state: 'exited' } as const;
          if (!proc.running) return { proc, state: 'draining' } as const;
          proc.signal(sig, 'client', false, p.group === true);
          log.info('process.Manager', `Process ${id}: sent ${sig}${p.group === true ? ' to its process group' : ''} at client request; waiting`);
          return { proc, state: 'signalled' } as const;
        });
        const { proc, state } = begun;
        if (state === 'unknown') return { found: false, died: false };
        if (state === 'exited') return { found: true, died: true, alreadyExited: true };
        if (state === 'draining') {
          // Reaped, exit frame still draining: no signal, just wait for the frame.
          await proc.whenExited();
          return { found: true, died: true };
        }
        const grace = p.timeoutMs ? Math.min(p.timeoutMs, KILL_GRACE_MAX_MS) : KILL_GRACE_DEFAULT_MS;
        if (await exitsWithin(proc, grace)) return { found: true, died: true };
        if (p.escalate === false) return { found: true, died: false };
        log.warn('process.Manager', `Process ${id}: still alive after ${grace}ms; escalating to SIGKILL of its process group`);
        proc.signal('SIGKILL', 'client', true);
        const died = await exitsWithin(proc, KILL_ESCALATION_WAIT_MS);
        return { found: true, died, escalated: true };
      },
    ),

    defineMethod('process.reattach', { id: 'string', fromSeq: 'uint64', wantPid: 'bool' }, async (p, ctx): Promise<ReattachResult> => {
      if (!p.id) throw wireError('processIdRequired');
      const id = p.id;
      const found = await afterSpawn(sup, ctx, id, () => {
        const proc = sup.get(id);
        if (!proc) return undefined;
        const { firstSeq, lastSeq } = proc.replay;
        // Replay everything up to lastSeq before the reply; frames after it follow the reply.
        proc.attach(ctx.peer, p.fromSeq ?? 0, lastSeq);
        return { proc, firstSeq, lastSeq, stdinApplied: proc.stdinApplied };
      });
      if (!found) return { found: false, running: false, firstSeq: 0, lastSeq: 0, stdinApplied: 0 };
      const { proc, firstSeq, lastSeq, stdinApplied } = found;
      hooks.reattached?.();
      await proc.caughtUp(ctx.peer);
      ctx.afterReply(() => proc.releaseLimit(ctx.peer));
      const result: ReattachResult = { found: true, running: proc.running, firstSeq, lastSeq, stdinApplied };
      const withPid = p.wantPid ? { ...result, pid: proc.pid, startTime: proc.startTime } : result;
      // Extension, present only once a client used `eof`, so reference clients never see it.
      return proc.stdinClosed ? { ...withPid, stdinClosed: true } : withPid;
    }),
  ];
}

/** Stdin data: absent means zero bytes; text must be strict base64; MessagePack may send raw bytes. */
function decodeStdinData(data: string | Uint8Array | undefined): Buffer {
  if (data === undefined) return Buffer.alloc(0);
  if (typeof data !== 'string') return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const bytes = decodeBase64Strict(data);
  if (bytes === undefined) throw wireError('invalidBase64');
  return bytes;
}

function exitsWithin(proc: ManagedProcess, ms: number): Promise<boolean> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    void proc.whenExited().then(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

function spawnError(f: SpawnFailure): WireError {
  switch (f.kind) {
    case 'chdirStat':
      return wireError('chdirStat', { cwd: f.cwd, reason: f.reason });
    case 'chdirNotDirectory':
      return wireError('chdirNotDirectory', { cwd: f.cwd });
    case 'chdir':
      return wireError('chdir', { cwd: f.cwd, reason: f.reason });
    case 'executableNotFound':
      return wireError('executableNotFound', { name: f.name });
    case 'forkExec':
      return wireError('forkExec', { path: f.path, reason: f.reason });
  }
}
