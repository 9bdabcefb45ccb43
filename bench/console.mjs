/**
 * What the browser console costs a flooding child's owner (issue 17): the owner's throughput with the console open
 * on the process (a headless Chromium page observing it and following its log view) against the console open on
 * the list only, in the same run. A child waits for "go" on stdin, then writes `total` bytes of text lines (base64 of
 * random bytes, 76 columns, as a log would look); the owner decodes every frame over MessagePack. Rounds alternate
 * the two conditions, one warm-up round is not counted, and the ratio is the median of per-round ratios.
 *
 * Needs the built package and Debian's chromium (CLAUSTRUM_CHROMIUM names another binary):
 *   npm run build && node bench/console.mjs [--runs 5] [--mib 64]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { connect } from './lib/client.mjs';
import { startDaemon, tempDir } from './lib/daemon.mjs';
import { median, MiB, sleep, withTimeout } from './lib/stats.mjs';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const RUNS = arg('runs', 5);
const TOTAL = arg('mib', 64) * MiB;
const CHROMIUM = process.env.CLAUSTRUM_CHROMIUM ?? '/usr/bin/chromium';

/** A text file of `size` bytes: 76-column base64 lines. */
function textFile(dir, size) {
  const file = path.join(dir, 'log.txt');
  const b64 = randomBytes(Math.ceil((size * 3) / 4)).toString('base64');
  let out = '';
  for (let at = 0; out.length < size; at += 76) out += `${b64.slice(at, at + 76)}\n`;
  writeFileSync(file, out.slice(0, size));
  return file;
}

/** CPU seconds (user + system) used so far by the browser started with `profile` and every process under it. */
function browserCpu(profile) {
  const procs = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const cmd = readFileSync(`/proc/${name}/cmdline`, 'utf8');
      procs.push({
        pid: Number(name),
        ppid: Number(f[1]),
        ticks: Number(f[11]) + Number(f[12]),
        root: cmd.includes(profile) && !cmd.includes('--type='),
      });
    } catch {
      // gone meanwhile
    }
  }
  const inTree = new Set(procs.filter((p) => p.root).map((p) => p.pid));
  for (let grew = true; grew; ) {
    grew = false;
    for (const p of procs) if (!inTree.has(p.pid) && inTree.has(p.ppid)) grew = inTree.add(p.pid) !== undefined;
  }
  // Clock ticks are 1/100 s on Linux.
  return procs.filter((p) => inTree.has(p.pid)).reduce((t, p) => t + p.ticks, 0) / 100;
}

const dir = tempDir('clb-console-');
const fileSize = Math.min(TOTAL, 16 * MiB);
if (TOTAL % fileSize !== 0) throw new Error('--mib must be a multiple of 16 above 16');
const file = textFile(dir, fileSize);
const copies = Array.from({ length: TOTAL / fileSize }, () => `'${file}'`).join(' ');
const daemon = await startDaemon({ args: ['-ws-addr', '127.0.0.1:0', '-console'] });
const port = Number(/websocket: serving ws:\/\/127\.0\.0\.1:(\d+)\/rpc/.exec(readFileSync(path.join(daemon.dir, 'daemon.log'), 'utf8'))?.[1]);
const profile = mkdtempSync(path.join(tmpdir(), 'clb-chromium-'));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: CHROMIUM,
  headless: true,
  viewport: { width: 1280, height: 720 },
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
  ],
});
const page = await context.newPage();
await page.goto(`http://127.0.0.1:${port}/`);
await page.getByLabel('Token').fill(daemon.token);
await page.getByRole('button', { name: 'Connect' }).click();
await page.locator('#filter').waitFor();

const rates = { list: [], console: [] };
const cpu = { list: [], console: [] };
const ratios = [];
const pageRates = [];
let n = 0;
try {
  for (let round = 0; round <= RUNS; round++) {
    const rate = {};
    for (const cond of ['list', 'console']) {
      const id = `flood-${++n}`;
      const owner = await connect({ wire: 'msgpack', socket: daemon.socket, token: daemon.token });
      let bytes = 0;
      const done = new Promise((resolve) =>
        owner.watch(id, (f) => {
          if (f.stream === 'exit') resolve();
          else bytes += f.data.length;
        }),
      );
      await owner.call('process.spawn', { id, command: 'sh', args: ['-c', `read go; exec cat ${copies}`] });
      let frames0 = 0;
      if (cond === 'console') {
        await page.locator(`tr[data-id="${id}"]`).click({ timeout: 10_000 });
        await page.locator('#view-state', { hasText: 'observing' }).waitFor({ timeout: 10_000 });
        frames0 = Number(await page.locator('#view').getAttribute('data-frames'));
      } else {
        await sleep(1200); // the list has shown it, as on the console's side
      }
      const cpu0 = browserCpu(profile);
      const t0 = performance.now();
      await owner.call('process.stdin', { id, data: Buffer.from('go\n'), offset: 0 });
      await withTimeout(done, 300_000, `flood under ${cond}`);
      const seconds = (performance.now() - t0) / 1000;
      const browserShare = (browserCpu(profile) - cpu0) / seconds;
      if (round > 0) cpu[cond].push(browserShare);
      if (bytes !== TOTAL) throw new Error(`owner decoded ${bytes} of ${TOTAL} bytes under ${cond}`);
      rate[cond] = TOTAL / seconds;
      if (cond === 'console') {
        await sleep(600); // the page's counters are refreshed twice a second
        pageRates.push((Number(await page.locator('#view').getAttribute('data-frames')) - frames0) / seconds);
      }
      await owner.close();
      process.stderr.write(`round ${round} ${cond}: ${(rate[cond] / MiB).toFixed(1)} MiB/s, browser ${browserShare.toFixed(2)} cores\n`);
    }
    if (round === 0) continue;
    rates.list.push(rate.list);
    rates.console.push(rate.console);
    ratios.push(rate.console / rate.list);
  }
} finally {
  await context.close();
  await daemon.stop();
  rmSync(profile, { recursive: true, force: true });
  rmSync(dir, { recursive: true, force: true });
}
const result = {
  totalMiB: TOTAL / MiB,
  runs: RUNS,
  ownerMiBps: { consoleOnList: median(rates.list) / MiB, consoleObserving: median(rates.console) / MiB },
  ratio: median(ratios),
  ratios,
  pageFramesPerSecond: median(pageRates),
  /** Cores the browser (all its processes) used while the child wrote. */
  browserCores: { consoleOnList: median(cpu.list), consoleObserving: median(cpu.console) },
};
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
