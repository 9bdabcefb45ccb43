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
  return {
    dir,
    socket,
    token,
    pid: proc.pid,
    logPath,
    proc,
    /** SIGTERM (graceful: children killed), then SIGKILL after 5 s; removes the directory. */
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
      }
      if (process.env.BENCH_KEEP_DAEMON_DIR) process.stderr.write(`kept ${dir}\n`);
      else rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Resident set size of a pid in bytes, from /proc/<pid>/status (VmRSS), or the peak (VmHWM). */
export function rssOf(pid, field = 'VmRSS') {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
  if (!m) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]) * 1024;
}

/** Resets the kernel's peak-RSS mark of a pid (clear_refs 5), so VmHWM measures from now. False if refused. */
export function resetPeakRss(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** CPU seconds (user + system) a pid has used so far, from /proc/<pid>/stat. */
export function cpuOf(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is the state (field 3); utime and stime are fields 14 and 15.
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}
const CLK_TCK = 100;
