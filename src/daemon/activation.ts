/**
 * systemd socket activation (sd_listen_fds(3)): a `.socket` unit binds the socket and starts the daemon with the
 * listening descriptor as fd 3, `LISTEN_FDS=1` and `LISTEN_PID=<the daemon's pid>`. The daemon then serves that
 * descriptor instead of binding, and leaves the socket file alone at shutdown (it is systemd's; the next connection
 * starts the daemon again).
 *
 * Node serves an inherited Unix socket with `server.listen({fd})`. It cannot say which path the descriptor is bound
 * to (`address()` is null for it), so the path is read from /proc/net/unix by the socket's inode, and a descriptor
 * bound elsewhere than `-socket` is refused: clients would look for daemon.token beside the wrong path.
 */
import { readFile, readlink, realpath } from 'node:fs/promises';
import path from 'node:path';

/** The first passed descriptor (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;
/** The variables systemd sets; never passed on to children. */
export const ACTIVATION_ENV = ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'] as const;

export class ActivationError extends Error {}

export interface ActivatedSocket {
  readonly fd: number;
  /** The path the descriptor is bound to, when /proc/net/unix names it. */
  readonly path: string | undefined;
}

/**
 * The socket systemd passed to this process, or undefined when none was (no `LISTEN_FDS`, or one meant for another
 * process: `LISTEN_PID` differs). The variables are removed from the environment either way, so children never
 * see them. Throws when the passed sockets cannot be served as `-socket`.
 */
export async function takeActivatedSocket(socketPath: string, env: NodeJS.ProcessEnv = process.env): Promise<ActivatedSocket | undefined> {
  const fds = env.LISTEN_FDS;
  const pid = env.LISTEN_PID;
  for (const k of ACTIVATION_ENV) delete env[k];
  if (fds === undefined || pid === undefined || Number(pid) !== process.pid) return undefined;
  if (fds !== '1') {
    throw new ActivationError(
      `systemd passed ${fds} sockets (LISTEN_FDS=${fds}); claustrum serves exactly one: give the .socket unit a single ListenStream=`,
    );
  }
  const fd = LISTEN_FDS_START;
  const link = await readlink(`/proc/self/fd/${fd}`).catch(() => undefined);
  const inode = link !== undefined ? /^socket:\[(\d+)\]$/.exec(link)?.[1] : undefined;
  if (inode === undefined) throw new ActivationError(`LISTEN_FDS=1, but fd ${fd} is not a socket (${link ?? 'not open'})`);
  const bound = await unixSocketPath(inode);
  if (bound !== undefined && (await canonical(bound)) !== (await canonical(socketPath))) {
    throw new ActivationError(
      `the socket systemd passed (fd ${fd}) is bound to ${bound}, not to -socket ${socketPath}: make ListenStream= and -socket agree`,
    );
  }
  return { fd, path: bound };
}

/** A socket path with its directory resolved through symlinks (systemd names the path it bound, in its spelling). */
async function canonical(p: string): Promise<string> {
  const dir = path.dirname(path.resolve(p));
  return path.join(await realpath(dir).catch(() => dir), path.basename(p));
}

/** The path of a Unix socket by inode, from /proc/net/unix (`Num RefCount Protocol Flags Type St Inode Path`). */
async function unixSocketPath(inode: string): Promise<string | undefined> {
  const table = await readFile('/proc/net/unix', 'utf8').catch(() => '');
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[6] === inode && f[7] !== undefined) return f.slice(7).join(' ');
  }
  return undefined;
}
