// /proc readings for the chaos invariants: descriptors, resident memory, and the processes a run started.
import { readFileSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';

/** Open descriptors of `pid` (entries of /proc/<pid>/fd), or -1 when the process is gone. */
export async function fdCount(pid) {
  try {
    return (await readdir(`/proc/${pid}/fd`)).length;
  } catch {
    return -1;
  }
}

/** What each descriptor of `pid` points at (`socket:[123]`, `pipe:[4]`, a path), for a leak report. */
export async function fdTargets(pid) {
  const out = [];
  let names = [];
  try {
    names = await readdir(`/proc/${pid}/fd`);
  } catch {
    return out;
  }
  for (const n of names) out.push(`${n}→${await readlink(`/proc/${pid}/fd/${n}`).catch(() => '?')}`);
  return out;
}

/** VmRSS of `pid` in bytes, or -1 when gone. */
export async function rssBytes(pid) {
  try {
    const status = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /^VmRSS:\s+(\d+) kB/m.exec(status);
    return m ? Number(m[1]) * 1024 : -1;
  } catch {
    return -1;
  }
}

/** The state letter of `pid` (R, S, Z, T, …), or undefined when gone. */
export async function stateOf(pid) {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
  } catch {
    return undefined;
  }
}

/**
 * Live (non-zombie) processes whose environment holds `marker` (`CHAOS_MARK=<run id>`): every child a chaos run
 * starts carries it, and so does anything those children start, so this finds leaks wherever they were re-parented.
 */
export async function markedProcesses(marker) {
  const found = [];
  const needle = Buffer.from(`${marker}\0`);
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const env = await readFile(`/proc/${name}/environ`).catch(() => undefined);
    if (!env || env.indexOf(needle) === -1) continue;
    const st = await stateOf(name);
    if (st !== undefined && st !== 'Z' && st !== 'X') found.push(Number(name));
  }
  return found;
}

/** Whether `pid` is a live (non-zombie) process, read synchronously from /proc. */
export function processAlive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/**
 * Live keepers (process title `claustrum-keeper`, which replaces their whole command line) whose environment holds
 * `marker`: a run gives its daemons a marker of its own, and the keeper a daemon starts inherits it, so this finds
 * this run's keepers (and only them) whatever the lock file says.
 */
export async function markedKeepers(marker) {
  const found = [];
  const needle = Buffer.from(`${marker}\0`);
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const cmdline = await readFile(`/proc/${name}/cmdline`, 'latin1').catch(() => '');
    if (!cmdline.startsWith('claustrum-keeper')) continue;
    const env = await readFile(`/proc/${name}/environ`).catch(() => undefined);
    if (!env || env.indexOf(needle) === -1) continue;
    const st = await stateOf(name);
    if (st !== undefined && st !== 'Z' && st !== 'X') found.push(Number(name));
  }
  return found;
}
