/**
 * Every daemon and child the peer benchmark starts is registered here, and killed with all its descendants on every
 * way out: a normal end, an error, SIGINT/SIGTERM/SIGHUP, an uncaught exception. Peers move their children out of
 * their own process group (tmux panes and supervisord children are session or group leaders), so a group kill would
 * miss them: the descendants are found by walking /proc's parent links, before anything is killed.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** pid → what it is, for the log line. */
const roots = new Map();
/** Async stoppers (graceful: a peer's own shutdown), run before the forced kill. */
const stoppers = new Set();

export function registerPid(pid, what) {
  if (pid) roots.set(pid, what);
}

export function unregisterPid(pid) {
  roots.delete(pid);
}

export function registerStopper(fn) {
  stoppers.add(fn);
  return () => stoppers.delete(fn);
}

function parentOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** Every live descendant of `pid` (children first found, then theirs), from one pass over /proc. */
export function descendantsOf(pid) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const p = Number(name);
    const parent = parentOf(p);
    if (parent === undefined) continue;
    if (!children.has(parent)) children.set(parent, []);
    children.get(parent).push(p);
  }
  const out = [];
  const queue = [pid];
  while (queue.length > 0) {
    for (const c of children.get(queue.shift()) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/**
 * SIGKILLs every registered pid and its descendants, synchronously (usable from an 'exit' handler). Returns what it
 * killed, as "<what> and <n> descendants" strings: empty when everything had already stopped as it should.
 */
export function killAllNow() {
  const killed = [];
  for (const [pid, what] of roots) {
    const victims = alive(pid) ? [pid, ...descendantsOf(pid)] : [];
    let n = 0;
    for (const v of victims) {
      try {
        process.kill(v, 'SIGKILL');
        n++;
      } catch {}
    }
    if (n > 0) killed.push(`${what} (pid ${pid}) and ${n - 1} descendants`);
    roots.delete(pid);
  }
  return killed;
}

/** Graceful stoppers first (bounded), then the forced kill. */
export async function cleanupAll() {
  for (const fn of [...stoppers]) {
    stoppers.delete(fn);
    try {
      await Promise.race([fn(), new Promise((r) => setTimeout(r, 15_000).unref())]);
    } catch {}
  }
  return killAllNow();
}

let installed = false;
/** Installs the exit paths once. */
export function installCleanup(log) {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    const killed = killAllNow();
    if (killed.length > 0) log(`cleanup at exit: killed ${killed.join(', ')}`);
  });
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.once(sig, () => {
      log(`${sig}: stopping every peer daemon and child`);
      cleanupAll().finally(() => process.exit(130));
    });
  }
  process.on('uncaughtException', (err) => {
    log(`uncaught: ${err?.stack ?? err}`);
    cleanupAll().finally(() => process.exit(1));
  });
  process.on('unhandledRejection', (err) => {
    log(`unhandled rejection: ${err?.stack ?? err}`);
    cleanupAll().finally(() => process.exit(1));
  });
}
