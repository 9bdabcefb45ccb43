/**
 * The daemon's end of the keeper protocol: finds the keeper of its socket directory (starting one when there is
 * none), says hello, and then carries requests, replies and notices. See src/keeper/protocol.ts.
 */
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { openLogFile } from '../daemon/logfile.js';
import type { Logger } from '../log/logger.js';
import { isSameProcess } from '../process/procfs.js';
import { STRIPPED_ENV } from '../process/env.js';
import { KEEPER_LOG, KEEPER_SOCKET, keeperDirectory, keeperSocketPath, readLockRecord } from './paths.js';
import {
  encodeMessage,
  type FrontNotice,
  type FrontRequest,
  type HelloReply,
  KEEPER_PROTOCOL,
  type KeeperErrorBody,
  type KeeperMessage,
  type KeeperNotice,
  KeeperStreamError,
  MessageReader,
  type ReapInfo,
  type ReplyBodies,
} from './protocol.js';

/** How long a daemon waits for a keeper to come up (its own, or one another daemon is starting). */
export const KEEPER_START_TIMEOUT_MS = 15_000;

/**
 * Log notices kept for a daemon that has not taken its notices yet (between its hello and the adoption): past this,
 * the oldest go (they are in keeper.log too). The notices about processes are kept whole, merged per process.
 */
export const EARLY_LOG_NOTICES_MAX = 1000;

/** The keeper refused, or could not be reached or started; the message says what to do. */
export class KeeperError extends Error {
  readonly code: KeeperErrorBody['code'] | 'unreachable';
  /**
   * Refused because another daemon took the processes over: nothing was done, and this daemon is leaving. The RPC
   * layer leaves such a request unanswered (see Dispatcher), so a client retries it on the successor.
   */
  readonly withdrawn: boolean;
  constructor(code: KeeperErrorBody['code'] | 'unreachable', message: string) {
    super(message);
    this.code = code;
    this.withdrawn = code === 'superseded';
  }
}

export interface HelloOptions {
  readonly runDir: string;
  readonly instance: string;
  readonly build: string;
  readonly token: string | undefined;
  readonly budgetBytes: number;
  readonly log: Logger;
}

/** A request as the caller writes it; `rid` is the link's. */
export type FrontRequestBody = FrontRequest extends infer R ? (R extends FrontRequest ? Omit<R, 'rid'> : never) : never;

export class KeeperLink {
  readonly dir: string;
  readonly keeperPid: number;
  readonly #socket: net.Socket;
  readonly #pending = new Map<number, { resolve: (body: unknown) => void; reject: (err: Error) => void }>();
  #rid = 0;
  #closing = false;
  #onNotice: ((notice: KeeperNotice) => void) | undefined;
  /**
   * Notices that came before anyone took them: the keeper reports to a daemon from its hello on, and a daemon adopts
   * the processes only later (after its lock, its reap of orphans). A child that exits or writes in between must not
   * be lost to it. Merged per process (the newest journal seq, the reap), so bounded by the keeper's process table.
   */
  readonly #early = {
    appended: new Map<string, number>(),
    reaped: new Map<string, ReapInfo>(),
    drainTimedOut: new Set<string>(),
    superseded: undefined as string | undefined,
    logs: [] as KeeperNotice[],
  };

  /** Notices, in order; those that came before the first handler are handed to it when it is set. */
  get onNotice(): (notice: KeeperNotice) => void {
    return this.#onNotice ?? ((n) => this.#keepEarly(n));
  }

  set onNotice(handler: (notice: KeeperNotice) => void) {
    this.#onNotice = handler;
    const e = this.#early;
    // The reap before the journal's growth, as the supervisor takes notices for a process it does not know yet.
    for (const [key, reap] of e.reaped) handler({ t: 'reaped', key, reap });
    if (e.appended.size > 0) handler({ t: 'appended', procs: [...e.appended] });
    for (const key of e.drainTimedOut) handler({ t: 'drainTimedOut', key });
    for (const n of e.logs) handler(n);
    if (e.superseded !== undefined) handler({ t: 'superseded', by: e.superseded });
    e.reaped.clear();
    e.appended.clear();
    e.drainTimedOut.clear();
    e.logs.length = 0;
    e.superseded = undefined;
  }
  #onLost: ((why: string) => void) | undefined;
  /** Why the connection ended without close(), once it has: a listener set later still hears it. */
  #lost: string | undefined;

  /**
   * The connection ended without close(): the keeper died or dropped this daemon. Set after the loss (the daemon
   * sets it when it adopts, after its lock and reap), it is called at once: the close event does not come twice.
   */
  set onLost(listener: (why: string) => void) {
    this.#onLost = listener;
    if (this.#lost !== undefined) listener(this.#lost);
  }

  private constructor(dir: string, socket: net.Socket, keeperPid: number) {
    this.dir = dir;
    this.#socket = socket;
    this.keeperPid = keeperPid;
    const reader = new MessageReader();
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk, (msg) => this.#onMessage(msg as KeeperMessage));
      } catch (err) {
        socket.destroy(err instanceof KeeperStreamError ? err : new KeeperStreamError(String(err)));
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => {
      for (const p of this.#pending.values()) p.reject(new KeeperError('unreachable', 'the keeper connection closed'));
      this.#pending.clear();
      if (this.#closing) return;
      this.#lost = 'the keeper connection closed';
      this.#onLost?.(this.#lost);
    });
  }

  /**
   * Connects to the keeper of `runDir` (starting one if none runs) and says hello. The hello makes this daemon the
   * keeper's front: a daemon connected before is told it is superseded.
   */
  static async open(options: HelloOptions): Promise<{ link: KeeperLink; hello: HelloReply }> {
    const dir = keeperDirectory(options.runDir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const deadline = Date.now() + KEEPER_START_TIMEOUT_MS;
    let started = false;
    for (;;) {
      const socket = await connect(keeperSocketPath(dir));
      if (socket) {
        const link = new KeeperLink(dir, socket, readLockRecord(dir)?.pid ?? 0);
        try {
          const hello = await link.request({
            t: 'hello',
            protocol: KEEPER_PROTOCOL,
            instance: options.instance,
            build: options.build,
            token: options.token,
            budgetBytes: options.budgetBytes,
          });
          return { link, hello };
        } catch (err) {
          link.close();
          if (err instanceof KeeperError && err.code === 'protocolMismatch') {
            const rec = readLockRecord(dir);
            throw new KeeperError(
              'protocolMismatch',
              `${err.message}: the processes it keeps need that claustrum${rec ? ` (${rec.build})` : ''}; run its -serve, or stop it (with that claustrum's -stop) first`,
            );
          }
          if (!(err instanceof KeeperError && err.code === 'unreachable')) throw err;
          // The keeper went away between the connect and the hello (it was exiting idle): start another.
        }
      }
      if (Date.now() > deadline)
        throw new KeeperError(
          'unreachable',
          `no keeper answered on ${path.join(dir, KEEPER_SOCKET)} within ${KEEPER_START_TIMEOUT_MS / 1000}s; see ${path.join(dir, KEEPER_LOG)}`,
        );
      const holder = readLockRecord(dir);
      if (holder && (await isSameProcess(holder.pid, holder.startTime))) {
        // A keeper runs (starting up, or exiting): wait for its socket.
        await sleep(50);
        continue;
      }
      if (started) await sleep(50);
      started = true;
      const outcome = await startKeeper(dir, options.runDir, options.log);
      if (outcome.kind === 'error' && !/another keeper/.test(outcome.message)) {
        throw new KeeperError('unreachable', `the keeper did not start: ${outcome.message}`);
      }
    }
  }

  request<M extends FrontRequestBody>(msg: M): Promise<ReplyBodies[M['t']]> {
    const rid = ++this.#rid;
    return new Promise((resolve, reject) => {
      if (this.#socket.destroyed) {
        reject(new KeeperError('unreachable', 'the keeper connection is closed'));
        return;
      }
      this.#pending.set(rid, { resolve: resolve as (body: unknown) => void, reject });
      this.#socket.write(encodeMessage({ ...msg, rid } as unknown as FrontRequest));
    });
  }

  notify(notice: FrontNotice): void {
    if (!this.#socket.destroyed) this.#socket.write(encodeMessage(notice));
  }

  /** Closes the connection (the keeper keeps its processes unless told otherwise by `bye`). */
  close(): void {
    this.#closing = true;
    this.#socket.end();
    this.#socket.destroySoon?.();
  }

  #keepEarly(n: KeeperNotice): void {
    const e = this.#early;
    switch (n.t) {
      case 'appended':
        for (const [key, seq] of n.procs) e.appended.set(key, Math.max(seq, e.appended.get(key) ?? 0));
        return;
      case 'reaped':
        e.reaped.set(n.key, n.reap);
        return;
      case 'drainTimedOut':
        e.drainTimedOut.add(n.key);
        return;
      case 'superseded':
        e.superseded = n.by;
        return;
      case 'log':
        if (e.logs.length >= EARLY_LOG_NOTICES_MAX) e.logs.shift();
        e.logs.push(n);
        return;
    }
  }

  #onMessage(msg: KeeperMessage): void {
    if (msg.t === 'reply') {
      const p = this.#pending.get(msg.rid);
      if (!p) return;
      this.#pending.delete(msg.rid);
      if (msg.ok) p.resolve(msg.body);
      else p.reject(new KeeperError(msg.error.code, msg.error.message));
      return;
    }
    this.onNotice(msg);
  }
}

function connect(socketPath: string): Promise<net.Socket | undefined> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', () => resolve(undefined));
  });
}

type StartOutcome = { readonly kind: 'ready' } | { readonly kind: 'error'; readonly message: string };

/** Starts a keeper for `dir`, detached in its own session, logging to keeper.log; resolves once it says how it went. */
async function startKeeper(dir: string, runDir: string, log: Logger): Promise<StartOutcome> {
  const opened = await openLogFile(path.join(dir, KEEPER_LOG));
  const logFd = 'handle' in opened ? opened.handle.fd : 'ignore';
  if ('declined' in opened) log.warn('daemon', `keeper log: ${opened.declined}`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const name of STRIPPED_ENV) delete env[name];
  const main = fileURLToPath(new URL('./main.js', import.meta.url));
  const child = spawn(process.execPath, [main, dir, runDir], { detached: true, cwd: '/', env, stdio: ['ignore', 'pipe', logFd] });
  if ('handle' in opened) await opened.handle.close();
  const outcome = await new Promise<StartOutcome>((resolve) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
      const line = out.split('\n')[0]!;
      if (!out.includes('\n')) return;
      resolve(line === 'ready' ? { kind: 'ready' } : { kind: 'error', message: line.replace(/^error /, '') });
    });
    child.once('error', (err) => resolve({ kind: 'error', message: err.message }));
    child.once('exit', (code, signal) => resolve({ kind: 'error', message: out.trim().replace(/^error /, '') || `exited (${code ?? signal})` }));
  });
  child.stdout!.destroy();
  child.unref();
  if (outcome.kind === 'ready') log.info('daemon', `started a keeper (pid ${child.pid}) for ${dir}`);
  return outcome;
}
