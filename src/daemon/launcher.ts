/**
 * `-serve` without `-foreground`: start the daemon detached in its own session and report when it is ready
 * (PROTOCOL.md).
 *
 * The launcher prepares the socket's directory and the log, then re-executes this program marked with
 * CLAUSTRUM_DAEMON_CHILD=1, its stdout and stderr on the log file. A token the launcher read (`-token-file`,
 * `-token-fd`) goes to the daemon over an inherited pipe, never through argv, the environment or a file. The daemon
 * reports readiness (pid, instance) or its start-up error over a second pipe; the launcher then dials the socket
 * once, prints the banner and exits 0, or prints the reason and the tail of the daemon's log and exits 1.
 */
import { spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { runDirectory } from '../protocol/paths.js';
import { accepts, prepareSocketDirectory } from '../server/index.js';
import { openDaemonLog, tailLog } from './logfile.js';

/** How long the launcher waits for the daemon to accept on its socket (reference: 12 s). */
export const LAUNCH_TIMEOUT_MS = 12_000;

/** Environment markers of the re-executed daemon. They carry fd numbers, never the token. */
export const DAEMON_CHILD_ENV = 'CLAUSTRUM_DAEMON_CHILD';
export const READY_FD_ENV = 'CLAUSTRUM_READY_FD';
export const TOKEN_PIPE_ENV = 'CLAUSTRUM_TOKEN_PIPE';
const READY_FD = 3;
const TOKEN_FD = 4;

export interface ReadyMessage {
  readonly ok: boolean;
  readonly pid?: number;
  readonly instanceId?: string;
  readonly error?: string;
}

export interface LaunchOptions {
  /** Absolute socket path. */
  readonly socketPath: string;
  /** A token the launcher already read, or undefined for the daemon to generate one. */
  readonly token: string | undefined;
  /** The serve flags to hand on (everything but the token sources). */
  readonly forward: readonly string[];
  readonly print: (line: string) => void;
  readonly printError: (line: string) => void;
}

export async function launchDaemon(opts: LaunchOptions): Promise<number> {
  const runDir = runDirectory(opts.socketPath);
  try {
    await prepareSocketDirectory(opts.socketPath);
  } catch (err) {
    opts.printError(`claustrum: ${(err as Error).message}`);
    return 1;
  }
  const log = await openDaemonLog(runDir);
  if ('declined' in log) opts.printError(`claustrum: warning: running without a log file: ${log.declined}`);
  const out = 'handle' in log ? log.handle.fd : 'ignore';

  const env: NodeJS.ProcessEnv = { ...process.env, [DAEMON_CHILD_ENV]: '1', [READY_FD_ENV]: String(READY_FD) };
  delete env.CLAUDE_RPC_TOKEN;
  if (opts.token !== undefined) env[TOKEN_PIPE_ENV] = String(TOKEN_FD);
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1]!, '-serve', '-socket', opts.socketPath, ...opts.forward], {
    detached: true,
    env,
    cwd: '/',
    stdio: ['ignore', out, out, 'pipe', opts.token !== undefined ? 'pipe' : 'ignore'],
  });
  if ('handle' in log) await log.handle.close(); // the daemon has its own copy now
  if (opts.token !== undefined) (child.stdio[TOKEN_FD] as Writable).end(opts.token);

  const ready = await waitReady(child.stdio[READY_FD] as Readable, child);
  const fail = async (reason: string) => {
    opts.printError(`claustrum: ${reason}`);
    const tail = await tailLog(runDir);
    if (tail) opts.printError(`--- last lines of ${runDir}/remote-server.log ---\n${tail}`);
    return 1;
  };
  if (!ready.ok) return fail(ready.error ?? `timeout waiting for daemon to accept on ${opts.socketPath}`);
  if (!(await accepts(opts.socketPath, 2000))) {
    // Ready, then gone: say so rather than blame a timeout (a signal during start-up does this).
    if (child.exitCode !== null || child.signalCode !== null) {
      return fail(`the daemon stopped right after it started (${child.signalCode ?? `exit code ${child.exitCode}`}); see its log`);
    }
    return fail(`timeout waiting for daemon to accept on ${opts.socketPath}`);
  }
  child.unref();
  opts.print(`Claustrum remote server listening on ${opts.socketPath} (pid ${ready.pid}, instance ${ready.instanceId})`);
  return 0;
}

function waitReady(pipe: Readable, child: ReturnType<typeof spawn>): Promise<ReadyMessage> {
  return new Promise((resolve) => {
    let text = '';
    const done = (msg: ReadyMessage) => {
      clearTimeout(timer);
      pipe.destroy();
      resolve(msg);
    };
    const timer = setTimeout(() => done({ ok: false }), LAUNCH_TIMEOUT_MS);
    pipe.on('data', (d: Buffer) => {
      text += d.toString('utf8');
      const nl = text.indexOf('\n');
      if (nl === -1) return;
      try {
        done(JSON.parse(text.slice(0, nl)) as ReadyMessage);
      } catch {
        done({ ok: false, error: 'the daemon sent a malformed readiness report' });
      }
    });
    pipe.on('error', () => {});
    child.once('exit', (code, signal) => {
      // Let a report already in the pipe win over the exit.
      setTimeout(() => done({ ok: false, error: `the daemon exited during start-up (${signal ?? `exit code ${code}`})` }), 50);
    });
  });
}
