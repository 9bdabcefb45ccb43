/**
 * `claustrum -logs <id> [-f]`: what a process printed, read as an observer (extension `process.observe`), so it
 * never takes the process from its owner and never slows its child.
 *
 * stdout goes to our stdout and stderr to our stderr, in the order the daemon read them. A loss (frames the daemon
 * evicted before they could be read) is announced on stderr with the seqs it covers. Without -f the retained output
 * is printed and the command ends; with -f it follows live output to the exit frame. Exit code: the child's (128 +
 * the signal's number when a signal ended it) once its exit frame was read, else 0 (still running, without -f).
 * Of our own: 2 usage, 1 no such process, 125 the daemon could not be reached or the process was lost.
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { type Client, type ConnectOptions, connect } from '../client/client.js';
import { ProcessLostError } from '../client/errors.js';

export const LOGS_USAGE = 'claustrum -logs [-socket path] [-f] <id>';

export interface LogsOptions {
  readonly socket: string;
  readonly id: string | undefined;
  readonly follow: boolean;
  readonly stdout?: Writable;
  readonly stderr?: Writable;
  readonly connect?: Omit<ConnectOptions, 'socket'>;
}

export async function runLogs(options: LogsOptions): Promise<number> {
  const stdout = options.stdout ?? process.stdout;
  const stderr = options.stderr ?? process.stderr;
  const say = (line: string) => stderr.write(`claustrum: ${line}\n`);
  if (!options.id) {
    say(`-logs needs a process id: ${LOGS_USAGE} (claustrum -ps lists them)`);
    return 2;
  }
  let client: Client;
  try {
    client = await connect({ reconnect: options.follow ? { giveUpAfterMs: 30_000 } : false, ...options.connect, socket: options.socket });
  } catch (err) {
    say((err as Error).message);
    return 125;
  }
  const observer = client.observe(options.id);
  // Taken before any await, so nothing slips past it. It ends at the exit frame, or throws once unobserved or lost,
  // after everything delivered before.
  const output = observer.output();
  const printed = (async () => {
    for await (const item of output) {
      if (item.type === 'gap') {
        say(`output lost: frames ${item.fromSeq}..${item.toSeq} were evicted before they could be read`);
        continue;
      }
      if (item.type === 'resize') continue;
      // A terminal's screen (its older output was evicted) draws what it showed; stdout carries the terminal.
      const to = item.type === 'stderr' ? stderr : stdout;
      if (!to.write(item.data)) await once(to, 'drain');
    }
  })().catch(() => {});
  try {
    await observer.ready;
  } catch (err) {
    await client.close();
    if (err instanceof ProcessLostError && err.message.includes('no such process')) {
      say(`no process ${options.id} on the daemon (claustrum -ps lists them)`);
      return 1;
    }
    say((err as Error).message);
    return 125;
  }
  let code = 0;
  if (options.follow) {
    try {
      code = (await observer.exited).status;
    } catch (err) {
      await client.close();
      await printed;
      say(`stopped following process ${options.id}: ${(err as Error).message}`);
      return 125;
    }
  } else {
    // The reply follows the replayed frames: everything retained has been delivered by now.
    code = observer.exitInfo?.status ?? 0;
    if (!observer.finished) await observer.unobserve();
  }
  await printed;
  await client.close();
  return code;
}
