/**
 * pm2 through its programmatic API (what `pm2 start` and `pm2 logs` use): its daemon (God) runs the children and
 * publishes their exits (`process:event` exit) and their output (`log:out`) on its bus, which the client subscribes
 * to. pm2 is installed into a cache outside the repository (PM2_CACHE, default ~/.cache/claustrum-bench/pm2), and
 * its daemon gets a private PM2_HOME, so neither touches the user's own pm2.
 *
 * Children are binaries run with `interpreter: 'none'`, `autorestart: false`, and output files `/dev/null` (the bus
 * still carries every chunk; only the disk writes are skipped, which favours pm2 a little).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { rssOf } from '../../lib/daemon.mjs';
import { withTimeout } from '../../lib/stats.mjs';
import { registerPid, registerStopper, unregisterPid } from '../cleanup.mjs';
import { streamEnd } from '../common.mjs';

const run = promisify(execFile);
export const PM2_CACHE = process.env.PM2_CACHE ?? path.join(os.homedir(), '.cache/claustrum-bench/pm2');
/** The major version installed when the cache is empty; the one found is reported with the results. */
const PM2_SPEC = 'pm2@7';

const p = (fn) => new Promise((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));

async function which(cmd) {
  const { stdout } = await run('sh', ['-c', `command -v ${cmd}`]);
  return stdout.trim();
}

let api;
let pm2Home;

export const pm2 = {
  key: 'pm2',
  label: 'pm2',
  async available(log) {
    const pkg = path.join(PM2_CACHE, 'node_modules/pm2/package.json');
    if (!existsSync(pkg)) {
      log(`pm2: installing ${PM2_SPEC} into ${PM2_CACHE} (outside the repository)`);
      mkdirSync(PM2_CACHE, { recursive: true });
      try {
        await run('npm', ['install', '--prefix', PM2_CACHE, '--no-audit', '--no-fund', '--no-save', PM2_SPEC], { timeout: 300_000 });
      } catch (err) {
        return {
          ok: false,
          why: `npm install ${PM2_SPEC} failed: ${String(err.stderr ?? err.message)
            .trim()
            .split('\n')
            .pop()}`,
        };
      }
    }
    return { ok: true, version: `pm2 ${JSON.parse(readFileSync(pkg, 'utf8')).version}` };
  },

  async start(dir) {
    if (api === undefined) {
      // pm2 reads PM2_HOME once, when it is loaded: one private home for the whole run.
      pm2Home = path.join(dir, 'pm2-home');
      process.env.PM2_HOME = pm2Home;
      api = createRequire(path.join(PM2_CACHE, 'package.json'))('pm2');
    }
    await p((cb) => api.connect(cb));
    const godPid = Number(readFileSync(path.join(pm2Home, 'pm2.pid'), 'utf8').trim());
    registerPid(godPid, 'pm2 daemon');
    const unstop = registerStopper(() => p((cb) => api.killDaemon(cb)).catch(() => {}));
    const bus = await p((cb) => api.launchBus(cb));

    const exitWaiters = new Map();
    const outputs = new Map();
    bus.on('process:event', (packet) => {
      if (packet.event !== 'exit') return;
      const w = exitWaiters.get(packet.process.name);
      if (w) {
        exitWaiters.delete(packet.process.name);
        w(packet);
      }
    });
    bus.on('log:out', (packet) => {
      const o = outputs.get(packet.process.name);
      if (o) {
        o.bytes += Buffer.byteLength(packet.data, 'utf8');
        o.last = performance.now();
      }
    });
    const exitOf = (name) => new Promise((resolve) => exitWaiters.set(name, resolve));
    const truePath = await which('true');
    const catPath = await which('cat');
    const sleepPath = await which('sleep');
    const app = (name, script, args = []) => ({
      name,
      script,
      args,
      interpreter: 'none',
      autorestart: false,
      out_file: '/dev/null',
      error_file: '/dev/null',
    });
    let seq = 0;
    const spawnTrue = async () => {
      const name = `t-${++seq}`;
      const exited = exitOf(name);
      const t0 = performance.now();
      await p((cb) => api.start(app(name, truePath), cb));
      await withTimeout(exited, 30_000, 'pm2 exit event of true');
      const ms = performance.now() - t0;
      // Deleted after the timing: a list that grows would slow every later start.
      await p((cb) => api.delete(name, cb));
      return ms;
    };
    await spawnTrue();
    return {
      pid: godPid,
      spawnTrue,
      async stream(child) {
        const name = `s-${++seq}`;
        const o = { bytes: 0, last: 0 };
        outputs.set(name, o);
        const exited = exitOf(name);
        const t0 = performance.now();
        await p((cb) => api.start(app(name, catPath, child.args), cb));
        const end = await streamEnd({
          exited: withTimeout(exited, 600_000, 'pm2 stream'),
          count: () => o.bytes,
          expected: child.total,
          lastByteAt: () => o.last,
        });
        outputs.delete(name);
        await p((cb) => api.delete(name, cb));
        return { seconds: (end - t0) / 1000, bytes: o.bytes };
      },
      async holdIdle(n) {
        const idleRss = rssOf(godPid);
        const t0 = performance.now();
        const apps = Array.from({ length: n }, (_, i) => app(`idle-${i}`, sleepPath, ['3600']));
        await p((cb) => api.start({ apps }, cb));
        return { idleRss, startSeconds: (performance.now() - t0) / 1000, rss: () => rssOf(godPid) };
      },
      async stop() {
        try {
          bus.close?.();
        } catch {}
        await p((cb) => api.killDaemon(cb)).catch(() => {});
        unstop();
        api.disconnect?.();
        try {
          process.kill(godPid, 0);
        } catch {
          unregisterPid(godPid);
        }
      },
    };
  },
};
