/**
 * What the daemon itself knows of the other end of a connection, for the audit's `peer`.
 *
 * Unix socket. The kernel knows the peer's credentials (SO_PEERCRED), but Node cannot read that option (libuv#2255)
 * and a native addon would need a compiler. What Linux offers without one, measured on this machine (2 cores, ~100
 * processes, ~400 Unix sockets; bench/figures/audit.mjs prints the figures):
 * - /proc/net/unix lists every socket's inode and path, but not which socket is connected to which: no peer.
 * - /proc/<pid>/fd/* → `socket:[inode]` maps inodes to processes, but only once the peer's inode is known.
 * - sock_diag (netlink, UNIX_DIAG_PEER) gives each socket's peer inode. Node cannot open a netlink socket, but
 *   iproute2's `ss -xpn` asks sock_diag and maps inodes to processes through /proc itself.
 * So: our end's inode comes from /proc/self/fd/<fd> (one readlink); one `ss -xpnH` run lists every Unix socket with
 * its peer's inode and owning processes; the row whose peer inode is ours is the client's, and its `users:` name
 * the client process. Then /proc/<pid>/status gives its uid and /proc/<pid>/stat its start time, which pins the pid
 * against reuse. All of it runs in a child process and the thread pool: the event loop never waits, and a request is
 * never delayed by it (its record is, until the lookup settles or PEER_LOOKUP_TIMEOUT_MS passes).
 * Cost: one `ss` run per batch of connections (connections accepted while one runs share the next), a few
 * milliseconds of CPU that grow with the number of processes and descriptors on the host. A host without `ss`
 * (no iproute2) records `pid: null` with the reason.
 * The pid is what the kernel says holds the other end, so it cannot be forged by the client; a process that passed
 * its connected socket to another (SCM_RIGHTS, fork) shows as whichever processes hold it then (`pids`).
 *
 * WebSocket: the remote address and port of the TCP connection, and the Origin header (what a browser asserts about
 * the page that opened it; a non-browser client can send anything or nothing).
 */
import { spawn } from 'node:child_process';
import { readFile, readlink } from 'node:fs/promises';
import type { IncomingMessage } from 'node:http';
import type net from 'node:net';
import { readStat } from '../process/procfs.js';
import { cutString } from './canonical.js';
import type { PeerInfo } from './record.js';

/** An `ss` run that takes longer is killed; its connections are recorded with `pid: null`. */
export const PEER_LOOKUP_TIMEOUT_MS = 2000;
/** `ss` output read at most (about 100 bytes a socket: 160,000 sockets); a host with more records `pid: null`. */
export const MAX_SS_OUTPUT_BYTES = 16 * 1024 * 1024;
/** Most pids recorded for a socket several processes hold. */
export const MAX_PEER_PIDS = 8;
/** An Origin header is a URL's scheme, host and port: 256 bytes is generous. */
export const MAX_ORIGIN_BYTES = 256;
/** /proc/<pid>/comm holds at most 15 characters; kept as read. */
const COMM_BYTES = 64;

type UnixPeer = Extract<PeerInfo, { kind: 'unix' }>;
type Waiter = (row: SsRow | string) => void;

/** One line of `ss -xpnH`: the peer inode and the processes holding the socket. */
interface SsRow {
  readonly peer: number;
  readonly pids: readonly number[];
}

export interface PeerResolverOptions {
  /** The `ss` executable; `ss` from PATH by default. */
  readonly ss?: string;
  readonly timeoutMs?: number;
}

/** Finds the process at the other end of accepted Unix-socket connections, batching lookups into `ss` runs. */
export class UnixPeerResolver {
  readonly #ss: string;
  readonly #timeoutMs: number;
  /** Our inodes waiting for the next `ss` run. */
  #pending = new Map<number, Waiter[]>();
  #running = false;
  /** Set once `ss` cannot run at all, so it is not tried for every connection. */
  #unavailable: string | undefined;
  /** `ss` runs started (for tests and the benchmark: lookups per run is the batching factor). */
  runs = 0;

  constructor(o: PeerResolverOptions = {}) {
    this.#ss = o.ss ?? 'ss';
    this.#timeoutMs = o.timeoutMs ?? PEER_LOOKUP_TIMEOUT_MS;
  }

  /** The peer of an accepted connection. Never rejects: what could not be found is `pid: null` with the reason. */
  async resolve(socket: net.Socket): Promise<UnixPeer> {
    const fd = (socket as unknown as { _handle?: { fd?: unknown } })._handle?.fd;
    if (typeof fd !== 'number' || fd < 0) return unknown('the connection has no descriptor (closed already)');
    let link: string;
    try {
      link = await readlink(`/proc/self/fd/${fd}`);
    } catch (err) {
      return unknown(`cannot read /proc/self/fd/${fd}: ${(err as Error).message}`);
    }
    // A descriptor number is reused only after a close: while the socket is not destroyed, fd is still this one.
    if (socket.destroyed) return unknown('the connection closed before its peer was looked up');
    const m = /^socket:\[(\d+)\]$/.exec(link);
    if (m === null) return unknown(`descriptor ${fd} is not a socket (${link})`);
    const row = await this.#lookup(Number(m[1]));
    if (typeof row === 'string') return unknown(row);
    const pids = row.pids.filter((p) => p !== process.pid);
    const pid = pids[0];
    if (pid === undefined)
      return unknown(
        row.pids.length > 0
          ? 'the other end is this daemon'
          : 'no process holds the other end (it exited, or belongs to a user whose processes this daemon cannot see)',
      );
    const [uid, stat, comm] = await Promise.all([uidOf(pid), readStat(pid), commOf(pid)]);
    return Object.freeze({
      kind: 'unix',
      pid,
      uid,
      ...(comm !== undefined ? { comm } : {}),
      ...(stat !== undefined ? { startTime: stat.startTime } : {}),
      ...(pids.length > 1 ? { pids: pids.slice(0, MAX_PEER_PIDS) } : {}),
    } as const);
  }

  #lookup(inode: number): Promise<SsRow | string> {
    if (this.#unavailable !== undefined) return Promise.resolve(this.#unavailable);
    return new Promise((resolve) => {
      const waiters = this.#pending.get(inode);
      if (waiters) waiters.push(resolve);
      else this.#pending.set(inode, [resolve]);
      if (!this.#running) this.#run();
    });
  }

  #run(): void {
    this.#running = true;
    this.runs++;
    const batch = this.#pending;
    this.#pending = new Map();
    const settle = (result: Map<number, SsRow> | string) => {
      for (const [inode, waiters] of batch) {
        const row = typeof result === 'string' ? result : (result.get(inode) ?? 'no socket is connected to this one (the client closed it)');
        for (const w of waiters) w(row);
      }
      this.#running = false;
      if (this.#pending.size > 0) this.#run();
    };
    let out = '';
    let bytes = 0;
    let overflow = false;
    let done = false;
    const child = spawn(this.#ss, ['-xpnH'], { stdio: ['ignore', 'pipe', 'ignore'] });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(`ss did not answer within ${this.#timeoutMs} ms`);
    }, this.#timeoutMs);
    const finish = (result: Map<number, SsRow> | string) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      settle(result);
    };
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      bytes += d.length;
      if (bytes > MAX_SS_OUTPUT_BYTES) {
        overflow = true;
        child.kill('SIGKILL');
      } else out += d;
    });
    child.on('error', (err) => {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'EACCES')
        this.#unavailable = `${this.#ss} (iproute2) cannot be run: ${code}; install iproute2 to record peer processes`;
      finish(this.#unavailable ?? `ss failed: ${err.message}`);
    });
    child.on('close', (code) => {
      if (overflow) finish(`ss listed more than ${MAX_SS_OUTPUT_BYTES} bytes of sockets`);
      else if (code !== 0) finish(`ss exited with status ${code}`);
      else finish(parseSs(out, batch));
    });
  }
}

/**
 * The rows of `ss -xpnH` output whose peer inode is one of `wanted`: `<netid> <state> <recv-q> <send-q> <local>
 * <local inode> <peer> <peer inode> [users:((…,pid=N,fd=M),…)]`. Only the peer inode (the last field before
 * `users:`) and the pids are read, so addresses with spaces in them cannot shift anything.
 */
export function parseSs(text: string, wanted: ReadonlyMap<number, unknown>): Map<number, SsRow> {
  const rows = new Map<number, SsRow>();
  for (const line of text.split('\n')) {
    const at = line.indexOf(' users:(');
    const head = (at === -1 ? line : line.slice(0, at)).trimEnd();
    const last = head.slice(head.lastIndexOf(' ') + 1);
    if (!/^\d+$/.test(last)) continue;
    const peer = Number(last);
    if (!wanted.has(peer)) continue;
    const pids = at === -1 ? [] : [...new Set([...line.slice(at).matchAll(/pid=(\d+)/g)].map((m) => Number(m[1])))];
    rows.set(peer, { peer, pids });
  }
  return rows;
}

function unknown(why: string): UnixPeer {
  return Object.freeze({ kind: 'unix', pid: null, uid: null, unknown: why } as const);
}

/** The real uid of a process (first field of `Uid:` in /proc/<pid>/status). */
async function uidOf(pid: number): Promise<number | null> {
  try {
    const m = /^Uid:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function commOf(pid: number): Promise<string | undefined> {
  try {
    return cutString((await readFile(`/proc/${pid}/comm`, 'utf8')).replace(/\n$/, ''), COMM_BYTES);
  } catch {
    return undefined;
  }
}

/** The peer of a WebSocket connection, from its upgrade request. */
export function webSocketPeer(req: IncomingMessage): Extract<PeerInfo, { kind: 'ws' }> {
  const origin = req.headers.origin;
  return Object.freeze({
    kind: 'ws',
    address: req.socket.remoteAddress ?? '',
    port: req.socket.remotePort ?? 0,
    origin: typeof origin === 'string' ? cutString(origin, MAX_ORIGIN_BYTES) : null,
  } as const);
}
