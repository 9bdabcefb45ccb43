/**
 * `claustrum -run [-socket p] [--] <command> [args…]`: run one command through the daemon as if it ran here.
 *
 * "As if here": the command is looked up with this shell's PATH (a name without a slash searched in PATH, empty and
 * relative entries relative to the working directory, as a POSIX shell does; a name with a slash used as given),
 * and runs in this working directory with exactly this environment (the daemon's own is not merged in, extension
 * `clearEnv`), minus RUN_STRIPPED_ENV. `-daemon-env` gives it the daemon's environment and PATH lookup instead.
 * Its stdout and stderr go to ours in the order the daemon read them, our stdin goes to it (EOF included), and the
 * exit code is the child's (128 + the signal's number when a signal ended it).
 *
 * Signals reach the remote process group, as a terminal delivers them to its foreground group (a shell waiting for
 * its child ignores a SIGINT sent to it alone: `sh -c 'sleep 303'` used to sit out every Ctrl-C): SIGINT, SIGTERM
 * and SIGHUP are sent to the group with `process.kill` `group: true`. A second SIGINT within ESCALATION_WINDOW_MS of
 * the previous one sends SIGTERM instead, a third SIGKILL, each announced on stderr.
 *
 * A dropped connection is ridden through by the client library's reattach, for up to `-reconnect-budget`. When the
 * daemon itself is gone (the lock owner, checked by pid and OS start time, exited), that is reported at once. Either
 * way, once -run gives up it says what became of the remote process, and kills it if it still runs (by pid and OS
 * start time, its process group): as with a terminal's hangup, a command nobody follows does not run on unseen.
 *
 * Exit codes of our own: 2 usage, 125 the daemon could not be reached, was lost or is draining, 126 the command
 * cannot be executed, 127 it was not found.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import {
  type Client,
  ClosedError,
  type Codec,
  type ConnectOptions,
  connect,
  InterruptedError,
  ndjson,
  ProcessLostError,
  type ProcessHandle,
  RpcError,
  socketAccepts,
} from '../client/index.js';
import { readLock, verifyHolder, type OwnerRecord } from '../daemon/lock.js';
import { runDirectory } from '../protocol/paths.js';
import { ON_DEMAND_IDLE_EXIT_MS } from '../daemon/idle.js';
import { ensureSocketDirectory } from '../daemon/socketpath.js';
import { readTokenFd } from '../daemon/token.js';
import { isSameProcess, readStat, signalPid, startTimeOf } from '../process/procfs.js';
import { formatDuration } from '../util/duration.js';
import { shellQuote } from './format.js';
import { runTerminalSession } from './terminal.js';
import { DEFAULT_ESCAPE_CHAR, parseEscapeChar } from './terminal-input.js';

export const RUN_USAGE =
  'claustrum -run [-t|-T] [-socket path] [-daemon-env] [-reconnect-budget d] [-idle-exit d] [-escape-char c] [-token-fd n] [--] <command> [args...]';

/** Stdin bytes written but not acknowledged before the reader waits for the daemon. */
export const STDIN_BACKLOG_BYTES = 4 * 1024 * 1024;
const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** A SIGINT within this long of the previous one escalates: the second sends SIGTERM, the third SIGKILL. */
export const ESCALATION_WINDOW_MS = 2000;
/** `-reconnect-budget` default: how long a dropped connection is retried before giving up. */
export const DEFAULT_RECONNECT_BUDGET_MS = 30_000;
/** How often a lost connection checks whether the daemon itself is gone. */
const DAEMON_WATCH_MS = 100;
/** How long a lost connection stays quiet before saying that it is reconnecting. */
const QUIET_RECONNECT_MS = 1000;
/** Not passed to the command: the daemon's token variable, its internal markers, and systemd's per-process variables. */
export const RUN_STRIPPED_ENV: readonly string[] = [
  'CLAUDE_RPC_TOKEN',
  'CLAUSTRUM_DAEMON_CHILD',
  'CLAUSTRUM_READY_FD',
  'CLAUSTRUM_TOKEN_PIPE',
  'LISTEN_FDS',
  'LISTEN_PID',
  'LISTEN_FDNAMES',
  'NOTIFY_SOCKET',
];

export interface RunOptions {
  readonly socket: string;
  /** The command and its arguments. */
  readonly argv: readonly string[];
  readonly stdin?: Readable;
  readonly stdout?: Writable;
  readonly stderr?: Writable;
  /** Extra connect options (tests: reconnect timings). */
  readonly connect?: Omit<ConnectOptions, 'socket'>;
  /** `-daemon-env`: the daemon's environment and PATH lookup instead of ours. */
  readonly daemonEnv?: boolean;
  /** `-reconnect-budget`. */
  readonly reconnectBudgetMs?: number;
  /** `-idle-exit` for a daemon started on demand. */
  readonly idleExitMs?: number;
  /** `-token-fd`: -1 (default) reads daemon.token beside the socket. */
  readonly tokenFd?: number;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /**
   * On a terminal of the daemon (src/cli/terminal.ts): `on` (-t), `auto` (stdin and stdout are terminals, no -T:
   * pipes when the daemon has no terminals), `off` (-T, or not at a terminal; the default).
   */
  readonly terminal?: 'on' | 'auto' | 'off';
  /** With a terminal: the escape character (`~`; undefined: none). */
  readonly escape?: number | undefined;
  /** With a terminal: how to name the socket in `claustrum -attach` hints (` -socket …`, or empty for the default). */
  readonly socketHint?: string;
}

/** Sends `clearEnv: true` with every process.spawn: the command gets exactly the environment -run sends. */
const clearEnvCodec: Codec = {
  name: ndjson.name,
  encode: (req) => ndjson.encode(req.method === 'process.spawn' ? { ...req, params: { ...req.params, clearEnv: true } } : req),
  decoder: () => ndjson.decoder(),
  decodeMessage: (m) => ndjson.decodeMessage(m),
};

type Resolved = { readonly command: string } | { readonly code: 126 | 127; readonly error: string };

/** Where a shell would find `name`, with `searchPath` and `cwd`; its words for a failure (bash's). */
export async function resolveHere(name: string, searchPath: string | undefined, cwd: string): Promise<Resolved> {
  if (name.includes('/')) {
    const full = path.resolve(cwd, name);
    const st = await stat(full).catch((err: NodeJS.ErrnoException) => err.code ?? 'EIO');
    if (typeof st === 'string') {
      return st === 'EACCES' ? { code: 126, error: `${name}: Permission denied` } : { code: 127, error: `${name}: No such file or directory` };
    }
    if (st.isDirectory()) return { code: 126, error: `${name}: Is a directory` };
    if (!(await executable(full))) return { code: 126, error: `${name}: Permission denied` };
    return { command: name };
  }
  for (const dir of (searchPath ?? '').split(':')) {
    const candidate = path.join(dir === '' ? cwd : path.resolve(cwd, dir), name);
    const st = await stat(candidate).catch(() => undefined);
    if (st?.isFile() && (await executable(candidate))) return { command: candidate };
  }
  return { code: 127, error: `${name}: command not found` };
}

async function executable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** Our environment for the command: everything but RUN_STRIPPED_ENV. */
export function runEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined && !RUN_STRIPPED_ENV.includes(k)) out[k] = v;
  return out;
}

export async function runCommand(options: RunOptions): Promise<number> {
  const stdin = options.stdin ?? process.stdin;
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const budget = options.reconnectBudgetMs ?? DEFAULT_RECONNECT_BUDGET_MS;
  const say = (line: string) => stderr.write(`claustrum: ${line}\n`);
  const [command, ...args] = options.argv;
  if (command === undefined || command === '') {
    say(`-run needs a command: ${RUN_USAGE}`);
    return 2;
  }
  const tokenFd = options.tokenFd ?? -1;
  if (tokenFd === 0) {
    say("-run -token-fd 0: stdin is the command's; hand the token on another descriptor (-token-fd 3 3<file)");
    return 2;
  }

  let spawnCommand = command;
  if (!options.daemonEnv) {
    const found = await resolveHere(command, env.PATH, cwd);
    if ('error' in found) {
      say(found.error);
      return found.code;
    }
    spawnCommand = found.command;
  }

  let client: Client;
  let startedHere = false;
  try {
    await ensureSocketDirectory(options.socket);
    const token = tokenFd >= 0 ? await readTokenFd(tokenFd) : undefined;
    const answered = await socketAccepts(options.socket, 1000);
    client = await connect({
      startDaemon: { args: [`-idle-exit=${options.idleExitMs ?? ON_DEMAND_IDLE_EXIT_MS}ms`] },
      reconnect: { giveUpAfterMs: budget },
      idPrefix: 'run-',
      ...(token !== undefined ? { token } : {}),
      ...(options.daemonEnv ? {} : { wire: clearEnvCodec }),
      ...options.connect,
      socket: options.socket,
    });
    startedHere = !answered;
  } catch (err) {
    say((err as Error).message);
    return 125;
  }

  const holder = await daemonRecord(options.socket, client.instanceId);
  if (startedHere) {
    const idle = options.idleExitMs ?? ON_DEMAND_IDLE_EXIT_MS;
    say(
      `started a daemon on ${options.socket}${holder ? ` (pid ${holder.pid})` : ''} for this command; ` +
        `${idle > 0 ? `it exits after ${formatDuration(idle)} with no process and no connection` : 'it stays until stopped'}. ` +
        `Stop it now: claustrum -stop -socket ${shellQuote(options.socket)}`,
    );
  }
  const features = client.serverCapabilities?.features ?? [];
  if (!options.daemonEnv && !features.includes('process.spawn.clearEnv')) {
    say(`warning: the daemon (${client.serverCapabilities?.version ?? '?'}) merges its own environment into the command's (it predates clearEnv)`);
  }
  const groupKill = features.includes('process.kill.group');
  const terminal = options.terminal ?? 'off';
  if (terminal !== 'off') {
    if (features.includes('process.pty')) {
      return runTerminalSession({
        client,
        socket: options.socket,
        socketHint: options.socketHint ?? '',
        holder,
        what: { spawn: { command: spawnCommand, args, cwd, ...(options.daemonEnv ? {} : { env: runEnvironment(env) }) } },
        stdin,
        stdout,
        stderr,
        term: env.TERM || undefined,
        budgetMs: budget,
        escape: 'escape' in options ? options.escape : parseEscapeChar(DEFAULT_ESCAPE_CHAR),
      });
    }
    const version = client.serverCapabilities?.version ?? '?';
    if (terminal === 'on') {
      say(`-t: the daemon (${version}) has no terminals (feature process.pty); -T runs the command on pipes`);
      await client.close();
      return 125;
    }
    say(`warning: the daemon (${version}) has no terminals (feature process.pty): running the command on pipes`);
  }

  const proc = client.spawn({ command: spawnCommand, args, cwd, ...(options.daemonEnv ? {} : { env: runEnvironment(env) }), wantPid: true });
  // Taken before any await, so no output can slip past it.
  const output = proc.output();
  // The remote process as the OS knows it (pid and start time), to tell what became of it if the daemon goes.
  let remote: { pid: number; startTime: string } | undefined;

  const send = (signal: 'INT' | 'TERM' | 'HUP' | 'KILL') => {
    const attempt = (retry: boolean): void => {
      const params = { id: proc.id, signal, ...(groupKill ? { group: true } : {}) };
      client.call('process.kill', params).catch((err: unknown) => {
        // The connection dropped with the kill on the wire: it may or may not have landed. Sending it again risks a
        // double delivery; losing it would leave the child running, which is worse.
        if (retry && err instanceof InterruptedError) attempt(false);
      });
    };
    // A signal before the spawn's reply waits for it: the daemon must know the process first.
    proc.ready.then(
      () => attempt(true),
      () => {},
    );
  };
  let interrupts = 0;
  let lastInterrupt = -Infinity;
  const onSignal = (signal: (typeof FORWARDED_SIGNALS)[number]) => {
    if (signal !== 'SIGINT') {
      send(signal === 'SIGTERM' ? 'TERM' : 'HUP');
      return;
    }
    const now = performance.now();
    interrupts = now - lastInterrupt <= ESCALATION_WINDOW_MS ? interrupts + 1 : 1;
    lastInterrupt = now;
    if (interrupts === 1) send('INT');
    else if (interrupts === 2) {
      say(`interrupted again within ${ESCALATION_WINDOW_MS / 1000}s: sending SIGTERM to the remote process group (once more: SIGKILL)`);
      send('TERM');
    } else {
      say('interrupted a third time: sending SIGKILL to the remote process group');
      send('KILL');
    }
  };
  const handlers = FORWARDED_SIGNALS.map((s) => [s, () => onSignal(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);

  let stdoutBroken = false;
  const onStdoutError = (err: NodeJS.ErrnoException) => {
    if (stdoutBroken) return;
    stdoutBroken = true;
    // Nobody reads our output any more (`| head`): as with a pipe, the child should stop.
    if (err.code === 'EPIPE') send('TERM');
  };
  stdout.on('error', onStdoutError);

  /** What became of the remote process, killed if it still runs: nothing will follow it once -run gives up. */
  const fate = () => remoteFate(remote);
  // What happened when the connection went: set once the daemon is known to be gone.
  const watch = watchDaemon({ client, holder, socket: options.socket, budgetMs: budget, say, fate });

  try {
    try {
      await proc.ready;
      if (proc.pid !== undefined) {
        const startTime = await startTimeOf(proc.pid);
        if (startTime !== undefined) remote = { pid: proc.pid, startTime };
      }
    } catch (err) {
      return failed(err, say);
    }
    void feedStdin(stdin, proc);
    try {
      for await (const item of output) {
        if (item.type === 'gap') {
          say(`warning: output lost while disconnected: frames ${item.fromSeq}..${item.toSeq} were evicted from the daemon's replay buffer`);
          continue;
        }
        if (item.type === 'resize' || item.type === 'screen') continue;
        const sink = item.type === 'stdout' ? stdout : stderr;
        if (sink === stdout && stdoutBroken) continue;
        if (!sink.write(item.data)) await drained(sink);
      }
    } catch (err) {
      // Nothing follows the command any more: like a terminal's hangup, it does not run on unseen.
      if (watch.lost !== undefined) say(watch.lost);
      else if (err instanceof ProcessLostError || err instanceof ClosedError) say(`${err.message}; ${await fate()}`);
      else say((err as Error).message);
      return 125;
    }
    return (await proc.exited).status;
  } finally {
    for (const [s, h] of handlers) process.off(s, h);
    stdout.off('error', onStdoutError);
    // A terminal's stdin would keep this process alive after the child is gone.
    stdin.destroy();
    await client.close();
  }
}

export interface DaemonWatch {
  /** Set once the daemon is known to be gone: what to say about it and the remote process. */
  readonly lost: string | undefined;
}

/**
 * While the connection is down, checks every DAEMON_WATCH_MS whether the daemon itself (the lock's owner, by pid and
 * OS start time) is gone: then `lost` says so, with the remote process's fate, and the client is closed (whoever
 * iterates its output sees ClosedError). Past `quietMs` of a live daemon it says that it is reconnecting.
 */
export function watchDaemon(w: {
  readonly client: Client;
  readonly holder: OwnerRecord | undefined;
  readonly socket: string;
  readonly budgetMs: number;
  readonly say: (line: string) => void;
  readonly fate: () => Promise<string>;
  readonly quietMs?: number;
}): DaemonWatch {
  const state: { lost: string | undefined } = { lost: undefined };
  let watching = false;
  const watch = async () => {
    const { client, holder } = w;
    if (watching || holder === undefined) return;
    watching = true;
    const since = performance.now();
    let announced = false;
    while (!client.closed && !client.connected) {
      if (!(await isSameProcess(holder.pid, holder.startTime))) {
        state.lost = `the daemon on ${w.socket} (pid ${holder.pid}) is gone; ${await w.fate()}`;
        await client.close();
        break;
      }
      if (!announced && performance.now() - since > (w.quietMs ?? QUIET_RECONNECT_MS)) {
        announced = true;
        w.say(
          `lost the connection to the daemon (pid ${holder.pid}, still running); reconnecting for up to ${formatDuration(w.budgetMs)} (-reconnect-budget)`,
        );
      }
      await sleep(DAEMON_WATCH_MS);
    }
    if (announced && client.connected) w.say('reconnected');
    watching = false;
  };
  w.client.on('disconnect', () => void watch());
  return state;
}

/** What became of a remote process nothing will follow any more: killed (its process group) if it still runs. */
export async function remoteFate(remote: { pid: number; startTime: string } | undefined): Promise<string> {
  if (remote === undefined) return 'the command may not have started';
  if (!(await isSameProcess(remote.pid, remote.startTime)))
    return `the remote process (pid ${remote.pid}) is gone too; its exit status was not delivered`;
  const st = await readStat(remote.pid);
  signalPid(st?.pgid === remote.pid ? -remote.pid : remote.pid, 'SIGKILL');
  return `the remote process (pid ${remote.pid}) was still running: sent SIGKILL to its process group`;
}

/** The spawn failed: its words, and a shell's exit code for them. */
export function failed(err: unknown, say: (line: string) => void): number {
  const message = (err as Error).message;
  say(message);
  if (err instanceof RpcError) {
    if (err.rpcCode === -32004) return 125; // draining
    if (message.startsWith('exec: ')) return 127;
    // A path with a slash that does not exist is "not found" to a shell (127); anything else cannot be run (126).
    if (message.startsWith('fork/exec ')) return message.endsWith(': no such file or directory') ? 127 : 126;
  }
  return 125;
}

/** The lock owner of the socket when it is a verified live daemon, and the one this client talks to. */
export async function daemonRecord(socket: string, instanceId: string | undefined): Promise<OwnerRecord | undefined> {
  const snap = await readLock(runDirectory(socket)).catch(() => undefined);
  const rec = snap?.record;
  if (!rec || (instanceId !== undefined && rec.instanceId !== instanceId)) return undefined;
  return (await verifyHolder(rec, socket)) === 'ours' ? rec : undefined;
}

/** Our stdin into the child's, offsets assigned by the handle; EOF becomes `eof`. Errors end it quietly. */
async function feedStdin(stdin: Readable, proc: ProcessHandle): Promise<void> {
  try {
    for await (const chunk of stdin) {
      if (proc.finished) break;
      const written = proc.write(chunk as Buffer);
      if (proc.stdinPending > STDIN_BACKLOG_BYTES) await written;
    }
    if (!proc.finished) await proc.end();
  } catch {
    // The child exited or stopped reading (stdin closed): what it did not take is of no use to it.
  }
}

export function drained(w: Writable): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      w.off('drain', done);
      w.off('close', done);
      w.off('error', done);
      resolve();
    };
    w.on('drain', done);
    w.on('close', done);
    w.on('error', done);
  });
}
