/**
 * No descriptor of the daemon above 2 reaches a child.
 *
 * Node and libuv open everything close-on-exec, so a child normally inherits only its stdio. Two kinds of descriptor
 * are not close-on-exec and would leak into every child the daemon starts (piped or terminal), because libuv's spawn
 * does not close inherited descriptors and Node has no fcntl:
 *  - PTY descriptors from openpty(3) (native.ts): every live terminal's master, and a new terminal's slave until the
 *    daemon closes its copy. A child holding another terminal's master can read that terminal's output and type into
 *    it, and keeps its pseudo-terminal alive after the daemon closed it (measured: node-pty's own fork passed master
 *    fd 18 of one terminal to the next terminal's shell).
 *  - Descriptors the daemon itself inherited without close-on-exec (from a shell redirection `3>file`, a service
 *    manager, an agent's job runner: fd 251 on this machine), found once in /proc/self/fdinfo.
 *
 * Without native code the child cannot close them before exec (dash, /bin/sh here, cannot even name a descriptor
 * above 9), so the spawn covers them: its stdio array puts /dev/null at each of those numbers, and libuv's dup2 in
 * the child replaces the leaked descriptor before exec. The child then has /dev/null at those numbers and nothing of
 * the daemon's. Every spawn must pass its stdio through `guardedStdio` (pty.ts does; the supervisor's piped spawn is
 * an integration point).
 */
import { type FileHandle, open, readdir, readFile } from 'node:fs/promises';
import type { StdioNull, StdioPipe } from 'node:child_process';

/** O_CLOEXEC as /proc/<pid>/fdinfo prints it (octal `flags:` field, Linux). */
const O_CLOEXEC = 0o2000000;

/** A stdio slot as child_process.spawn takes it. */
export type StdioSlot = StdioPipe | StdioNull | number;

/**
 * Tracked descriptor numbers, counted: a number is closed (by a libuv handle, or fs.close on the threadpool) before
 * its untrack() runs, so a new PTY may already have it and be tracked again; a count keeps that one guarded.
 */
const tracked = new Map<number, number>();
let inheritedAtStart: readonly number[] = [];
/** Held for the life of the process: a FileHandle that is garbage-collected closes its descriptor. */
let devNullHandle: FileHandle | undefined;
let devNull: number | undefined;
let preparing: Promise<void> | undefined;

/**
 * Opens the /dev/null that covers leaked slots and finds the descriptors the daemon inherited. Once per process;
 * every terminal spawn awaits it (the first pays one /proc scan, a few milliseconds).
 */
export function prepareDescriptorGuard(): Promise<void> {
  preparing ??= (async () => {
    devNullHandle = await open('/dev/null', 'r+'); // close-on-exec, like everything libuv opens
    devNull = devNullHandle.fd;
    inheritedAtStart = await nonCloexecDescriptors();
  })();
  return preparing;
}

/** A descriptor the daemon holds that is not close-on-exec (a PTY master or slave), until untrack(). */
export function track(fd: number): void {
  tracked.set(fd, (tracked.get(fd) ?? 0) + 1);
}

/** Once per track(), after the descriptor is closed. */
export function untrack(fd: number): void {
  const n = (tracked.get(fd) ?? 0) - 1;
  if (n > 0) tracked.set(fd, n);
  else tracked.delete(fd);
}

/** What the guard covers now: tracked PTY descriptors and those inherited at start, ascending. */
export function guardedDescriptors(): number[] {
  return [...new Set([...tracked.keys(), ...inheritedAtStart])].filter((fd) => fd > 2).sort((a, b) => a - b);
}

/**
 * `base` (the child's stdio 0..n) extended so that every guarded descriptor number gets /dev/null in the child.
 * Synchronous, so the caller can spawn in the same turn in which it read the set (no PTY can be opened in between).
 * Requires prepareDescriptorGuard() to have resolved.
 */
export function guardedStdio(base: readonly StdioSlot[]): StdioSlot[] {
  if (devNull === undefined) throw new Error('descriptor guard: prepareDescriptorGuard() has not completed');
  const stdio: StdioSlot[] = [...base];
  for (const fd of guardedDescriptors()) {
    if (fd < stdio.length) continue; // one of the child's own slots: it is being replaced anyway
    while (stdio.length < fd) stdio.push('ignore'); // 'ignore' above 2 leaves that number as it is: nothing there
    stdio.push(devNull);
  }
  return stdio;
}

/** Every descriptor above 2 of this process without close-on-exec, from one pass over /proc/self/fdinfo. */
export async function nonCloexecDescriptors(): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir('/proc/self/fdinfo');
  } catch {
    return [];
  }
  const found = await Promise.all(
    names.map(async (name) => {
      const fd = Number(name);
      if (!(fd > 2)) return undefined;
      try {
        const flags = /^flags:\s+([0-7]+)$/m.exec(await readFile(`/proc/self/fdinfo/${fd}`, 'utf8'));
        // The readdir's own descriptor is gone by now; any other descriptor that vanished in between is no leak.
        return flags && (Number.parseInt(flags[1]!, 8) & O_CLOEXEC) === 0 ? fd : undefined;
      } catch {
        return undefined;
      }
    }),
  );
  return found.filter((fd): fd is number => fd !== undefined).sort((a, b) => a - b);
}
