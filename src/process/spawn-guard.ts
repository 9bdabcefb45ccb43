/**
 * Works around a descriptor leak in Node's child_process (seen on Node 20): when `uv_spawn` fails with EMFILE or
 * ENFILE, ChildProcess.prototype.spawn returns early without closing the stdio pipes it had already created, so each
 * spawn refused at the descriptor limit leaked the parent ends of its three socketpairs (issue 10, point 6; measured
 * in test/hardening/descriptors.test.ts: 3 descriptors per refused spawn with 5 or 6 descriptors of headroom).
 *
 * ChildProcess.prototype.spawn stores the pipes it made in `options.stdio[i].handle`, on the options object it is
 * given; the wrapper closes them when the spawn failed that way. Nothing else changes: the 'error' event still
 * reports EMFILE, and every other outcome passes through untouched.
 */
import { ChildProcess } from 'node:child_process';
import { constants } from 'node:os';

interface StdioEntry {
  readonly handle?: { close?: () => void };
}

let installed = false;

/** Installs the wrapper once per process (the daemon's). */
export function guardSpawnDescriptorLeak(): void {
  if (installed) return;
  installed = true;
  const proto = ChildProcess.prototype as unknown as { spawn: (this: ChildProcess, options: { stdio?: unknown }) => unknown };
  const spawn = proto.spawn;
  const refused = new Set([-constants.errno.EMFILE, -constants.errno.ENFILE]);
  proto.spawn = function guardedSpawn(this: ChildProcess, options: { stdio?: unknown }) {
    const result = spawn.call(this, options);
    if (typeof result === 'number' && refused.has(result) && Array.isArray(options.stdio)) {
      for (const entry of options.stdio as (StdioEntry | undefined)[]) entry?.handle?.close?.();
    }
    return result;
  };
}
