/** Where the daemon keeps its files: all of them beside the socket, in the socket's directory. */
import path from 'node:path';
import { homeDirectory } from '../util/paths.js';

/**
 * The socket when -socket is omitted: `$XDG_RUNTIME_DIR/claustrum/rpc.sock` (a per-user tmpfs, cleaned at logout),
 * else `~/.claustrum/rpc.sock`. The reference's `~/.claude/remote/rpc.sock` is Claude-specific; see PROTOCOL.md.
 */
export function defaultSocketPath(env: NodeJS.ProcessEnv = process.env): string {
  const runtime = env.XDG_RUNTIME_DIR;
  if (runtime && path.isAbsolute(runtime)) return path.join(runtime, 'claustrum', 'rpc.sock');
  return path.join(homeDirectory(), '.claustrum', 'rpc.sock');
}

export function runDirectory(socketPath: string): string {
  return path.dirname(path.resolve(socketPath));
}

export const TOKEN_FILE = 'daemon.token';
