/**
 * The client library against a real daemon and real children: methods, the process handle's events and
 * iterables, stdin offsets and EOF, attach, close semantics, the token file, and starting a daemon on demand.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ClosedError, ConnectError, connect, RpcError, type Client, type OutputItem } from '../../src/client/index.js';
import { BIN, Daemon, fixture, ROOT, tempDir, until } from '../helpers/daemon.js';
import { collect, patternMismatch } from './util.js';
import { processLive } from '../helpers/procfs.js';

const run = promisify(execFile);

describe('client library', () => {
  let d: Daemon;
  let client: Client;
  beforeAll(async () => {
    d = await Daemon.start();
    // No token given: it is read from daemon.token beside the socket.
    client = await connect({ socket: d.socket });
  });
  afterAll(async () => {
    await client?.close();
    await d?.stop();
  });

  it('pings and reads capabilities', async () => {
    expect(await client.ping()).toEqual({ pong: true });
    const caps = await client.capabilities();
    expect(caps.methods).toContain('process.reattach');
    expect(client.instanceId).toBe(caps.instanceId);
    expect(client.serverCapabilities?.features).toContain('process.stdin.eof');
  });

  it('delivers stdout, stderr and exit as events, iterables and the combined output, in seq order', async () => {
    const proc = client.spawn({ command: 'sh', args: ['-c', 'printf one; printf two >&2; printf three; exit 3'] });
    const events: string[] = [];
    proc.on('stdout', (b, seq) => events.push(`${seq}:out:${b}`));
    proc.on('stderr', (b, seq) => events.push(`${seq}:err:${b}`));
    const stdout = collect(proc.stdout);
    const stderr = collect(proc.stderr);
    const items: OutputItem[] = [];
    for await (const item of proc.output()) items.push(item);
    const exit = await proc.exited;
    expect(exit).toMatchObject({ processId: proc.id, exitCode: 3, status: 3, gaps: [] });
    expect((await stdout).toString()).toBe('onethree');
    expect((await stderr).toString()).toBe('two');
    // Frame boundaries are the daemon's to choose; the bytes per stream and the seq order are not.
    const seqs = items.map((i) => (i.type === 'gap' ? -1 : i.seq));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(exit.seq).toBe(Math.max(...seqs) + 1);
    expect(events.map((e) => Number(e.split(':')[0]))).toEqual(seqs);
  });

  it('reports a signal death as 128 + the signal number', async () => {
    const proc = client.spawn({ command: 'sh', args: ['-c', 'kill -TERM $$'] });
    const exit = await proc.exited;
    expect(exit).toMatchObject({ exitCode: -1, signal: 'SIGTERM', status: 143 });
  });

  it('writes stdin with offsets it assigns, and end() closes it', async () => {
    const proc = client.spawn({ command: 'cat' });
    const out = collect(proc.stdout);
    const a = proc.write('alpha\n');
    const b = proc.write(Buffer.from('beta\n'));
    // Bigger than one request's chunk: split, each piece at its own offset.
    const big = Buffer.alloc(700_000, 'x');
    const c = proc.write(big);
    await proc.end('omega\n');
    expect(await a).toBeGreaterThanOrEqual(6);
    expect(await b).toBeGreaterThanOrEqual(11);
    expect(await c).toBeGreaterThanOrEqual(11 + big.length);
    expect((await proc.exited).status).toBe(0);
    expect((await out).equals(Buffer.concat([Buffer.from('alpha\nbeta\n'), big, Buffer.from('omega\n')]))).toBe(true);
    expect(proc.stdinApplied).toBe(11 + big.length + 6);
    await expect(proc.write('late')).rejects.toThrow();
  });

  it('gives pid and startTime with wantPid, and kills', async () => {
    const proc = client.spawn({ command: 'sleep', args: ['30'], wantPid: true });
    await proc.ready;
    expect(proc.pid).toBeGreaterThan(0);
    expect(processLive(proc.pid!)).toBe(true);
    expect(typeof proc.startTime).toBe('number');
    const r = await proc.killAndWait({ signal: 'TERM', timeoutMs: 5000 });
    expect(r).toMatchObject({ found: true, died: true });
    expect(await proc.exited).toMatchObject({ signal: 'SIGTERM', killedBy: 'client', status: 143 });
  });

  it('rejects ready and exited with the daemon error when a spawn fails', async () => {
    const proc = client.spawn({ command: 'no-such-command-claustrum' });
    const err = await proc.ready.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).rpcCode).toBe(-32603);
    expect((err as RpcError).message).toBe('exec: "no-such-command-claustrum": executable file not found in $PATH');
    await expect(proc.exited).rejects.toBe(err);
    await expect(collect(proc.stdout)).rejects.toBe(err);
  });

  it('refuses to hold one id twice', () => {
    const proc = client.spawn({ id: 'dup-id', command: 'true' });
    expect(() => client.spawn({ id: 'dup-id', command: 'true' })).toThrow(/already held/);
    return proc.exited;
  });

  it('passes other methods through call()', async () => {
    expect(await client.call('server.ping')).toEqual({ pong: true });
    const err = await client.call('nope.method', {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).message).toBe('Unknown namespace: nope');
  });

  it('attach() from a new client replays what the process printed, then follows it live', async () => {
    const first = await connect({ socket: d.socket });
    const proc = first.spawn({ ...fixture('pattern-echo', '512'), wantPid: true });
    await proc.ready;
    await proc.write('hi');
    await until(() => proc.lastSeq >= 3, 10_000, 'some output');
    // The first client lets go (the process runs on); a second one takes it over from seq 0.
    await first.close();
    await expect(proc.exited).rejects.toBeInstanceOf(ClosedError);
    const second = await connect({ socket: d.socket });
    try {
      const again = second.attach(proc.id, { wantPid: true });
      const out = collect(again.stdout);
      // Written before the attach answered: queued, then sent after the 2 bytes the first client wrote.
      const bye = again.end('bye');
      await again.ready;
      expect(again.pid).toBe(proc.pid);
      await bye;
      expect(again.stdinApplied).toBe(5);
      const exit = await again.exited;
      expect(exit.status).toBe(0);
      const text = (await out).toString('latin1');
      const m = /\nSTDIN 5 ([0-9a-f]{64})\nPATTERN (\d+)\n$/.exec(text);
      expect(m, text.slice(-200)).not.toBeNull();
      expect(m![1]).toBe(createHash('sha256').update('hibye').digest('hex'));
      expect(patternMismatch(Buffer.from(text, 'latin1'), Number(m![2]))).toBeUndefined();
    } finally {
      await second.close();
    }
  });

  it('attach() to an unknown id rejects ready', async () => {
    const h = client.attach('never-spawned');
    await expect(h.ready).rejects.toThrow(/no such process/);
  });

  it('close() ends held handles with ClosedError and leaves the process running on the daemon', async () => {
    const c = await connect({ socket: d.socket });
    const proc = c.spawn({ command: 'sleep', args: ['30'], wantPid: true });
    await proc.ready;
    const iterating = collect(proc.stdout);
    await c.close();
    await expect(iterating).rejects.toBeInstanceOf(ClosedError);
    await expect(proc.exited).rejects.toBeInstanceOf(ClosedError);
    await expect(c.ping()).rejects.toBeInstanceOf(ClosedError);
    expect(processLive(proc.pid!)).toBe(true);
    expect(await client.killAndWait(proc.id, { signal: 'KILL' })).toMatchObject({ found: true, died: true });
  });

  it('fails to connect with a clear error when the token is refused', async () => {
    await expect(connect({ socket: d.socket, token: 'wrong', reconnect: false })).rejects.toThrow(/refused the token/);
  });
});

describe('starting a daemon on demand', () => {
  it('starts one when nothing answers on the socket, once even with concurrent clients', async () => {
    const dir = tempDir();
    const socket = path.join(dir, 'rpc.sock');
    await expect(connect({ socket })).rejects.toThrow(/no token|ENOENT|connect/);
    const clients = await Promise.all([1, 2, 3].map(() => connect({ socket, startDaemon: true })));
    try {
      const ids = new Set(clients.map((c) => c.instanceId));
      expect(ids.size).toBe(1);
      const proc = clients[0]!.spawn({ command: 'sh', args: ['-c', 'echo on-demand'] });
      expect((await collect(proc.stdout)).toString()).toBe('on-demand\n');
    } finally {
      for (const c of clients) await c.close();
      const { stdout } = await run(process.execPath, [BIN, '-stop', '-socket', socket]);
      expect(stdout.trim()).toBe('stopped');
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('package export', () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start();
  });
  afterAll(() => d.stop());

  it("is importable as 'claustrum/client' by a consumer, with types", async () => {
    const dir = tempDir('claustrum-consumer-');
    try {
      mkdirSync(path.join(dir, 'node_modules'));
      symlinkSync(ROOT, path.join(dir, 'node_modules', 'claustrum'));
      writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}\n');
      writeFileSync(
        path.join(dir, 'main.ts'),
        [
          "import { connect, type ExitInfo } from 'claustrum/client';",
          'const client = await connect({ socket: process.argv[2] });',
          "const proc = client.spawn({ command: 'echo', args: ['consumer'] });",
          'const chunks: Buffer[] = [];',
          'for await (const c of proc.stdout) chunks.push(c);',
          'const exit: ExitInfo = await proc.exited;',
          'process.stdout.write(`${Buffer.concat(chunks).toString().trim()} ${exit.status}`);',
          'await client.close();',
          '',
        ].join('\n'),
      );
      writeFileSync(
        path.join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            skipLibCheck: true,
            types: ['node'],
            typeRoots: [path.join(ROOT, 'node_modules/@types')],
            outDir: 'out',
          },
        }),
      );
      await run(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', dir]);
      const { stdout } = await run(process.execPath, [path.join(dir, 'out', 'main.js'), d.socket]);
      expect(stdout).toBe('consumer 0');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe.each(['unix+ndjson', 'unix+msgpack', 'websocket+msgpack', 'websocket+json'] as const)('over %s', (wire) => {
  let d: Daemon;
  let client: Client;
  let url = '';
  beforeAll(async () => {
    d = await Daemon.start({ args: ['-ws-addr', '127.0.0.1:0', '-ws-allow-origin', 'https://ok.example'] });
    const m = await until(() => /websocket: serving (ws:\/\/127\.0\.0\.1:\d+\/rpc)/.exec(d.log()), 10_000, 'the websocket listener');
    url = m[1]!;
    client = await connect(
      wire === 'unix+ndjson'
        ? { socket: d.socket }
        : wire === 'unix+msgpack'
          ? { socket: d.socket, wire: 'msgpack' }
          : // Over WebSocket the socket only says where daemon.token is.
            { socket: d.socket, websocket: { url, format: wire === 'websocket+json' ? 'json' : 'msgpack' } },
    );
  });
  afterAll(async () => {
    await client?.close();
    await d?.stop();
  });

  it('round-trips arbitrary bytes through cat, and lists and measures processes', async () => {
    const proc = client.spawn({ command: 'cat', wantPid: true });
    const out = collect(proc.stdout);
    await proc.ready;
    const listed = await client.list();
    expect(listed.processes.find((p) => p.id === proc.id)).toMatchObject({ running: true, pid: proc.pid, command: 'cat' });
    const stats = await client.stats(proc.id);
    expect(stats).toMatchObject({ found: true, running: true, pid: proc.pid });
    expect(await client.stats('no-such-id')).toEqual({ found: false });
    const bytes = Buffer.alloc(256 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + (i >> 8)) & 0xff;
    await proc.end(bytes);
    expect((await proc.exited).status).toBe(0);
    expect((await out).equals(bytes)).toBe(true);
  });

  it('names the wire in the capabilities it connected with', async () => {
    const features = client.serverCapabilities!.features;
    expect(features).toContain('wire.msgpack');
    expect(features).toContain('transport.websocket');
  });

  if (wire.startsWith('websocket')) {
    it('reports a refused upgrade (Origin not allowed) as a ConnectError', async () => {
      const err = await connect({ token: d.token, websocket: { url, origin: 'https://evil.example' }, reconnect: false }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ConnectError);
      expect((err as ConnectError).errno).toBe('HTTP_403');
      const ok = await connect({ token: d.token, websocket: { url, origin: 'https://ok.example' } });
      expect(await ok.ping()).toEqual({ pong: true });
      await ok.close();
    });
  }
});
