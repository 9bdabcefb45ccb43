/**
 * Peer identity on real sockets: the process at the other end of a Unix-socket connection (found through `ss` and
 * /proc), batching of lookups, every way a lookup can come up empty, and a WebSocket peer's address and Origin.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { MAX_ORIGIN_BYTES, parseSs, UnixPeerResolver, webSocketPeer } from '../../src/audit/peer.js';
import type { PeerInfo } from '../../src/audit/record.js';
import { until } from './helpers.js';

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0).reverse()) c();
});

/** A Unix-socket server whose accepted connections are handed to `onConn`. */
async function server(onConn: (s: net.Socket) => void): Promise<string> {
  const dir = mkdtempSync(path.join(tmpdir(), 'claustrum-peer-'));
  const sock = path.join(dir, 's.sock');
  const srv = net.createServer(onConn);
  await new Promise<void>((r) => srv.listen(sock, r));
  cleanups.push(() => {
    srv.close();
    rmSync(dir, { recursive: true, force: true });
  });
  return sock;
}

/** A child process that connects to `sock` and stays connected until killed. */
function connector(sock: string): ChildProcess {
  const child = spawn(process.execPath, ['-e', `require('net').connect(${JSON.stringify(sock)}); setInterval(() => {}, 1000)`], { stdio: 'ignore' });
  cleanups.push(() => child.kill('SIGKILL'));
  return child;
}

function startTimeOf(pid: number): string {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return text.slice(text.lastIndexOf(')') + 2).split(' ')[19]!;
}

describe('UnixPeerResolver', () => {
  it('names the process at the other end: pid, uid, command name, start time', async () => {
    const resolver = new UnixPeerResolver();
    const peers: Promise<PeerInfo>[] = [];
    const sock = await server((s) => peers.push(resolver.resolve(s)));
    const child = connector(sock);
    await until(() => peers.length === 1, 'the connection');
    const peer = await peers[0]!;
    expect(peer).toEqual({ kind: 'unix', pid: child.pid, uid: process.getuid!(), comm: 'node', startTime: startTimeOf(child.pid!) });
  });

  it('looks up connections together in shared ss runs, each with its own process', async () => {
    const resolver = new UnixPeerResolver();
    const sockets: net.Socket[] = [];
    const sock = await server((s) => sockets.push(s));
    const children = Array.from({ length: 12 }, () => connector(sock));
    await until(() => sockets.length === children.length, 'every connection');
    const found = (await Promise.all(sockets.map((s) => resolver.resolve(s)))).map((p) => (p.kind === 'unix' ? p.pid : -1));
    expect(found.sort()).toEqual(children.map((c) => c.pid).sort());
    // The first lookup starts a run at once; the ones arriving while it runs share the next.
    expect(resolver.runs).toBeLessThanOrEqual(3);
  });

  it('a connection from this very process is named as such, not as a peer', async () => {
    const resolver = new UnixPeerResolver();
    const peers: Promise<PeerInfo>[] = [];
    const sock = await server((s) => peers.push(resolver.resolve(s)));
    const c = net.connect(sock);
    cleanups.push(() => c.destroy());
    await until(() => peers.length === 1, 'the connection');
    expect(await peers[0]!).toEqual({ kind: 'unix', pid: null, uid: null, unknown: 'the other end is this daemon' });
  });

  it('says why when it cannot tell: the client gone, no ss, a socket already closed', async () => {
    const resolver = new UnixPeerResolver();
    const peers: Promise<PeerInfo>[] = [];
    const sockets: net.Socket[] = [];
    const sock = await server((s) => {
      sockets.push(s);
      s.on('error', () => {});
    });
    const child = connector(sock);
    await until(() => sockets.length === 1, 'the connection');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    peers.push(resolver.resolve(sockets[0]!));
    const gone = await peers[0]!;
    expect(gone.kind === 'unix' && gone.pid).toBe(null);

    const noSs = new UnixPeerResolver({ ss: '/nonexistent/ss' });
    const child2 = connector(sock);
    await until(() => sockets.length === 2, 'the second connection');
    expect(await noSs.resolve(sockets[1]!)).toEqual({
      kind: 'unix',
      pid: null,
      uid: null,
      unknown: '/nonexistent/ss (iproute2) cannot be run: ENOENT; install iproute2 to record peer processes',
    });
    child2.kill('SIGKILL');
    sockets[1]!.destroy();
    expect(await resolver.resolve(sockets[1]!)).toEqual({
      kind: 'unix',
      pid: null,
      uid: null,
      unknown: 'the connection has no descriptor (closed already)',
    });
  });

  it('parseSs reads the peer inode and pids whatever spaces the addresses hold', () => {
    const text = [
      'u_str ESTAB 0      0     /tmp/a dir/s.sock 80847            * 79794 users:(("socat",pid=3437,fd=6))',
      'u_str ESTAB 0      0                 * 79794            /tmp/a dir/s.sock 80847 users:(("my prog",pid=3438,fd=3),("my prog",pid=3439,fd=3))',
      'u_str ESTAB 0      0                 * 5            * 6',
    ].join('\n');
    expect([
      ...parseSs(
        text,
        new Map([
          [80847, 1],
          [6, 1],
        ]),
      ).entries(),
    ]).toEqual([
      [80847, { peer: 80847, pids: [3438, 3439] }],
      [6, { peer: 6, pids: [] }],
    ]);
  });
});

describe('webSocketPeer', () => {
  it('records the remote address and port and the Origin, cut at MAX_ORIGIN_BYTES', async () => {
    const httpServer = http.createServer();
    const wss = new WebSocketServer({ server: httpServer });
    const peers: PeerInfo[] = [];
    wss.on('connection', (_ws, req) => peers.push(webSocketPeer(req)));
    await new Promise<void>((r) => httpServer.listen(0, '127.0.0.1', r));
    cleanups.push(() => {
      wss.close();
      httpServer.close();
    });
    const port = (httpServer.address() as net.AddressInfo).port;
    const open = (headers: Record<string, string>) =>
      new Promise<WebSocket>((resolve, reject) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/`, { headers });
        ws.once('open', () => resolve(ws));
        ws.once('error', reject);
        cleanups.push(() => ws.terminate());
      });
    const a = await open({ Origin: 'https://app.example' });
    const exact = `https://${'o'.repeat(MAX_ORIGIN_BYTES - 8)}`;
    await open({ Origin: exact });
    await open({ Origin: `${exact}x` });
    await open({});
    await until(() => peers.length === 4, 'the connections');
    const localPort = (a as unknown as { _socket: net.Socket })._socket.localPort;
    expect(peers[0]).toEqual({ kind: 'ws', address: '127.0.0.1', port: localPort, origin: 'https://app.example' });
    expect((peers[1] as { origin: string }).origin).toBe(exact);
    const cut = (peers[2] as { origin: string }).origin;
    const m = /^(https:\/\/o+)…\[cut (\d+) bytes\]$/.exec(cut)!;
    expect(m[1]!.length + Number(m[2])).toBe(MAX_ORIGIN_BYTES + 1);
    expect(Buffer.byteLength(cut)).toBeLessThanOrEqual(MAX_ORIGIN_BYTES);
    expect((peers[3] as { origin: null }).origin).toBeNull();
  });
});
