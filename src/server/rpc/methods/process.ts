/**
 * process.*: spawn, stdin, kill, killAndWait, reattach (PROTOCOL.md–4.8), and the extensions observe and
 * unobserve.
 *
 * A request naming an id whose spawn is still in progress waits for that spawn, in its connection's arrival order,
 * so a client may pipeline spawn → stdin → stdin → kill on one connection and have them apply in exactly that order
 * (the reference races them).
 */
import type { Logger } from '../../../log/logger.js';
import type { ManagedProcess } from '../../../process/child.js';
import { SpawnError } from '../../../process/command.js';
import { parseSignal } from '../../../process/signals.js';
import { decodeBase64Strict, type StdinOutcome } from '../../../process/stdin.js';
import type { Supervisor } from '../../../process/supervisor.js';
import { failure } from '../../../protocol/errors.js';
import type {
  KillAndWaitResult,
  KillResult,
  ObserveResult,
  ReattachResult,
  ResizeResult,
  SpawnResult,
  StdinResult,
  UnobserveResult,
} from '../../../protocol/messages.js';
import { type CallContext, defineMethod, type MethodDef } from '../dispatch.js';

/** killAndWait's grace when timeoutMs is absent or 0, and the most a caller may ask for. */
export const KILL_GRACE_DEFAULT_MS = 3000;
export const KILL_GRACE_MAX_MS = 30_000;
/** How long killAndWait waits for the reap after its escalating group SIGKILL. */
export const KILL_ESCALATION_WAIT_MS = 7000;

export interface ProcessMethodHooks {
  /** False while the daemon drains (`-drain-timeout`): process.spawn is refused with `serverDraining`. */
  admitSpawn?(): boolean;
  reattached?(): void;
  observed?(): void;
  stdinAccepted?(bytes: number): void;
}

/**
 * Subscribes this connection to a process's frames from `fromSeq` (a reattach's owner or an observer): everything up to
 * the buffer's lastSeq is replayed before the reply, frames after it follow the reply. `screen: true` without a
 * `fromSeq` asks for the screen as it is.
 */
function follow(ctx: CallContext, proc: ManagedProcess, role: 'owner' | 'observer', p: { fromSeq?: number; screen?: boolean }) {
  const { firstSeq, lastSeq } = proc.replay;
  const sub = ctx.subscribe(proc.log, {
    role,
    fromSeq: p.fromSeq ?? 0,
    holdAbove: lastSeq,
    screen: p.screen === true && p.fromSeq === undefined,
  });
  return { sub, firstSeq, lastSeq };
}

/**
 * Runs `fn` at once, or, while a spawn of `id` is in progress, once it has settled and every request that arrived
 * earlier on this connection has been applied. `fn` must not itself wait on the connection's order.
 */
export function afterSpawn<T>(sup: Supervisor, ctx: CallContext, id: string, fn: () => T): T | Promise<T> {
  const pending = sup.pendingSpawn(id);
  return pending ? ctx.inOrder(() => pending.then(fn)) : fn();
}

export function processMethods(sup: Supervisor, log: Logger, hooks: ProcessMethodHooks = {}): MethodDef[] {
  return [
    defineMethod(
      'process.spawn',
      {
        id: 'string',
        command: 'string',
        args: 'stringArray',
        cwd: 'string',
        env: 'stringMap',
        wantPid: 'bool',
        clearEnv: 'bool',
        pty: 'size',
        term: 'string',
      },
      async (p, ctx): Promise<SpawnResult> => {
        if (!p.id) throw failure('processIdRequired');
        if (!p.command) throw failure('commandRequired');
        if (p.pty) checkSize(p.pty.cols, p.pty.rows);
        if (hooks.admitSpawn?.() === false) throw failure('serverDraining');
        let proc: ManagedProcess;
        try {
          proc = await sup.spawn({
            id: p.id,
            command: p.command,
            args: p.args ?? [],
            cwd: p.cwd || undefined,
            env: p.env,
            clearEnv: p.clearEnv === true,
            pty: p.pty,
            term: p.term || undefined,
          });
        } catch (err) {
          if (err instanceof SpawnError) log.error('process.Manager', `Failed to start process ${p.id}: ${err.message}`);
          throw err;
        }
        // The spawning connection becomes the owner; its frames follow the reply.
        ctx.subscribe(proc.log, { role: 'owner', fromSeq: 0, holdAbove: 0 });
        return p.wantPid ? { success: true, pid: proc.pid, startTime: proc.startTime } : { success: true };
      },
    ),

    defineMethod('process.stdin', { id: 'string', data: 'bytes', offset: 'uint64', eof: 'bool' }, (p, ctx) => {
      const data = decodeStdinData(p.data);
      const id = p.id ?? '';
      // Stdin is a byte stream: requests on one connection apply in arrival order, even behind a pending spawn. The
      // order is kept by the order in which they are sent to the keeper, so the next one need not wait for this
      // one's answer (a boxed promise settles the ordering step at once): pipelined writes stay pipelined.
      const sent = ctx.inOrder(() => {
        const pending = sup.pendingSpawn(id);
        return pending ? pending.then(send) : send();
      });
      return sent instanceof Promise ? sent.then((box) => box.result) : sent.result;
      function send(): { readonly result: Promise<StdinResult> } {
        const proc = sup.get(id);
        if (!proc) return { result: Promise.reject(failure('processNotFound')) };
        return { result: proc.writeStdin(data, p.offset, p.eof === true).then(answer) };
      }
      function answer(outcome: StdinOutcome): StdinResult {
        switch (outcome.kind) {
          case 'gap':
            throw failure('stdinOffsetGap');
          case 'duplicate':
            return { success: true, applied: outcome.applied, duplicate: true };
          case 'notRunning':
            throw failure('processNotRunning');
          case 'full':
            throw failure('stdinQueueFull');
          case 'closed':
            throw failure('stdinClosed');
          case 'noEof':
            throw failure('stdinNoEof');
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
        if (proc?.signal(sig, 'client', group, group)) {
          log.info('process.Manager', `Process ${id}: sent ${sig}${group ? ' to its process group' : ''} at client request`);
        }
        return { success: true };
      });
    }),

    defineMethod(
      'process.killAndWait',
      { id: 'string', signal: 'string', timeoutMs: 'uint64', escalate: 'bool', group: 'bool' },
      async (p, ctx): Promise<KillAndWaitResult> => {
        if (!p.id) throw failure('processIdRequired');
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

    defineMethod(
      'process.reattach',
      { id: 'string', fromSeq: 'uint64', wantPid: 'bool', screen: 'bool' },
      async (p, ctx): Promise<ReattachResult> => {
        if (!p.id) throw failure('processIdRequired');
        const id = p.id;
        const found = await afterSpawn(sup, ctx, id, () => {
          const proc = sup.get(id);
          if (!proc) return undefined;
          // Stdin writes sent before this request count, answered or not.
          return { proc, ...follow(ctx, proc, 'owner', p), running: proc.running, settled: proc.stdinSettled() };
        });
        if (!found) return { found: false, running: false, firstSeq: 0, lastSeq: 0, stdinApplied: 0 };
        const { proc, sub, firstSeq, lastSeq, running, settled } = found;
        hooks.reattached?.();
        await Promise.all([sub.caughtUp(), settled]);
        const stdinApplied = proc.stdin.applied;
        const result: ReattachResult = { found: true, running, firstSeq, lastSeq, stdinApplied };
        const withPid = p.wantPid ? { ...result, pid: proc.pid, startTime: proc.startTime } : result;
        // Extension, present only once a client used `eof`, so reference clients never see it.
        return proc.stdin.ended ? { ...withPid, stdinClosed: true } : withPid;
      },
    ),

    defineMethod('process.observe', { id: 'string', fromSeq: 'uint64', screen: 'bool' }, async (p, ctx): Promise<ObserveResult> => {
      if (!p.id) throw failure('processIdRequired');
      const id = p.id;
      const found = await afterSpawn(sup, ctx, id, () => {
        const proc = sup.get(id);
        if (!proc) return undefined;
        return { proc, ...follow(ctx, proc, 'observer', p) };
      });
      if (!found) return { found: false, running: false, firstSeq: 0, lastSeq: 0 };
      const { proc, sub, firstSeq, lastSeq } = found;
      hooks.observed?.();
      await sub.caughtUp();
      return { found: true, running: proc.running, firstSeq, lastSeq };
    }),

    defineMethod('process.resize', { id: 'string', cols: 'int64', rows: 'int64' }, (p, ctx): Promise<ResizeResult> => {
      if (!p.id) throw failure('processIdRequired');
      checkSize(p.cols, p.rows);
      const id = p.id;
      const resized = afterSpawn(sup, ctx, id, async (): Promise<ResizeResult> => {
        const proc = sup.get(id);
        if (!proc) throw failure('processNotFound');
        if (proc.terminalSize === undefined) throw failure('notATerminal');
        if (!(await proc.resize(p.cols!, p.rows!))) throw failure('processNotRunning');
        return { success: true };
      });
      return Promise.resolve(resized);
    }),

    defineMethod('process.unobserve', { id: 'string' }, (p, ctx): UnobserveResult | Promise<UnobserveResult> => {
      if (!p.id) throw failure('processIdRequired');
      const id = p.id;
      return afterSpawn(sup, ctx, id, () => {
        const proc = sup.get(id);
        const sub = proc && ctx.observation(proc.log);
        sub?.close();
        return { found: sub !== undefined };
      });
    }),
  ];
}

/** Stdin data: absent means zero bytes; text must be strict base64; MessagePack may send raw bytes. */
function decodeStdinData(data: string | Uint8Array | undefined): Buffer {
  if (data === undefined) return Buffer.alloc(0);
  if (typeof data !== 'string') return Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const bytes = decodeBase64Strict(data);
  if (bytes === undefined) throw failure('invalidBase64');
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

/** Terminal sizes the kernel's winsize can hold and a screen model can afford: 1..1000 columns and rows. */
export const TERMINAL_MAX_COLS = 1000;
export const TERMINAL_MAX_ROWS = 1000;

function checkSize(cols: number | undefined, rows: number | undefined): void {
  const ok = (n: number | undefined, max: number) => n !== undefined && Number.isInteger(n) && n >= 1 && n <= max;
  if (!ok(cols, TERMINAL_MAX_COLS)) throw failure('terminalSize', { detail: `cols must be an integer from 1 to ${TERMINAL_MAX_COLS}, got ${cols}` });
  if (!ok(rows, TERMINAL_MAX_ROWS)) throw failure('terminalSize', { detail: `rows must be an integer from 1 to ${TERMINAL_MAX_ROWS}, got ${rows}` });
}
