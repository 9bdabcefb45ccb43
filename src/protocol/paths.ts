/**
 * Where a daemon and its clients meet: the socket, and `daemon.token` beside it. The daemon keeps all of its files in
 * the socket's directory (`daemon.lock`, `remote-server.log`, `children/`), so a client needs only the socket path.
 */
import { homedir } from 'node:os';
import path from 'node:path';

/**
 * The socket when -socket is omitted: `$XDG_RUNTIME_DIR/claustrum/rpc.sock` (a per-user tmpfs, cleaned at logout),
 * else `~/.claustrum/rpc.sock`. The reference's `~/.claude/remote/rpc.sock` is Claude-specific; see PROTOCOL.md.
 */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime && path.isAbsolute(runtime)) return path.join(runtime, 'claustrum', 'rpc.sock');
  // $HOME first, as Go's os.UserHomeDir does; the password database otherwise.
  return path.join(env.HOME || homedir(), '.claustrum', 'rpc.sock');
}

/** The directory that holds a daemon's files: the socket's own. */
export function runDirectory(socketPath: string): string {
  return path.dirname(path.resolve(socketPath));
}

/** The token file a daemon writes beside its socket (mode 0600) for its clients. */
export const TOKEN_FILE = 'daemon.token';

/** A token is read as a line: exactly one trailing `\n` or `\r\n` is stripped, all other whitespace kept. */
export function normalizeToken(text: string): string {
  if (text.endsWith('\r\n')) return text.slice(0, -2);
  if (text.endsWith('\n')) return text.slice(0, -1);
  return text;
}
