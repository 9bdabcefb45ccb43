/**
 * Descriptors the daemon inherited (issue 10, point 6). libuv's spawn gives a child every descriptor of the daemon
 * that is not close-on-exec, and a descriptor the daemon's own parent left open (a secret file on fd 42, a pipe of a
 * supervisor) is not: before this, every child could read it. Node has no fcntl to set FD_CLOEXEC, so at start-up
 * the daemon closes every descriptor above 2 that lacks O_CLOEXEC (read from /proc/self/fdinfo), except the ones it
 * was told to use (the readiness pipe of its launcher). What Node and libuv open themselves is always close-on-exec,
 * so only inherited descriptors are touched. The -token-fd descriptor is consumed (and closed) before this runs.
 *
 * An integration point for later features: a descriptor the daemon must keep (systemd's LISTEN_FDS sockets, say) has
 * to be added to `keep` by whoever adopts it.
 */
import { close } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';

/** O_CLOEXEC as /proc/<pid>/fdinfo shows it in its octal `flags:` field (Linux, every architecture Node runs on). */
const O_CLOEXEC = 0o2000000;

/** Closes inherited, non-close-on-exec descriptors above 2 not in `keep`; resolves with the ones closed. */
export async function closeInheritedDescriptors(keep: ReadonlySet<number>, log: Logger): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir('/proc/self/fd');
  } catch {
    return []; // no procfs: nothing can be learnt, nothing is touched
  }
  const closed: string[] = [];
  const fds: number[] = [];
  for (const fd of names.map(Number).filter((n) => n > 2 && !keep.has(n))) {
    let info: string;
    try {
      info = await readFile(`/proc/self/fdinfo/${fd}`, 'utf8');
    } catch {
      continue; // gone meanwhile (the directory handle of the readdir above)
    }
    const m = /^flags:\s+([0-7]+)$/m.exec(info);
    if (!m || (Number.parseInt(m[1]!, 8) & O_CLOEXEC) !== 0) continue;
    const target = await readlink(`/proc/self/fd/${fd}`).catch(() => '?');
    await new Promise<void>((resolve) => close(fd, () => resolve()));
    fds.push(fd);
    closed.push(`${fd} (${target})`);
  }
  if (closed.length > 0) log.info('daemon', `closed ${closed.length} inherited descriptor(s) so no child inherits them: ${closed.join(', ')}`);
  return fds;
}
