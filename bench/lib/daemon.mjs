/**
 * Starts the built daemon (dist/cmd/claustrum.js -serve -foreground) as a separate process on a private socket in a
 * fresh 0700 temp directory, as an operator would run it. Its log goes to a file in that directory, not through a
 * pipe this process would have to drain while it measures.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, openSync, closeSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The built executable; CLAUSTRUM_BENCH_BIN points at another build (A/B comparisons while optimizing). */
export const BIN = process.env.CLAUSTRUM_BENCH_BIN ?? path.join(ROOT, 'dist/cmd/claustrum.js');

export function tempDir(prefix = 'clb-') {
  return mkdtempSync(path.join(tmpdir(), prefix));
}

/**
 * @param {{ args?: string[], env?: Record<string,string>, nodeArgs?: string[], bin?: string }} [opts]
 *   nodeArgs go to node before the script (profiling: --cpu-prof); by default BENCH_DAEMON_NODE_ARGS (split on
 *   spaces), so `BENCH_DAEMON_NODE_ARGS='--cpu-prof --cpu-prof-dir=/tmp/prof' BENCH_ONLY=12 node bench/run.mjs`
 *   profiles every daemon of a figure (each writes its profile when it exits).
 * @returns {Promise<Daemon>}
 */
export async function startDaemon(opts = {}) {
  const dir = tempDir();
  const socket = path.join(dir, 'rpc.sock');
  const token = `bench-${Math.random().toString(36).slice(2)}`;
  const tokenFile = path.join(dir, 'token-in');
  writeFileSync(tokenFile, token, { mode: 0o600 });
  const logPath = path.join(dir, 'daemon.log');
  const logFd = openSync(logPath, 'a', 0o600);
  const proc = spawn(
    process.execPath,
    [
      ...(opts.nodeArgs ?? process.env.BENCH_DAEMON_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      opts.bin ?? BIN,
      '-serve',
      '-foreground',
      '-socket',
      socket,
      '-token-file',
      tokenFile,
      ...(opts.args ?? []),
    ],
    {
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', 'pipe', logFd],
    },
  );
  closeSync(logFd);
  let out = '';
  await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`daemon did not come up: ${readFileSync(logPath, 'utf8')}`)), 15_000);
    proc.stdout.on('data', (d) => {
      out += d;
      if (out.includes('listening on')) {
        clearTimeout(timer);
        resolve();
      }
    });
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`daemon exited ${code}: ${readFileSync(logPath, 'utf8')}`));
    });
  });
  proc.stdout.resume();
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  // The keeper (src/keeper/) owns the children, their pipes and terminals, and writes the journal: the daemon says
  // hello to it before it listens, so its lock names it by now.
  const keeper = keeperOf(dir);
  if (!keeper) throw new Error(`daemon listens but no keeper runs in ${dir}/keeper`);
  return {
    dir,
    socket,
    token,
    pid: proc.pid,
    keeperPid: keeper.pid,
    /** The daemon and its keeper: what the system costs is the sum of both (rssOf, cpuOf and resetPeakRss take it). */
    pids: [proc.pid, keeper.pid],
    logPath,
    proc,
    /**
     * SIGTERM (graceful: children killed), then SIGKILL after 5 s; then the keeper, which leaves on its own once its
     * daemon stopped, is SIGTERMed and at last SIGKILLed if it lingers (a daemon that was SIGKILLed leaves it running);
     * removes the directory.
     */
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      await stopKeeper(keeper);
      if (process.env.BENCH_KEEP_DAEMON_DIR) process.stderr.write(`kept ${dir}\n`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The keeper a daemon directory's lock names, if that process runs: { pid, startTime }. */
export function keeperOf(dir) {
  let rec;
  try {
    rec = JSON.parse(readFileSync(path.join(dir, 'keeper', 'keeper.lock'), 'utf8'));
  } catch {
    return undefined;
  }
  return startTimeOf(rec.pid) === rec.startTime ? rec : undefined;
}

function startTimeOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return fields[0] === 'Z' ? undefined : fields[19];
  } catch {
    return undefined;
  }
}

async function stopKeeper(keeper) {
  const gone = async (ms) => {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (startTimeOf(keeper.pid) !== keeper.startTime) return true;
      await new Promise((r) => setTimeout(r, 20));
    }
    return startTimeOf(keeper.pid) !== keeper.startTime;
  };
  if (await gone(2000)) return;
  try {
    process.kill(keeper.pid, 'SIGTERM');
  } catch {
    return;
  }
  if (await gone(5000)) return;
  try {
    process.kill(keeper.pid, 'SIGKILL');
  } catch {
    // gone meanwhile
  }
}

/**
 * Resident set size in bytes, from /proc/<pid>/status (VmRSS), or the peak (VmHWM); of a pid or the sum over an array
 * of them (a daemon's `pids`: for VmHWM the sum of each one's peak, an upper bound of their peak together).
 */
export function rssOf(pid, field = 'VmRSS') {
  if (Array.isArray(pid)) return pid.reduce((t, p) => t + rssOf(p, field), 0);
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  if (!m) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Resets the kernel's peak-RSS mark of a pid (clear_refs 5), so VmHWM measures from now. False if refused. */
export function resetPeakRss(pid) {
  if (Array.isArray(pid)) return pid.map(resetPeakRss).every(Boolean);
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** CPU seconds (user + system) a pid (or the sum over an array of them) has used so far, from /proc/<pid>/stat. */
export function cpuOf(pid) {
  if (Array.isArray(pid)) return pid.reduce((t, p) => t + cpuOf(p), 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}
const CLK_TCK = 100;
