/**
 * Figure 7: isolation. One child floods its connected client (a separate process reading and decoding as fast as
 * it can); meanwhile, on a second connection, `server.ping` round trips (p99 per round) and, for a series of second
 * children (`sleep`), the time from `process.kill` to their exit frame.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '../lib/client.mjs';
import { startDaemon } from '../lib/daemon.mjs';
import { median, MiB, percentile, withTimeout } from '../lib/stats.mjs';
import { pingRound } from './many.mjs';

const READER = path.join(path.dirname(fileURLToPath(import.meta.url)), '../lib/flood-reader.mjs');

/** @param {{ runs: number, pings: number, kills: number, log: (s: string) => void }} o */
export async function measureIsolation(o) {
  const daemon = await startDaemon();
  const reader = spawn(process.execPath, [READER, daemon.socket, daemon.token, 'flood'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  reader.stdout.on('data', (d) => (out += d));
  try {
    await withTimeout(
      new Promise((resolve, reject) => {
        reader.stdout.on('data', () => out.includes('ready') && resolve());
        reader.once('exit', (code) => reject(new Error(`flood reader exited ${code}`)));
      }),
      20_000,
      'flood to start',
    );
    const c = await connect({ wire: 'ndjson', socket: daemon.socket, token: daemon.token });
    await pingRound(c, 20);
    const rounds = [];
    let n = 0;
    for (let r = 0; r < o.runs; r++) {
      const ping = await pingRound(c, o.pings);
      const kills = [];
      for (let k = 0; k < o.kills; k++) {
        const id = `victim-${n++}`;
        await c.call('process.spawn', { id, command: 'sleep', args: ['3600'] });
        const exit = c.waitExit(id);
        const t0 = performance.now();
        await c.call('process.kill', { id, signal: 'SIGKILL' });
        const f = await withTimeout(exit, 10_000, 'exit frame after kill');
        kills.push(performance.now() - t0);
        if (f.signal !== 'SIGKILL') throw new Error(`victim ended by ${f.signal}`);
      }
      const round = { pingP50: ping.p50, pingP99: ping.p99, killP50: percentile(kills, 50), killMax: Math.max(...kills) };
      rounds.push(round);
      o.log(
        `  round ${r + 1}: ping p50 ${ping.p50.toFixed(3)} ms p99 ${ping.p99.toFixed(3)} ms; kill→exit frame p50 ${round.killP50.toFixed(2)} ms max ${round.killMax.toFixed(2)} ms`,
      );
    }
    await c.close();
    reader.kill('SIGTERM');
    await new Promise((r) => reader.once('exit', r));
    const flood = JSON.parse(out.slice(out.indexOf('{')));
    o.log(`  the flood meanwhile: ${(flood.bytes / MiB / flood.seconds).toFixed(0)} MiB/s decoded by its client`);
    return {
      pingP99: median(rounds.map((x) => x.pingP99)),
      pingP50: median(rounds.map((x) => x.pingP50)),
      killMs: median(rounds.map((x) => x.killP50)),
      killMax: Math.max(...rounds.map((x) => x.killMax)),
      floodMiBps: flood.bytes / MiB / flood.seconds,
      rounds,
    };
  } finally {
    if (reader.exitCode === null) reader.kill('SIGKILL');
    await daemon.stop();
  }
}
