/**
 * Methods beyond the reference (listed after its methods in server.capabilities): process.list and process.stats.
 * A client reconnecting after sleep learns which processes exist; an operator sees what each one costs.
 */
import type { ManagedProcess } from '../../../process/child.js';
import { descendantsOf, processTable } from '../../../process/procfs.js';
import type { Supervisor } from '../../../process/supervisor.js';
import { failure } from '../../../protocol/errors.js';
import type { ListResult, ProcessEntry, StatsResult } from '../../../protocol/messages.js';
import { defineMethod, type MethodDef } from '../dispatch.js';
import { afterSpawn } from './process.js';

export function extensionMethods(sup: Supervisor): MethodDef[] {
  return [
    defineMethod('process.list', {}, (): ListResult => ({ processes: sup.list().map(describe) })),

    defineMethod('process.stats', { id: 'string' }, async (p, ctx): Promise<StatsResult> => {
      if (!p.id) throw failure('processIdRequired');
      const id = p.id;
      const proc = await afterSpawn(sup, ctx, id, () => sup.get(id));
      if (!proc) return { found: false };
      if (!proc.running) {
        return {
          found: true,
          running: false,
          pid: proc.pid,
          cpu: 0,
          memory: 0,
          elapsed: Math.max(0, proc.reapedAt - proc.startedAt),
          descendants: 0,
        };
      }
      // One /proc pass finds every descendant, whichever group or session it moved to.
      const pids = [proc.pid, ...descendantsOf(proc.pid, await processTable())];
      // Loaded at the first call: most daemons never serve process.stats, and memory makes every spawn slower.
      const { default: pidusage } = await import('pidusage');
      const usage = await Promise.allSettled(pids.map((pid) => pidusage(pid)));
      let cpu = 0;
      let memory = 0;
      let live = 0;
      for (const u of usage) {
        if (u.status !== 'fulfilled') continue; // exited between the scan and the read
        cpu += u.value.cpu;
        memory += u.value.memory;
        live++;
      }
      return {
        found: true,
        running: true,
        pid: proc.pid,
        cpu: Math.round(cpu * 100) / 100,
        memory,
        elapsed: Date.now() - proc.startedAt,
        descendants: Math.max(0, live - (usage[0]?.status === 'fulfilled' ? 1 : 0)),
      };
    }),
  ];
}

function describe(proc: ManagedProcess): ProcessEntry {
  const exit = proc.exitStatus;
  const entry: ProcessEntry = {
    id: proc.id,
    running: proc.running,
    pid: proc.pid,
    startTime: proc.startTime,
    command: proc.spec.command,
    args: proc.spec.args,
    cwd: proc.spec.cwd ?? process.cwd(),
    startedAt: proc.startedAt,
    ...(exit ? { exitCode: exit.exitCode, ...(exit.signal ? { signal: exit.signal } : {}) } : {}),
    firstSeq: proc.replay.firstSeq,
    lastSeq: proc.replay.lastSeq,
    stdinApplied: proc.stdin.applied,
    observers: proc.log.observerCount,
    ...(proc.terminalSize ? { pty: proc.terminalSize } : {}),
    instance: proc.spawnedBy,
    restarts: proc.restarts,
  };
  return entry;
}
