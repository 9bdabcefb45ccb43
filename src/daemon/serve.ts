/**
 * The serving daemon's life-cycle: token, listen, `daemon.token`, banner, signals, and the graceful teardown.
 */
import type { Logger } from '../log/logger.js';
import { RpcServer } from '../server/server.js';
import type { FlowLimits } from '../server/connection.js';
import { BUILD } from '../version.js';
import { runDirectory, TOKEN_FILE } from './paths.js';
import { generateToken, identify, persistToken, readTokenFile, removeIfOwned, type FileIdentity } from './token.js';
import path from 'node:path';

export type TokenSource = { readonly kind: 'file'; readonly path: string } | { readonly kind: 'generate' };

export interface ServeConfig {
  readonly socketPath: string;
  readonly tokenSource: TokenSource;
  readonly flow: Partial<FlowLimits>;
  readonly log: Logger;
  /** Where the ready banner goes (stdout). */
  readonly print: (line: string) => void;
}

/** Go's names for the signals it logs (`received terminated`). */
const SIGNAL_NAMES: Readonly<Record<string, string>> = { SIGTERM: 'terminated', SIGINT: 'interrupt', SIGHUP: 'hangup' };

/** Serves until a graceful shutdown; resolves with the exit code. */
export async function runDaemon(cfg: ServeConfig): Promise<number> {
  const { log } = cfg;
  // Never read, never inherited by children (the reference unsets it too).
  delete process.env.CLAUDE_RPC_TOKEN;

  let token: string;
  if (cfg.tokenSource.kind === 'file') {
    const read = await readTokenFile(cfg.tokenSource.path);
    if (read.unlinkError) log.warn('daemon', read.unlinkError);
    token = read.token;
  } else {
    token = generateToken();
  }

  let finish!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (finish = resolve));
  let teardown: Promise<void> | undefined;
  let socketId: FileIdentity | undefined;
  let tokenId: FileIdentity | undefined;

  const server = new RpcServer({
    socketPath: cfg.socketPath,
    token,
    version: BUILD.version,
    log,
    flow: cfg.flow,
    onShutdownRequest: () => void shutdown(),
  });

  const shutdown = (): Promise<void> => {
    teardown ??= (async () => {
      log.info('Server', 'shutdown requested');
      const connections = await server.close();
      const killed = await server.supervisor.killAll('shutdown');
      await removeIfOwned(socketId);
      await removeIfOwned(tokenId);
      log.info('Server', `cleanup: closed ${connections} connection(s), killed ${killed} child process group(s)`);
      finish(0);
    })();
    return teardown;
  };

  for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
    // A second signal during the teardown does not abort it: the handler stays, the teardown is idempotent.
    process.on(sig, () => {
      log.info('daemon', `received ${SIGNAL_NAMES[sig]}; shutting down (children will be killed)`);
      void shutdown();
    });
  }

  await server.listen();
  socketId = await identify(cfg.socketPath);
  const runDir = runDirectory(cfg.socketPath);
  try {
    tokenId = await persistToken(runDir, token);
  } catch (err) {
    log.error('daemon', `failed to persist token: ${(err as Error).message}`);
  }

  cfg.print(`Claustrum remote server listening on ${cfg.socketPath} (pid ${process.pid}, instance ${server.instanceId})`);
  const tokenPath = path.join(runDir, TOKEN_FILE);
  if (tokenId) {
    cfg.print(`token: ${tokenPath} (mode 0600${cfg.tokenSource.kind === 'generate' ? ', generated for this run' : ''})`);
    cfg.print('ping it:');
    cfg.print(
      `  printf '{"jsonrpc":"2.0","id":1,"method":"server.ping","auth":"%s"}\\n' "$(cat ${shellQuote(tokenPath)})" | socat -t2 - UNIX-CONNECT:${shellQuote(cfg.socketPath)}`,
    );
  }
  return exited;
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}
