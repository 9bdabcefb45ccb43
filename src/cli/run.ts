/**
 * `claustrum -run [-socket p] [--] <command> [args…]`: run one command through the daemon as if it ran here.
 *
 * Built on the client library: the command is spawned through the daemon (one is started when none answers),
 * its stdout and stderr go to ours in the order the daemon read them, our stdin goes to it (EOF included),
 * SIGINT, SIGTERM and SIGHUP are forwarded as `process.kill`, a dropped connection is ridden through by the
 * library's reattach, and the exit code is the child's (128 + the signal's number when a signal ended it).
 *
 * Exit codes of our own: 2 usage, 125 the daemon could not be reached or the process was lost, 126 the command
 * could not be executed, 127 it was not found.
 */
import type { Readable, Writable } from 'node:stream';
import { connect, type Client, type ConnectOptions } from '../client/client.js';
import { InterruptedError, RpcError } from '../client/errors.js';
import type { ProcessHandle } from '../client/process.js';

export const RUN_USAGE = 'claustrum -run [-socket path] [--] <command> [args...]';

/** Stdin bytes written but not acknowledged before the reader waits for the daemon. */
const STDIN_BACKLOG_BYTES = 4 * 1024 * 1024;
const FORWARDED_SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export interface RunOptions {
  readonly socket: string;
  /** The command and its arguments. */
  readonly argv: readonly string[];
  readonly stdin?: Readable;
  readonly stdout?: Writable;
  readonly stderr?: Writable;
  /** Extra connect options (tests: reconnect timings). */
  readonly connect?: Omit<ConnectOptions, 'socket'>;
}

export async function runCommand(options: RunOptions): Promise<number> {
  const stdin = options.stdin ?? process.stdin;
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const say = (line: string) => stderr.write(`claustrum: ${line}\n`);
  const [command, ...args] = options.argv;
  if (command === undefined || command === '') {
    say(`-run needs a command: ${RUN_USAGE}`);
    return 2;
  }

  let client: Client;
  try {
    client = await connect({ startDaemon: true, reconnect: { giveUpAfterMs: 30_000 }, idPrefix: 'run-', ...options.connect, socket: options.socket });
  } catch (err) {
    say((err as Error).message);
    return 125;
  }

  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env)) if (v !== undefined) env[k] = v;
  const proc = client.spawn({ command, args, cwd: process.cwd(), env });
  // Taken before any await, so no output can slip past it.
  const output = proc.output();

  const forward = (signal: (typeof FORWARDED_SIGNALS)[number]) => {
    const name = signal.slice(3);
    const send = (retry: boolean): void => {
      proc.kill(name).catch((err: unknown) => {
        // The connection dropped with the kill on the wire: it may or may not have landed. Sending it again risks a
        // double delivery; losing it would leave the child running, which is worse.
        if (retry && err instanceof InterruptedError) send(false);
      });
    };
    send(true);
  };
  const handlers = FORWARDED_SIGNALS.map((s) => [s, () => forward(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);

  let stdoutBroken = false;
  const onStdoutError = (err: NodeJS.ErrnoException) => {
    if (stdoutBroken) return;
    stdoutBroken = true;
    // Nobody reads our output any more (`| head`): as with a pipe, the child should stop.
    if (err.code === 'EPIPE') void proc.kill('TERM').catch(() => {});
  };
  stdout.on('error', onStdoutError);

  try {
    try {
      await proc.ready;
    } catch (err) {
      say((err as Error).message);
      if (err instanceof RpcError && err.message.startsWith('exec: ')) return 127;
      if (err instanceof RpcError && err.message.startsWith('fork/exec ')) return 126;
      return 125;
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
      say((err as Error).message);
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

function drained(w: Writable): Promise<void> {
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
