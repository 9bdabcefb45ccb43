/**
 * The keeper's executable: `node <build>/dist/src/keeper/main.js <keeper dir> <run dir>`, started (detached, in its
 * own session) by the first daemon that finds none, and left running across daemons. It says `ready` on stdout once
 * it listens, or `error <why>` and exits 3 when it cannot keep this directory (another keeper holds it, or a newer
 * claustrum wrote the state).
 *
 * Signals: SIGTERM, SIGINT and SIGHUP stop it, and a keeper that stops takes its children with it (without it their
 * output has no reader): each is killed and the journals removed, said in its log. Signals that would otherwise end
 * it silently or open Node's inspector are ignored. SIGKILL is the one death it cannot answer; the next daemon then
 * reaps the children from their orphan records and adopts their journals as exited, exit unknown.
 */
import { randomBytes } from 'node:crypto';
import { constants, closeSync, mkdirSync, openSync, readFileSync, renameSync, rmdirSync, unlinkSync, writeSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { closeInheritedDescriptors } from '../daemon/descriptors.js';
import { ChildRegistry } from '../daemon/orphans.js';
import { Logger, parseLogLevel } from '../log/logger.js';
import { isSameProcess, startTimeOf } from '../process/procfs.js';
import { guardSpawnDescriptorLeak } from '../process/spawn-guard.js';
import { BUILD } from '../version.js';
import { Keeper, PROCS_DIR } from './keeper.js';
import { KEEPER_LOCK, KEEPER_REFUSED_EXIT, KEEPER_SOCKET, type KeeperLockRecord, keeperSocketPath, readLockRecord } from './paths.js';
import { KEEPER_PROTOCOL } from './protocol.js';

class Refused extends Error {}

async function main(): Promise<number> {
  const [dir, runDir] = process.argv.slice(2);
  if (!dir || !runDir) {
    process.stdout.write('error usage: main.js <keeper dir> <run dir>\n');
    return KEEPER_REFUSED_EXIT;
  }
  process.title = 'claustrum-keeper';
  // The keeper forks every child: a spawn refused at the descriptor limit must leak nothing (src/process/spawn-guard.ts).
  guardSpawnDescriptorLeak();
  const log = new Logger(parseLogLevel(process.env.CLAUSTRUM_LOG_LEVEL));
  const instance = randomBytes(16).toString('hex');
  try {
    // Nothing the launching daemon held (a socket from systemd, a token pipe) reaches a child through the keeper.
    await closeInheritedDescriptors(new Set(), log);
    mkdirSync(path.join(dir, PROCS_DIR), { recursive: true, mode: 0o700 });
    const selfStart = (await startTimeOf('self')) ?? '';
    await takeLock(dir, { pid: process.pid, startTime: selfStart, instance, protocol: KEEPER_PROTOCOL, build: BUILD.version, startedAt: Date.now() });
    const registry = new ChildRegistry(runDir, instance, selfStart, log);
    await registry.init();
    const server = net.createServer({ allowHalfOpen: false });
    const socketPath = path.join(dir, KEEPER_SOCKET);
    const bindPath = keeperSocketPath(dir);
    const keeper = new Keeper({ dir, runDir, instance, build: BUILD.version, log, onIdle: () => void stop(0) }, registry);
    try {
      keeper.adoptRelics();
    } catch (err) {
      releaseLock(dir, instance);
      throw new Refused((err as Error).message);
    }
    server.on('connection', (socket) => keeper.accept(socket));
    await listen(server, bindPath);
    let stopping = false;
    const stop = async (code: number): Promise<void> => {
      if (stopping) return;
      stopping = true;
      keeper.close();
      server.close();
      // Only our own socket: a successor may have bound the path already.
      try {
        if (readFileSync(path.join(dir, KEEPER_LOCK), 'utf8').includes(instance)) unlinkSync(socketPath);
      } catch {
        // gone
      }
      releaseLock(dir, instance);
      // An empty procs/ goes too (a journal left in it, whatever the reason, keeps it).
      try {
        rmdirSync(path.join(dir, PROCS_DIR));
      } catch {
        // not empty, or gone
      }
      process.exitCode = code;
      setImmediate(() => process.exit(code));
    };
    for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
      process.on(sig, () => {
        log.warn('keeper', `received ${sig}: killing every child (without the keeper their output has no reader) and exiting`);
        void keeper.stopAll().then(() => stop(0));
      });
    }
    for (const sig of ['SIGUSR1', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGVTALRM', 'SIGPROF', 'SIGIO', 'SIGSYS', 'SIGTRAP'] as const) {
      // Under `node --cpu-prof` SIGPROF is the profiler's clock: a listener would take it.
      if (sig === 'SIGPROF' && process.execArgv.some((a) => a.startsWith('--cpu-prof') || a === '--prof')) continue;
      process.on(sig, () => log.warn('keeper', `received ${sig}; ignored`));
    }
    process.on('uncaughtException', (err) => {
      // Dying here would take every child's reader with it: log, and go on.
      log.error('keeper', `unexpected error: ${err.stack ?? String(err)}`);
    });
    log.info('keeper', `keeping ${dir} as pid ${process.pid} (claustrum ${BUILD.version}, keeper protocol ${KEEPER_PROTOCOL})`);
    process.stdout.write('ready\n');
    return -1;
  } catch (err) {
    const why = err instanceof Refused ? err.message : (err as Error).message;
    log.error('keeper', `not starting: ${why}`);
    process.stdout.write(`error ${why.replace(/\n/g, ' ')}\n`);
    return KEEPER_REFUSED_EXIT;
  }
}

/** keeper.lock: created exclusively; a record whose process is gone is stale and taken over. */
async function takeLock(dir: string, record: KeeperLockRecord): Promise<void> {
  const file = path.join(dir, KEEPER_LOCK);
  for (let attempt = 0; attempt < 5; attempt++) {
    try {
      const fd = openSync(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      writeSync(fd, `${JSON.stringify(record)}\n`);
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const holder = readLockRecord(dir);
    if (holder && (await isSameProcess(holder.pid, holder.startTime))) {
      throw new Refused(`another keeper (pid ${holder.pid}) keeps ${dir}`);
    }
    // Stale: moved aside first, so that of two newcomers only one removes it.
    const aside = `${file}.stale.${randomBytes(4).toString('hex')}`;
    try {
      renameSync(file, aside);
      unlinkSync(aside);
    } catch {
      // another newcomer won the rename: try again
    }
  }
  throw new Refused(`cannot take ${file}`);
}

function releaseLock(dir: string, instance: string): void {
  if (readLockRecord(dir)?.instance === instance) {
    try {
      unlinkSync(path.join(dir, KEEPER_LOCK));
    } catch {
      // gone
    }
  }
}

/** Binds a private name, then renames it onto the socket path: a bind never fails on a stale socket left behind. */
async function listen(server: net.Server, socketPath: string): Promise<void> {
  // (A private name in the same directory, reached the same way as the socket path itself.)
  const temp = path.join(path.dirname(socketPath), `.k${randomBytes(4).toString('hex')}`);
  const previous = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(temp, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(previous);
  }
  renameSync(temp, socketPath);
}

main().then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    process.stdout.write(`error ${(err as Error).message}\n`);
    process.exit(KEEPER_REFUSED_EXIT);
  },
);
