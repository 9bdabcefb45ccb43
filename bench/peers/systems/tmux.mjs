/**
 * tmux as a process supervisor, driven the way programs drive it: one control-mode client (`tmux -C attach`) that
 * sends commands and reads notifications. A spawn is `new-window -d <command>`; the child's exit is the window's close
 * notification; its output arrives as `%output %<pane> <octal-escaped bytes>` lines. The child writes into a
 * terminal, so `\n` arrives as `\r\n`: carriage returns are not counted as delivered bytes.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { rssOf } from '../../lib/daemon.mjs';
import { withTimeout } from '../../lib/stats.mjs';
import { registerPid, unregisterPid } from '../cleanup.mjs';
import { streamEnd } from '../common.mjs';

const run = promisify(execFile);

/** A shell-quoted command line (tmux hands it to /bin/sh). */
const shellLine = (argv) => argv.map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(' ');
/** A tmux command argument in double quotes. */
const tmuxArg = (s) => `"${s.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('$', '\\$')}"`;

/** True while `pid` runs (a zombie left for init to reap counts as gone). */
function alive(pid) {
  try {
    return !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** Decodes the payload of one %output line: `\ooo` octal escapes for control characters and backslash. */
function outputBytes(s) {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    if (s.charCodeAt(i) === 92 /* \ */) {
      const byte = Number.parseInt(s.slice(i + 1, i + 4), 8);
      i += 3;
      if (byte !== 13) n++;
    } else n++;
  }
  return n;
}

export const tmux = {
  key: 'tmux',
  label: 'tmux (control mode)',
  async available() {
    try {
      const { stdout } = await run('tmux', ['-V']);
      return { ok: true, version: stdout.trim() };
    } catch {
      return { ok: false, why: 'tmux is not installed (Debian: apt-get install tmux)' };
    }
  },

  async start(dir) {
    const sock = path.join(dir, 'tmux.sock');
    await run('tmux', ['-S', sock, '-f', '/dev/null', 'new-session', '-d', '-s', 'bench', '-x', '200', '-y', '50']);
    const pid = Number((await run('tmux', ['-S', sock, 'display-message', '-p', '#{pid}'])).stdout.trim());
    registerPid(pid, 'tmux server');
    // Windows must close when their command ends, whatever the user's defaults.
    await run('tmux', ['-S', sock, 'set-option', '-g', 'remain-on-exit', 'off']);
    const ctl = spawn('tmux', ['-S', sock, '-C', 'attach-session', '-t', 'bench'], { stdio: ['pipe', 'pipe', 'ignore'] });
    registerPid(ctl.pid, 'tmux control client');

    /** Pending command replies, in order; window close waiters and closes seen before anyone waited. */
    const replies = [];
    const closeWaiters = new Map();
    const closed = new Set();
    const paneOutput = new Map(); // pane id → { bytes, last }
    let block;
    let pending = '';
    ctl.stdout.setEncoding('latin1');
    ctl.stdout.on('data', (chunk) => {
      pending += chunk;
      let nl = pending.indexOf('\n');
      let start = 0;
      while (nl !== -1) {
        handle(pending.slice(start, nl));
        start = nl + 1;
        nl = pending.indexOf('\n', start);
      }
      pending = pending.slice(start);
    });
    function handle(line) {
      if (block !== undefined) {
        if (line.startsWith('%end ') || line.startsWith('%error ')) {
          const r = replies.shift();
          if (r) (line.startsWith('%end ') ? r.resolve : r.reject)(block);
          block = undefined;
        } else block.push(line);
        return;
      }
      if (line.startsWith('%begin ')) {
        block = [];
        return;
      }
      if (line.startsWith('%output ')) {
        const sp = line.indexOf(' ', 8);
        const pane = line.slice(8, sp);
        let o = paneOutput.get(pane);
        if (o === undefined) paneOutput.set(pane, (o = { bytes: 0, last: 0 }));
        o.bytes += outputBytes(line.slice(sp + 1));
        o.last = performance.now();
        return;
      }
      const m = /^%(?:unlinked-)?window-close (@\d+)/.exec(line);
      if (m) {
        const w = closeWaiters.get(m[1]);
        if (w) {
          closeWaiters.delete(m[1]);
          w();
        } else closed.add(m[1]);
      }
    }
    const command = (text) =>
      new Promise((resolve, reject) => {
        replies.push({ resolve, reject });
        ctl.stdin.write(`${text}\n`);
      });
    const closeOf = (win) =>
      new Promise((resolve) => {
        if (closed.delete(win)) resolve();
        else closeWaiters.set(win, resolve);
      });
    // The attach's own reply comes first.
    replies.push({ resolve: () => {}, reject: () => {} });
    await command('display-message -p ready');

    const newWindow = async (argv, onPane) => {
      const out = await command(`new-window -d -P -F "#{window_id} #{pane_id}" ${tmuxArg(shellLine(argv))}`);
      const [win, pane] = out[0].split(' ');
      onPane?.(pane);
      return win;
    };

    return {
      pid,
      async spawnTrue() {
        const t0 = performance.now();
        const win = await newWindow(['true']);
        await withTimeout(closeOf(win), 30_000, 'tmux window close');
        return performance.now() - t0;
      },
      async stream(child) {
        // Output is counted per pane as it arrives, also before the reply has named the pane.
        const t0 = performance.now();
        let pane;
        const win = await newWindow([child.command, ...child.args], (p) => (pane = p));
        const o = () => paneOutput.get(pane) ?? { bytes: 0, last: 0 };
        const end = await streamEnd({
          exited: withTimeout(closeOf(win), 600_000, 'tmux stream'),
          count: () => o().bytes,
          expected: child.total,
          lastByteAt: () => o().last,
        });
        const bytes = o().bytes;
        paneOutput.clear();
        return { seconds: (end - t0) / 1000, bytes };
      },
      async holdIdle(n) {
        const idleRss = rssOf(pid);
        const t0 = performance.now();
        const ws = [];
        for (let i = 0; i < n; i++) ws.push(newWindow(['sleep', '3600']));
        await Promise.all(ws);
        return { idleRss, startSeconds: (performance.now() - t0) / 1000, rss: () => rssOf(pid) };
      },
      async stop() {
        ctl.stdin.end();
        try {
          execFileSync('tmux', ['-S', sock, 'kill-server'], { stdio: 'ignore', timeout: 10_000 });
        } catch {}
        ctl.kill('SIGKILL');
        unregisterPid(ctl.pid);
        // kill-server SIGHUPs the panes and the server exits; whatever outlives 10 s goes with the forced cleanup.
        for (let i = 0; i < 100 && alive(pid); i++) await new Promise((r) => setTimeout(r, 100));
        if (!alive(pid)) unregisterPid(pid);
      },
    };
  },
};
