/**
 * supervisord (Debian's `supervisor`) driven over its XML-RPC interface on a private Unix socket, as supervisorctl
 * and its API clients drive it. Programs must be in its configuration, so the benchmark writes one with the programs
 * it needs: `true` × 32 (restartable after they exit), the text writer, and `sleep` × the idle count
 * (numprocs). A spawn is `supervisor.startProcess` (it forks before it answers); the exit is seen by polling
 * `supervisor.getAllProcessInfo` every EXIT_POLL_MS while anyone waits. (An event listener for PROCESS_STATE_EXITED,
 * supervisord's push mechanism, was tried first: its events reach the listener on the next turn of supervisord's main
 * loop, whose poll timeout is 1 s, so every spawn measured about 1,030 ms.) Output goes to the program's log file and
 * reaches the subscriber through supervisord's HTTP `/logtail/<name>/stdout`, the stream `supervisorctl tail -f`
 * reads.
 */
import { execFile, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { rssOf } from '../../lib/daemon.mjs';
import { sleep, withTimeout } from '../../lib/stats.mjs';
import { registerPid, unregisterPid } from '../cleanup.mjs';
import { streamEnd } from '../common.mjs';

const run = promisify(execFile);
/** How often the exit poller asks while a spawn waits: fine enough not to dominate a spawn of a few ms. */
const EXIT_POLL_MS = 2;
/** Programs of `true` that can be started at once: the widest in-flight count measured. */
const TRUE_SLOTS = 32;

const xmlEscape = (s) => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;');
const xmlValue = (v) => (typeof v === 'boolean' ? `<boolean>${v ? 1 : 0}</boolean>` : `<string>${xmlEscape(String(v))}</string>`);

export const supervisord = {
  key: 'supervisord',
  label: 'supervisord',
  async available() {
    try {
      const { stdout } = await run('supervisord', ['--version']);
      return { ok: true, version: `supervisord ${stdout.trim()}` };
    } catch {
      return { ok: false, why: 'supervisord is not installed (Debian: apt-get install supervisor)' };
    }
  },

  /** @param {string} dir @param {{ child: { args: string[] }, idle: number }} o */
  async start(dir, o) {
    const sock = path.join(dir, 'supervisor.sock');
    const outLog = path.join(dir, 'out.log');
    const conf = path.join(dir, 'supervisord.conf');
    const q = (argv) => argv.map((a) => `"${a}"`).join(' ');
    writeFileSync(
      conf,
      `[unix_http_server]
file=${sock}

[supervisord]
nodaemon=true
logfile=${path.join(dir, 'supervisord.log')}
pidfile=${path.join(dir, 'supervisord.pid')}
childlogdir=${dir}
minfds=${Math.max(1024, 4 * o.idle + 256)}
loglevel=warn

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[program:t]
command=true
process_name=t_%(process_num)02d
numprocs=${TRUE_SLOTS}
autostart=false
autorestart=false
startsecs=0
startretries=0
stdout_logfile=NONE
stderr_logfile=NONE

[program:out]
command=cat ${q(o.child.args)}
autostart=false
autorestart=false
startsecs=0
stdout_logfile=${outLog}
stdout_logfile_maxbytes=0
stdout_logfile_backups=0
stderr_logfile=NONE

[program:idle]
command=sleep 3600
process_name=idle_%(process_num)04d
numprocs=${o.idle}
autostart=false
autorestart=false
startsecs=0
stdout_logfile=NONE
stderr_logfile=NONE

`,
    );
    const proc = spawn('supervisord', ['-c', conf, '-n'], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    registerPid(proc.pid, 'supervisord');
    let stderr = '';
    proc.stderr.on('data', (d) => (stderr += d));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const call = (method, ...params) =>
      new Promise((resolve, reject) => {
        const body = `<?xml version="1.0"?><methodCall><methodName>${method}</methodName><params>${params.map((v) => `<param><value>${xmlValue(v)}</value></param>`).join('')}</params></methodCall>`;
        const req = http.request(
          {
            socketPath: sock,
            path: '/RPC2',
            method: 'POST',
            agent,
            headers: { 'content-type': 'text/xml', 'content-length': Buffer.byteLength(body) },
          },
          (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (d) => (text += d));
            res.on('end', () =>
              text.includes('<fault>') ? reject(new Error(`${method}: ${text.replace(/\s+/g, ' ').slice(0, 300)}`)) : resolve(text),
            );
          },
        );
        req.on('error', reject);
        req.end(body);
      });
    // Up when the socket answers.
    for (let i = 0; ; i++) {
      try {
        await call('supervisor.getState');
        break;
      } catch (err) {
        if (proc.exitCode !== null || i > 300) throw new Error(`supervisord did not come up: ${stderr.trim() || err.message}`);
        await sleep(50);
      }
    }
    // One poller for every waiter. A waiter registers after startProcess has answered, when its process is STARTING
    // (supervisord forks inside the call), and takes only answers to polls sent after that: an answer already under
    // way may still show the previous run's EXITED.
    const exitWaiters = new Map();
    let polls = 0;
    let polling = false;
    const poll = async () => {
      if (polling) return;
      polling = true;
      try {
        while (exitWaiters.size > 0) {
          const sent = ++polls;
          const info = await call('supervisor.getAllProcessInfo');
          for (const struct of info.split('<struct>').slice(1)) {
            const field = (f) => new RegExp(`<name>${f}</name>\\s*<value><string>([^<]*)</string>`).exec(struct)?.[1];
            const key = `${field('group')}:${field('name')}`;
            const w = exitWaiters.get(key);
            const state = field('statename');
            if (w && sent > w.since && (state === 'EXITED' || state === 'FATAL' || state === 'BACKOFF')) {
              exitWaiters.delete(key);
              w.resolve(state);
            }
          }
          await sleep(EXIT_POLL_MS);
        }
      } finally {
        polling = false;
      }
    };
    const exitOf = (name) => {
      const p = new Promise((resolve) => exitWaiters.set(name, { resolve, since: polls }));
      void poll();
      return p;
    };
    const slots = Array.from({ length: TRUE_SLOTS }, (_, i) => `t:t_${String(i).padStart(2, '0')}`);
    const spawnTrueIn = async (slot) => {
      const t0 = performance.now();
      await call('supervisor.startProcess', slot, false);
      const state = await withTimeout(exitOf(slot), 30_000, 'supervisord: exit of true');
      if (state !== 'EXITED') throw new Error(`true ended ${state}`);
      return performance.now() - t0;
    };
    await spawnTrueIn(slots[0]);
    return {
      pid: proc.pid,
      spawnTrue: () => spawnTrueIn(slots[0]),
      /** Spawns use one slot each; `spawnMany` hands out slots so no two runs share one. */
      slots,
      spawnTrueIn,
      async stream(child) {
        // The log file exists and is empty before the tail starts, so the tail reads it from its first byte.
        closeSync(openSync(outLog, 'w'));
        const o = { bytes: 0, last: 0 };
        const tail = http.get({ socketPath: sock, path: '/logtail/out/stdout' }, (res) => {
          res.on('data', (d) => {
            o.bytes += d.length;
            o.last = performance.now();
          });
        });
        tail.on('error', () => {});
        await sleep(300); // the tail is connected and positioned
        const t0 = performance.now();
        await call('supervisor.startProcess', 'out', false);
        const exited = exitOf('out:out');
        const end = await streamEnd({
          exited: withTimeout(exited, 600_000, 'supervisord stream'),
          count: () => o.bytes,
          expected: child.total,
          lastByteAt: () => o.last,
        });
        tail.destroy();
        return { seconds: (end - t0) / 1000, bytes: o.bytes };
      },
      async holdIdle(n) {
        const idleRss = rssOf(proc.pid);
        const t0 = performance.now();
        await call('supervisor.startProcessGroup', 'idle', false);
        for (;;) {
          const info = await call('supervisor.getAllProcessInfo');
          const running = (info.match(/<name>statename<\/name>\s*<value><string>RUNNING<\/string>/g) ?? []).length;
          if (running >= n) break;
          await sleep(100);
        }
        return { idleRss, startSeconds: (performance.now() - t0) / 1000, rss: () => rssOf(proc.pid) };
      },
      async stop() {
        agent.destroy();
        if (proc.exitCode === null) {
          const exited = new Promise((r) => proc.once('exit', r));
          proc.kill('SIGTERM'); // supervisord stops every child, then exits
          await Promise.race([exited, sleep(20_000)]);
        }
        if (proc.exitCode !== null || proc.signalCode !== null) unregisterPid(proc.pid);
      },
      logTail: () => readFileSync(path.join(dir, 'supervisord.log'), 'utf8').slice(-2000),
    };
  },
};
