/**
 * How the operator commands (-status, -ps, -kill, -purge) reach a daemon that is already running: never starting
 * one, never reconnecting, with a bounded wait, and with errors that say what to do.
 *
 * The token comes from `-token-fd <n>` when given (a daemon started with `-token-fd` writes no daemon.token), else
 * from daemon.token beside the socket.
 */
import path from 'node:path';
import { AuthError, type Client, ConnectError, connect, readDaemonToken } from '../client/index.js';
import { TOKEN_FILE } from '../protocol/paths.js';
import { readTokenFd } from '../daemon/token.js';

/** The longest an operator command waits for the daemon to answer one request (a stopped daemon hangs a connect). */
export const COMMAND_TIMEOUT_MS = 5000;

/** A failure of a command, with the exit code it ends with; the message is printed after `claustrum: `. */
export class CliError extends Error {
  readonly exitCode: number;
  constructor(message: string, exitCode = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** The daemon did not answer in time: alive or not, it is not serving. */
export class NoAnswerError extends CliError {}

/** The token to authenticate with, or undefined when there is none to be had. */
export async function commandToken(socketPath: string, tokenFd: number): Promise<string | undefined> {
  if (tokenFd >= 0) {
    try {
      return await readTokenFd(tokenFd);
    } catch (err) {
      throw new CliError((err as Error).message, 2);
    }
  }
  return readDaemonToken(socketPath);
}

export function noTokenMessage(socketPath: string): string {
  return `no token for ${socketPath}: ${path.join(path.dirname(socketPath), TOKEN_FILE)} does not exist or cannot be read (a daemon started with -token-fd writes none): pass the token with -token-fd <n>`;
}

/** Connects to the daemon on `socketPath` (which must be running) and authenticates. */
export async function connectRunning(socketPath: string, tokenFd: number): Promise<Client> {
  const token = await commandToken(socketPath, tokenFd);
  if (token === undefined) throw new CliError(noTokenMessage(socketPath));
  return connectWithToken(socketPath, token, tokenFd >= 0);
}

/** As connectRunning, with the token already in hand (a descriptor can be read only once). */
export async function connectWithToken(socketPath: string, token: string, fromFd: boolean): Promise<Client> {
  const tokenFd = fromFd ? 0 : -1;
  try {
    return await withTimeout(connect({ socket: socketPath, token, reconnect: false }), COMMAND_TIMEOUT_MS, `the daemon on ${socketPath}`);
  } catch (err) {
    if (err instanceof CliError) throw err;
    if (err instanceof ConnectError) {
      throw new CliError(`no daemon answers on ${socketPath} (${err.message}); claustrum -status -socket ${socketPath} says more`);
    }
    if (err instanceof AuthError) {
      throw new CliError(`the daemon on ${socketPath} refused the token${tokenFd >= 0 ? ' read from -token-fd' : ` in ${TOKEN_FILE}`}`);
    }
    throw new CliError((err as Error).message);
  }
}

/** Rejects with a CliError when `p` has not settled within `ms`. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new NoAnswerError(`${what} did not answer within ${ms / 1000}s`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
