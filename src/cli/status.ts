/**
 * `claustrum -status [-socket p] [-token-fd n] [-json]`: is a daemon running on the socket, and what does it hold.
 *
 * Exit codes are LSB's for `status` (init-script convention, as supervisorctl's): 0 running, 1 not running but state
 * left behind (stale), 3 not running, 4 unknown (starting, alive but not answering, the lock held by a process that
 * is not a claustrum daemon, an answer that is not ours). Stale is decided by the lock owner's pid AND its OS start
 * time, so a reused pid never passes for a live daemon.
 *
 * Running shows what the daemon reports through the authenticated `server.info`; without a token (a daemon started
 * with `-token-fd`, and no `-token-fd` here) it shows what the lock file says and how to get the rest.
 */
import type { Writable } from 'node:stream';
import { type Client, RpcError } from '../client/index.js';
import type { OwnerRecord } from '../daemon/lock.js';
import { runDirectory } from '../protocol/paths.js';
import type { InfoResult } from '../protocol/messages.js';
import { CliError, COMMAND_TIMEOUT_MS, commandToken, connectWithToken, NoAnswerError, noTokenMessage, withTimeout } from './connect.js';
import { formatAge, formatBytes, keyValues, printable } from './format.js';
import { type Leftovers, probeDaemon } from './probe.js';

export const STATUS_USAGE = 'claustrum -status [-socket path] [-token-fd n] [-json]';

/** LSB status exit codes. */
export const STATUS_EXIT = { running: 0, stale: 1, stopped: 3, unknown: 4 } as const;

export type StatusState = 'running' | 'stale' | 'stopped' | 'unknown';

export interface StatusReport {
  readonly state: StatusState;
  readonly socket: string;
  /** Why the state is unknown, or what is missing from a running report. */
  readonly reason?: string;
  /** The lock owner, as daemon.lock records it. */
  readonly lock?: { readonly pid: number; readonly startTime: string; readonly instanceId?: string; readonly startedAt?: number };
  /** What the daemon said (`server.info`), when it could be asked. */
  readonly info?: InfoResult;
  /** What a daemon that is gone left behind. */
  readonly leftovers?: {
    readonly lock: boolean;
    readonly socket: boolean;
    readonly token: boolean;
    readonly records: number;
    /** The dead daemon's log, where the reason it died may be. */
    readonly log?: string;
    readonly orphans: readonly { readonly pid: number; readonly command: string }[];
    /** A keeper still running, and the children it keeps for the next daemon. */
    readonly keeper?: { readonly pid: number; readonly kept: readonly { readonly pid: number; readonly command: string }[] };
    /** Process journals kept (their output, adopted by the next daemon). */
    readonly journals: number;
    readonly refused: readonly string[];
  };
}

export interface StatusOptions {
  readonly socket: string;
  readonly tokenFd: number;
  readonly json: boolean;
  readonly stdout: Writable;
}

export async function runStatus(o: StatusOptions): Promise<number> {
  const report = await statusReport(o.socket, o.tokenFd);
  o.stdout.write(o.json ? `${JSON.stringify(report)}\n` : renderStatus(report));
  return STATUS_EXIT[report.state];
}

export async function statusReport(socket: string, tokenFd: number): Promise<StatusReport> {
  const probe = await probeDaemon(socket);
  switch (probe.kind) {
    case 'stopped':
      return { state: 'stopped', socket };
    case 'unknown':
      return { state: 'unknown', socket, reason: probe.reason };
    case 'starting':
      return {
        state: 'unknown',
        socket,
        lock: lockFacts(probe.holder),
        reason: `pid ${probe.holder.pid} holds the lock but does not listen yet: starting`,
      };
    case 'unreachable':
      return {
        state: 'unknown',
        socket,
        lock: lockFacts(probe.holder),
        reason: `daemon pid ${probe.holder.pid} is alive but ${socket} does not accept connections (the socket removed, or the daemon stopped)`,
      };
    case 'stale':
      return { state: 'stale', socket, ...(probe.holder ? { lock: lockFacts(probe.holder) } : {}), leftovers: leftoverFacts(probe.leftovers) };
    case 'running':
      return runningReport(socket, tokenFd, probe.holder);
  }
}

async function runningReport(socket: string, tokenFd: number, holder: OwnerRecord | undefined): Promise<StatusReport> {
  const lock = holder ? lockFacts(holder) : undefined;
  const base = { state: 'running' as const, socket, ...(lock ? { lock } : {}) };
  const token = await commandToken(socket, tokenFd);
  if (token === undefined) {
    // Running for sure (a verified lock owner accepts on the socket), but the details need the token.
    if (holder) return { ...base, reason: noTokenMessage(socket) };
    return { state: 'unknown', socket, reason: `something accepts on ${socket}, but there is no daemon.lock and no token to ask it` };
  }
  let client: Client | undefined;
  try {
    client = await connectWithToken(socket, token, tokenFd >= 0);
    const info = await withTimeout(client.call<InfoResult>('server.info', undefined, { idempotent: true }), COMMAND_TIMEOUT_MS, 'server.info');
    return { ...base, info };
  } catch (err) {
    if (err instanceof RpcError && client?.serverCapabilities) {
      // A daemon without server.info (an older build): what its capabilities say.
      const caps = client.serverCapabilities;
      return {
        ...base,
        lock: { pid: holder?.pid ?? 0, startTime: holder?.startTime ?? '', instanceId: caps.instanceId, startedAt: caps.startedAt },
        reason: `${caps.version} has no server.info`,
      };
    }
    const message = err instanceof CliError ? err.message : (err as Error).message;
    // A daemon that accepts but does not answer (stopped, wedged) is not one a script can use: unknown, not running.
    if (err instanceof NoAnswerError) {
      return {
        state: 'unknown',
        socket,
        ...(lock ? { lock } : {}),
        reason: `${holder ? `daemon pid ${holder.pid} accepts connections but ` : ''}${message}`,
      };
    }
    return holder ? { ...base, reason: message } : { state: 'unknown', socket, reason: message };
  } finally {
    await client?.close();
  }
}

function lockFacts(r: OwnerRecord): NonNullable<StatusReport['lock']> {
  return {
    pid: r.pid,
    startTime: r.startTime,
    ...(r.instanceId ? { instanceId: r.instanceId } : {}),
    ...(r.startedAt ? { startedAt: r.startedAt } : {}),
  };
}

function leftoverFacts(l: Leftovers): NonNullable<StatusReport['leftovers']> {
  return {
    lock: l.lock,
    socket: l.socket,
    token: l.token,
    records: l.records,
    ...(l.log ? { log: l.log } : {}),
    orphans: l.orphans.map((o) => ({ pid: o.pid, command: o.argv0 })),
    ...(l.keeper ? { keeper: { pid: l.keeper.pid, kept: l.keeper.kept.map((o) => ({ pid: o.pid, command: o.argv0 })) } } : {}),
    journals: l.journals,
    refused: l.refused,
  };
}

export function renderStatus(r: StatusReport): string {
  const dir = runDirectory(r.socket);
  switch (r.state) {
    case 'stopped':
      return `claustrum is not running on ${r.socket}\n`;
    case 'unknown':
      return `claustrum: cannot tell whether a daemon runs on ${r.socket}: ${printable(r.reason ?? 'unknown')}\n`;
    case 'stale': {
      const l = r.leftovers!;
      const lines = [`claustrum is not running on ${r.socket}, but a daemon that is gone left state in ${dir}:`];
      if (l.lock) {
        const who = r.lock ? `names pid ${r.lock.pid}${r.lock.instanceId ? ` (instance ${r.lock.instanceId})` : ''}, which is gone` : 'unreadable';
        lines.push(`  daemon.lock    ${who}`);
      }
      if (l.socket) lines.push('  socket         nothing accepts on it');
      if (l.token) lines.push("  daemon.token   the dead daemon's token");
      if (l.records > 0) lines.push(`  children/      ${l.records} record(s)`);
      if (l.log) lines.push(`  log            ${l.log} (why it stopped may be there)`);
      if (l.keeper) {
        lines.push(`  keeper         pid ${l.keeper.pid} keeps ${l.keeper.kept.length} running process(es); the next -serve adopts them`);
        for (const o of l.keeper.kept) lines.push(`  kept           pid ${o.pid} (${printable(o.command)})`);
      }
      if (l.journals > 0) lines.push(`  keeper/procs/  the output of ${l.journals} process(es), for the next -serve`);
      for (const o of l.orphans) lines.push(`  orphan         pid ${o.pid} (${printable(o.command)}) still running; the next -serve kills it`);
      for (const why of l.refused) lines.push(`  not trusted    ${printable(why)}`);
      lines.push(`The next claustrum -serve takes the directory over; claustrum -purge -socket ${r.socket} removes it.`);
      return `${lines.join('\n')}\n`;
    }
    case 'running': {
      const i = r.info;
      if (!i) {
        const facts: [string, string][] = [];
        if (r.lock) {
          facts.push(['pid', String(r.lock.pid)]);
          if (r.lock.instanceId) facts.push(['instance', r.lock.instanceId]);
          if (r.lock.startedAt)
            facts.push(['uptime', `${formatAge(Date.now() - r.lock.startedAt)} (since ${new Date(r.lock.startedAt).toISOString()})`]);
        }
        facts.push(['socket', r.socket]);
        const note = r.reason ? `\n  (more needs the token: ${printable(r.reason)})` : '';
        return `claustrum is running on ${r.socket}\n${keyValues(facts)}${note}\n`;
      }
      const facts: [string, string][] = [
        ['pid', String(i.pid)],
        ['version', i.commit ? `${i.version} (commit ${i.commit.slice(0, 12)})` : i.version],
        ['instance', i.instanceId],
        ['state', i.state],
        ['uptime', `${formatAge(Date.now() - i.startedAt)} (since ${new Date(i.startedAt).toISOString()})`],
        ['socket', `${i.socket}${i.socketActivated ? ' (from systemd)' : ''}`],
        ['token file', i.tokenFile ?? 'none (the token came from -token-fd)'],
        ['log', i.log ?? 'none'],
        ['processes', `${i.processes.live} live, ${i.processes.retained} retained`],
        ['connections', String(i.connections)],
        ['replay held', formatBytes(i.replayBytes)],
      ];
      if (i.metrics) facts.push(['metrics', `${i.metrics}/metrics (health: /healthz /readyz /info)`]);
      if (i.websocket) facts.push(['websocket', i.websocket]);
      const options = [
        i.keepChildren ? '-keep-children' : '',
        i.drainTimeoutMs > 0 ? `-drain-timeout ${formatAge(i.drainTimeoutMs)}` : '',
        i.idleExitMs > 0 ? `-idle-exit ${formatAge(i.idleExitMs)}` : '',
      ].filter((s) => s !== '');
      if (options.length > 0) facts.push(['options', options.join(' ')]);
      return `claustrum is running on ${r.socket}\n${keyValues(facts)}\n`;
    }
  }
}
