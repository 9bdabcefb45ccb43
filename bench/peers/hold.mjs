/**
 * The physical baseline for idle children: a fresh Node process that spawns `n` `sleep 3600` children with
 * `child_process.spawn` (stdio pipes, as a supervisor keeps them) and holds them. argv: <n>. Prints one JSON line
 * {idleRss, rss: [3 samples], startSeconds} and waits for SIGTERM, on which it kills its children and exits.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const n = Number(process.argv[2]);
const rss = () => Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))[1]) * 1024;
const children = [];
process.on('SIGTERM', () => {
  for (const c of children) c.kill('SIGKILL');
  process.exit(0);
});
await new Promise((r) => setTimeout(r, 200));
const idleRss = rss();
const t0 = performance.now();
for (let i = 0; i < n; i++) {
  const c = spawn('sleep', ['3600'], { stdio: ['pipe', 'pipe', 'pipe'] });
  c.stdout.on('data', () => {});
  c.stderr.on('data', () => {});
  children.push(c);
}
await Promise.all(children.map((c) => new Promise((r) => (c.pid ? r() : c.once('spawn', r)))));
const startSeconds = (performance.now() - t0) / 1000;
const samples = [];
for (let i = 0; i < 3; i++) {
  await new Promise((r) => setTimeout(r, 500));
  samples.push(rss());
}
process.stdout.write(`${JSON.stringify({ idleRss, rss: samples, startSeconds })}\n`);
setInterval(() => {}, 1 << 30);
