#!/usr/bin/env node
/**
 * `node bench/terminal.mjs`: the measurements behind docs/terminal-design.md (issue 13), on the built dist/.
 * Not part of `npm test`; one run takes about two minutes on a 2-core machine. Prints a table and writes
 * bench/terminal-results.json.
 *
 *   read       PTY output: read sizes and throughput of src/terminal/pty.ts against a pipe, same program, same run
 *   exit-tail  a 20 KB write then exit: output lost with node-pty's own spawn against src/terminal/pty.ts
 *   paste      1 MiB into a program that reads slowly / not at all: write calls and this process's CPU
 *   parse      @xterm/headless parse rate (ScreenModel) on real drawing output and on plain lines: MB/s, CPU ms/MiB
 *   serialize  snapshot time with 100, 1,000, 10,000 lines of scrollback (the addon alone, and complete)
 *   heap       heap per terminal: a model created and empty, a model holding 1,000 lines; the lazy keeper before
 *              any eviction holds none
 *
 *   BENCH_ONLY=read,heap   only these sections
 */
import { spawn as spawnChild } from 'node:child_process';
import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

if (typeof globalThis.gc !== 'function') {
  const child = spawnChild(process.execPath, ['--expose-gc', fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  child.on('exit', (code) => process.exit(code ?? 1));
} else {
  await main();
}

async function main() {
  const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const { spawnTerminal } = await import(path.join(ROOT, 'dist/src/terminal/pty.js'));
  const { ScreenModel } = await import(path.join(ROOT, 'dist/src/terminal/screen.js'));
  const { FrameCutter } = await import(path.join(ROOT, 'dist/src/terminal/cutter.js'));
  const { drawAltScreen } = await import(path.join(ROOT, 'test/fixtures/lib/drawing.mjs'));
  const { linesText } = await import(path.join(ROOT, 'test/fixtures/lib/lines.mjs'));
  const require = createRequire(path.join(ROOT, 'package.json'));
  const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',')) : undefined;
  const want = (name) => only === undefined || only.has(name);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'claustrum-term-bench-'));
  const results = { machine: { cpus: os.cpus().length, loadavg: os.loadavg(), node: process.version, at: new Date().toISOString() } };
  const MiB = 1024 * 1024;

  /** Runs a program on a terminal; resolves with its reads and its exit. */
  const onTerminal = (file, args, extra = {}) =>
    new Promise((resolve, reject) => {
      const reads = [];
      spawnTerminal({
        file,
        args,
        env: process.env,
        cols: 80,
        rows: 24,
        ...extra,
        onData: (b) => reads.push(b),
        onExit: (exit) => resolve({ reads, exit }),
      }).catch(reject);
    });

  if (want('read')) {
    const big = path.join(dir, 'big.txt');
    writeFileSync(big, linesText(64 * MiB));
    const t0 = performance.now();
    const { reads } = await onTerminal('/bin/cat', [big]);
    const ptyS = (performance.now() - t0) / 1000;
    const sizes = reads.map((r) => r.length).sort((a, b) => a - b);
    const total = sizes.reduce((a, b) => a + b, 0);
    const p0 = performance.now();
    const pipe = await new Promise((resolve) => {
      const sizes = [];
      const c = spawnChild('/bin/cat', [big], { stdio: ['ignore', 'pipe', 'ignore'] });
      c.stdout.on('data', (d) => sizes.push(d.length));
      c.on('close', () => resolve(sizes.sort((a, b) => a - b)));
    });
    const pipeS = (performance.now() - p0) / 1000;
    const pipeTotal = pipe.reduce((a, b) => a + b, 0);
    results.read = {
      bytes: total,
      pty: { mbPerS: total / ptyS / 1e6, reads: sizes.length, medianRead: sizes[sizes.length >> 1], meanRead: total / sizes.length },
      pipe: { mbPerS: pipeTotal / pipeS / 1e6, reads: pipe.length, medianRead: pipe[pipe.length >> 1], meanRead: pipeTotal / pipe.length },
    };
  }

  if (want('exit-tail')) {
    const file = path.join(dir, 'twenty.txt');
    const expected = linesText(20 * 1024).toString();
    writeFileSync(file, expected);
    const nodePty = require('@lydell/node-pty');
    const viaNodePty = (f, a) =>
      new Promise((resolve) => {
        const chunks = [];
        const t = nodePty.spawn(f, a, { cols: 80, rows: 24, encoding: null });
        t.onData((d) => chunks.push(Buffer.from(d)));
        t.onExit(() => resolve(Buffer.concat(chunks).toString().replace(/\r\n/g, '\n')));
      });
    const viaOurs = async (f, a) => {
      const { reads } = await onTerminal(f, a);
      return Buffer.concat(reads).toString().replace(/\r\n/g, '\n');
    };
    const count = async (fn, f, a, runs) => {
      let lost = 0;
      for (let i = 0; i < runs; i++) if ((await fn(f, a)) !== expected) lost++;
      return { runs, lost };
    };
    const fixture = path.join(ROOT, 'test/fixtures/write-then-exit.mjs');
    results.exitTail = {
      cat: { nodePty: await count(viaNodePty, '/bin/cat', [file], 100), ours: await count(viaOurs, '/bin/cat', [file], 100) },
      node: {
        nodePty: await count(viaNodePty, process.execPath, [fixture, '20480'], 30),
        ours: await count(viaOurs, process.execPath, [fixture, '20480'], 30),
      },
    };
  }

  if (want('paste')) {
    const paste = Buffer.alloc(MiB, 0x61);
    const hash = createHash('sha256').update(paste).digest('hex');
    const pasteInto = async (args, label) => {
      let text = '';
      let resolveReady;
      const ready = new Promise((r) => (resolveReady = r));
      let resolveDone;
      const done = new Promise((r) => (resolveDone = r));
      const term = await spawnTerminal({
        file: process.execPath,
        args: [path.join(ROOT, 'test/fixtures/read-slowly.mjs'), String(MiB), ...args],
        env: process.env,
        cols: 80,
        rows: 24,
        onData: (b) => {
          text += b;
          if (text.includes('ready')) resolveReady();
        },
        onExit: () => resolveDone(),
      });
      await ready;
      const cpu = process.cpuUsage();
      const t0 = performance.now();
      term.write(paste);
      while (!text.includes('got ')) await sleep(5);
      const ms = performance.now() - t0;
      const used = process.cpuUsage(cpu);
      await done;
      return { label, ms, cpuMs: (used.user + used.system) / 1000, writeCalls: term.writeCalls, intact: text.includes(hash) };
    };
    results.paste = [
      await pasteInto(['0', '65536', '20'], 'reads 64 KiB then pauses 20 ms'),
      await pasteInto(['2000', String(MiB), '0'], 'reads nothing for 2 s, then everything'),
    ];
  }

  const parseRate = async (bytes, label) => {
    // Fed as the supervisor would: reads of about 4 KB, cut.
    const cutter = new FrameCutter();
    const pieces = [];
    for (let at = 0; at < bytes.length; at += 4095) pieces.push(...cutter.push(bytes.subarray(at, at + 4095)));
    const tail = cutter.flush();
    if (tail) pieces.push(tail);
    const model = new ScreenModel({ cols: 80, rows: 24 });
    const cpu = process.cpuUsage();
    const t0 = performance.now();
    for (const [i, p] of pieces.entries()) model.output(i + 1, p.data, p.clean);
    await model.whenParsed();
    const s = (performance.now() - t0) / 1000;
    const used = process.cpuUsage(cpu);
    model.dispose();
    return { label, mb: bytes.length / 1e6, mbPerS: bytes.length / s / 1e6, cpuMsPerMiB: (used.user + used.system) / 1000 / (bytes.length / MiB) };
  };

  if (want('parse')) {
    const drawing = drawAltScreen({ seed: 5, steps: 60000, stay: true }).bytes;
    results.parse = [await parseRate(drawing, 'draw-alt-screen output'), await parseRate(linesText(16 * MiB), 'plain numbered lines')];
  }

  if (want('serialize')) {
    const { SerializeAddon } = require('@xterm/addon-serialize');
    results.serialize = [];
    for (const lines of [100, 1000, 10000]) {
      const model = new ScreenModel({ cols: 80, rows: 24, scrollbackLines: lines, scrollbackBytes: 1 << 30, snapshotMaxBytes: 1 << 30 });
      const text = Array.from(
        { length: lines + 24 },
        (_, i) => `\x1b[3${i % 8}mline ${String(i).padStart(6, '0')} \x1b[1m${'lorem ipsum '.repeat(5)}\x1b[0m`,
      ).join('\r\n');
      model.output(1, Buffer.from(text), true);
      await model.whenParsed();
      const addon = new SerializeAddon();
      model.terminal.loadAddon(addon);
      const a0 = performance.now();
      const plain = addon.serialize({ scrollback: lines });
      const addonMs = performance.now() - a0;
      const s0 = performance.now();
      const snap = await model.snapshot();
      const snapshotMs = performance.now() - s0;
      results.serialize.push({ lines, addonMs, snapshotMs, bytes: Buffer.byteLength(snap.data), addonBytes: Buffer.byteLength(plain) });
      model.dispose();
    }
  }

  if (want('heap')) {
    const measure = async (make, n = 100) => {
      const keep = [];
      globalThis.gc();
      await sleep(50);
      globalThis.gc();
      const before = process.memoryUsage().heapUsed;
      for (let i = 0; i < n; i++) keep.push(await make());
      globalThis.gc();
      await sleep(50);
      globalThis.gc();
      const per = (process.memoryUsage().heapUsed - before) / n;
      for (const m of keep) m.dispose?.();
      return per;
    };
    const filled = async (lines) => {
      const m = new ScreenModel({ cols: 80, rows: 24, scrollbackLines: lines });
      m.output(1, Buffer.from(Array.from({ length: lines + 24 }, (_, i) => `\x1b[32mline ${i} ${'x'.repeat(60)}\x1b[0m`).join('\r\n')), true);
      await m.whenParsed();
      return m;
    };
    results.heap = {
      emptyModelBytes: await measure(async () => new ScreenModel({ cols: 80, rows: 24 })),
      model1000LinesBytes: await measure(() => filled(1000)),
      model100LinesBytes: await measure(() => filled(100)),
    };
  }

  await rm(dir, { recursive: true, force: true });
  writeFileSync(path.join(ROOT, 'bench/terminal-results.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log(JSON.stringify(results, null, 2));
}
