/**
 * `claustrum -restart`: replaces the daemon on a socket by a new one of this build (a restart, or an upgrade when
 * this executable is newer), with the flags the running daemon was started with. The processes stay with the keeper:
 * the new daemon adopts them, their output and stdin offsets intact, and clients reattach to it (PROTOCOL.md,
 * "Restarts and crashes").
 *
 * The running daemon's flags are read from its command line (/proc/<pid>/cmdline of the lock's verified owner): a
 * detached daemon's line holds exactly the flags its launcher forwarded. The token stays the one the keeper holds, so
 * nothing a client knows changes.
 */
import { spawn } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import type { FlagSpec } from './flags.js';
import { cmdlineOf } from '../process/procfs.js';
import { claustrumArgsOf } from '../daemon/lock.js';
import { CliError } from './connect.js';
import { probeDaemon } from './probe.js';

export const RESTART_USAGE = 'claustrum -restart [-socket path]';
/** Set for the -serve a restart runs: a token that only the keeper holds is expected, not a reason to refuse. */
export const HANDOVER_ENV = 'CLAUSTRUM_HANDOVER';

/** Flags of the old daemon that do not carry over: the socket is given again, the token is the keeper's. */
const DROPPED = new Set(['serve', 'foreground', 'socket', 'token-file', 'token-fd']);

/**
 * The daemon flags in a `claustrum -serve …` command line, without the ones a restart gives itself. Values given as
 * a separate argument are kept with their flag; `-log-file -` (stderr) is dropped, since the new daemon is detached.
 */
export function serveFlagsOf(argv: readonly string[], specs: readonly FlagSpec[]): ServeFlags {
  const args = claustrumArgsOf(argv);
  // Without the executable in it, the line cannot be read: starting with no flags would silently drop them all.
  if (!args) throw new CliError(`-restart: cannot find the claustrum executable in the running daemon's command line (${argv.join(' ')})`);
  const out: string[] = [];
  const unknown: string[] = [];
  let foreground = false;
  let tokenFromFd = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const m = /^--?([^=]+)(=(.*))?$/s.exec(arg);
    if (!m) break; // flags end at the first argument that is not one (the daemon takes none)
    const name = m[1]!;
    const spec = specs.find((f) => f.name === name);
    const takesValue = spec !== undefined && spec.kind !== 'bool' && m[2] === undefined;
    const value = m[2] !== undefined ? m[3]! : takesValue ? args[++i] : undefined;
    if (spec === undefined) {
      unknown.push(arg);
      continue;
    }
    if (name === 'foreground') foreground = value !== 'false';
    if (name === 'token-fd') tokenFromFd = true;
    if (DROPPED.has(name)) continue;
    if (name === 'log-file' && value === '-') continue;
    out.push(value === undefined ? `-${name}` : `-${name}=${value}`);
  }
  // A token that was kept off disk stays off disk: the keeper's token is taken over, never written unless it was.
  if (tokenFromFd && !out.some((f) => f.startsWith('-write-token'))) out.push('-write-token=false');
  return { flags: out, unknown, foreground };
}

export interface ServeFlags {
  /** The flags to give the new daemon. */
  readonly flags: string[];
  /** Arguments that are not flags of this build: dropped. */
  readonly unknown: string[];
  /** The running daemon serves in the foreground (a service manager's, or a terminal's). */
  readonly foreground: boolean;
}

export interface RestartOptions {
  readonly socket: string;
  /** This build's executable. */
  readonly bin: string;
  readonly specs: readonly FlagSpec[];
}

export async function runRestart(o: RestartOptions): Promise<number> {
  const probe = await probeDaemon(o.socket);
  if (probe.kind !== 'running' && probe.kind !== 'unreachable' && probe.kind !== 'starting') {
    const why = probe.kind === 'unknown' ? probe.reason : probe.kind === 'stale' ? 'only the state of a daemon that is gone' : 'no daemon';
    throw new CliError(`-restart: nothing to restart on ${o.socket} (${why}); start one with claustrum -serve -socket ${o.socket}`);
  }
  const holder = probe.holder;
  const argv = holder ? await cmdlineOf(holder.pid) : undefined;
  if (!argv)
    throw new CliError(
      `-restart: cannot read the running daemon's command line (pid ${holder?.pid ?? '?'}); run claustrum -serve with its flags instead`,
    );
  const { flags, unknown, foreground } = serveFlagsOf(argv, o.specs);
  for (const arg of unknown) process.stderr.write(`claustrum: -restart: ${arg} is not a flag of this build; the new daemon starts without it\n`);
  if (foreground) {
    process.stderr.write(
      "claustrum: -restart: the running daemon is in the foreground (a service manager's?): the new one is detached, outside its control; restart through the manager to keep it there\n",
    );
  }
  const child = spawn(process.execPath, [...process.execArgv, o.bin, '-serve', '-socket', o.socket, ...flags], {
    stdio: 'inherit',
    env: { ...process.env, [HANDOVER_ENV]: '1' },
  });
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + (osConstants.signals[signal] ?? 0) : 1)));
    child.once('error', (err) => {
      process.stderr.write(`claustrum: -restart: ${err.message}\n`);
      resolve(1);
    });
  });
}
