/**
 * `-metrics-addr`: a scripted workload against the real daemon, scraped and checked number by number.
 */
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { fixture } from '../helpers/daemon.js';
import { sandboxes } from '../helpers/cli.js';
import { freePort, get } from '../helpers/http.js';
import { b64, type RpcClient } from '../helpers/rpc.js';

/** `name{labels}` → value, from Prometheus text. */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const sp = line.lastIndexOf(' ');
    out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** The socket inodes a process holds. */
function socketInodes(pid: number): Set<string> {
  const out = new Set<string>();
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (m) out.add(m[1]!);
    } catch {
      // closed meanwhile
    }
  }
  return out;
}

/** TCP sockets (v4 and v6) in LISTEN state owned by a process. */
function tcpListeners(pid: number): string[] {
  const mine = socketInodes(pid);
  const found: string[] = [];
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text = '';
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.trim().split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f[3] === '0A' && mine.has(f[9]!)) found.push(f[1]!);
    }
  }
  return found;
}

/** Serialized bytes of every distinct frame a client saw (each NDJSON line plus its newline). */
function frameBytes(c: RpcClient): number {
  const seen = new Map<string, number>();
  for (const line of c.lines) {
    const m = JSON.parse(line);
    if (m.type === 'stream') seen.set(`${m.processId}/${m.seq}`, Buffer.byteLength(line) + 1);
  }
  return [...seen.values()].reduce((a, b) => a + b, 0);
}

describe('metrics', () => {
  const sandbox = sandboxes();

  it('has no listener without -metrics-addr', async () => {
    const sb = sandbox();
    const { pid } = await sb.start();
    expect(socketInodes(pid).size).toBeGreaterThan(0); // the Unix socket at least
    expect(tcpListeners(pid)).toEqual([]);
  });

  it('counts a scripted workload exactly', async () => {
    const sb = sandbox();
    const port = await freePort();
    const { pid } = await sb.start(['-metrics-addr', `127.0.0.1:${port}`]);
    expect(tcpListeners(pid)).toHaveLength(1);
    expect(sb.log()).toContain(`[Server] metrics: serving http://127.0.0.1:${port}/metrics`);

    // Before any work: only the launcher's readiness dial.
    const before = parse((await get(port, '/metrics')).body);
    expect(before.get('claustrum_connections_total')).toBe(1);
    expect(before.get('claustrum_process_spawns_total')).toBe(0);

    // Three client connections (the launcher's dial makes four).
    const a = await sb.client();
    const b = await sb.client();
    const c = await sb.client();

    // Spawns: cat (stdin), a flood of known size, echo. Failures: one of each reason we can provoke.
    await a.call('process.spawn', { id: 'cat', command: 'cat' });
    await a.call('process.spawn', { id: 'flood', ...fixture('flood', '100000') });
    await a.call('process.spawn', { id: 'echo', command: 'echo', args: ['hello'] });
    const noExec = path.join(sb.root, 'not-executable');
    writeFileSync(noExec, '#!/bin/sh\n', { mode: 0o644 });
    const failures: [object, string][] = [
      [{ id: 'f1', command: '/nonexistent/prog' }, 'forkExec'],
      [{ id: 'f2', command: 'no-such-command-xyz' }, 'executableNotFound'],
      [{ id: 'f3', command: 'true', cwd: '/nonexistent-dir' }, 'chdirStat'],
      [{ id: 'f4', command: 'true', cwd: noExec }, 'chdirNotDirectory'],
      [{ id: 'f5', command: noExec }, 'forkExec'], // permission denied
    ];
    for (const [params] of failures) expect((await b.request('process.spawn', params)).error?.code).toBe(-32603);

    // stdin: 4 + 4 + duplicate (0) + overlap (3 new of 5) = 11 bytes accepted; cat echoes exactly those.
    expect(await a.call('process.stdin', { id: 'cat', data: b64('AAA\n') })).toEqual({ success: true, applied: 4 });
    expect(await a.call('process.stdin', { id: 'cat', data: b64('BBB\n'), offset: 4 })).toEqual({ success: true, applied: 8 });
    expect(await a.call('process.stdin', { id: 'cat', data: b64('DUP\n'), offset: 4 })).toEqual({ success: true, applied: 8, duplicate: true });
    expect(await a.call('process.stdin', { id: 'cat', data: b64('PART\n'), offset: 6 })).toEqual({ success: true, applied: 11 });
    await a.waitExit('flood');
    await a.waitExit('echo');
    await a.waitFor(() => a.output('cat').length === 11);
    expect(a.output('cat').toString()).toBe('AAA\nBBB\nRT\n');
    // Close cat's stdin by killing it; three exits in all.
    await a.call('process.kill', { id: 'cat' });
    await a.waitExit('cat');

    // Reattaches: two found (from another connection), one not found.
    expect((await c.call('process.reattach', { id: 'echo' })).found).toBe(true);
    expect((await c.call('process.reattach', { id: 'flood', fromSeq: 1 })).found).toBe(true);
    expect((await c.call('process.reattach', { id: 'ghost' })).found).toBe(false);

    await a.closed;
    const r = await get(port, '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('text/plain; version=0.0.4; charset=utf-8');
    const m = parse(r.body);
    const expected: Record<string, number> = {
      claustrum_connections_total: 4,
      claustrum_process_spawns_total: 3,
      claustrum_process_exits_total: 3,
      claustrum_reattaches_total: 2,
      claustrum_stream_bytes_total: 100_000 + 6 + 11,
      claustrum_stdin_bytes_total: 11,
      claustrum_processes_live: 0,
      claustrum_processes_retained: 3,
      claustrum_connections_open: 2, // the reattaches took a's processes, which closes a
      claustrum_stdin_queue_bytes: 0,
      claustrum_replay_buffer_bytes: frameBytes(a),
      claustrum_replay_evicted_frames_total: 0,
      claustrum_replay_evicted_bytes_total: 0,
      claustrum_receivers_stalled_total: 0,
      claustrum_exit_drain_timeouts_total: 0,
      'claustrum_spawn_failures_total{reason="forkExec"}': 2,
      'claustrum_spawn_failures_total{reason="executableNotFound"}': 1,
      'claustrum_spawn_failures_total{reason="chdirStat"}': 1,
      'claustrum_spawn_failures_total{reason="chdirNotDirectory"}': 1,
      claustrum_spawn_duration_seconds_count: 3,
    };
    for (const [name, value] of Object.entries(expected)) expect(m.get(name), name).toBe(value);
    expect(m.get('claustrum_spawn_duration_seconds_bucket{le="+Inf"}')).toBe(3);
    expect(m.get('claustrum_spawn_duration_seconds_sum')).toBeGreaterThan(0);

    // The reference's six keep their names, types and HELP texts.
    const help: Record<string, string> = {
      claustrum_connections_total: 'Client connections accepted.',
      claustrum_process_spawns_total: 'Processes started via process.spawn.',
      claustrum_process_exits_total: 'Managed processes that have exited.',
      claustrum_reattaches_total: 'process.reattach calls that found their process.',
      claustrum_stream_bytes_total: 'Process stdout/stderr bytes streamed to clients.',
      claustrum_stdin_bytes_total: 'Bytes accepted for child stdin.',
    };
    for (const [name, text] of Object.entries(help)) {
      expect(r.body).toContain(`# HELP ${name} ${text}\n# TYPE ${name} counter\n`);
    }
    // Node's process metrics are there too; no label carries an id, a command or a path.
    expect(r.body).toMatch(/^process_resident_memory_bytes \d+/m);
    for (const word of ['cat', 'flood', 'ghost', '/nonexistent', 'no-such-command', sb.dir]) {
      const labelled = r.body.split('\n').filter((l) => l.startsWith('claustrum_') && l.includes('{'));
      expect(labelled.join('\n')).not.toContain(word);
    }
  });

  it('serves /metrics only, refuses a foreign Host, and takes loopback names', async () => {
    const sb = sandbox();
    const port = await freePort();
    await sb.start(['-metrics-addr', `127.0.0.1:${port}`]);
    expect((await get(port, '/')).status).toBe(404);
    expect((await get(port, '/metrics/extra')).status).toBe(404);
    expect((await get(port, '/debug/pprof')).status).toBe(404);
    expect((await get(port, '/metrics', 'evil.example')).status).toBe(403);
    expect((await get(port, '/metrics', `evil.example:${port}`)).status).toBe(403);
    expect((await get(port, '/metrics', `localhost:${port}`)).status).toBe(200);
    expect((await get(port, '/metrics?x=1', `127.0.0.1:${port}`)).status).toBe(200);
  });

  it('a bind failure (port in use) fails the start like a bad -ws-addr, and leaves nothing behind', async () => {
    const sb = sandbox();
    const squatter = net.createServer();
    await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
    const port = (squatter.address() as net.AddressInfo).port;
    try {
      const r = await sb.serve(['-metrics-addr', `127.0.0.1:${port}`]);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(new RegExp(`^claustrum: metrics: listen 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
      expect(sb.log()).toMatch(new RegExp(`ERROR \\[daemon\\] start-up failed: metrics: listen 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`));
      for (const f of ['rpc.sock', 'daemon.lock', 'daemon.token']) expect(sb.exists(f), f).toBe(false);
    } finally {
      squatter.close();
    }
  });

  it('a -metrics-addr that is not host:port is a flag error: exit 2, nothing started', async () => {
    const sb = sandbox();
    const r = await sb.serve(['-metrics-addr', 'localhost']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^claustrum: -metrics-addr: address localhost: want host:port\n/);
    expect(sb.exists('')).toBe(false);
  });
});
