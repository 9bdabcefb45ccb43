/**
 * The page's connection (console/src/rpc.ts) and stdin writer (console/src/stdin.ts) against a real daemon, in Node:
 * the `ws` package stands in for the browser's WebSocket (same event API), everything else is the page's own code.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { ConnectionClosedError, REFUSED_TOKEN, Rpc, RpcError, type SocketLike } from '../../console/src/rpc.js';
import { STDIN_CHUNK_BYTES, StdinConflictError, StdinWriter } from '../../console/src/stdin.js';
import { ERR_UNAUTHORIZED, type Frame } from '../../console/src/wire.js';
import { fixture, until } from '../helpers/daemon.js';
import { type ConsoleDaemon, startConsoleDaemon } from './browser.js';

const socket = (url: string) => new WebSocket(url) as unknown as SocketLike;

describe('the page connection and stdin writer, over a real daemon', () => {
  let cd: ConsoleDaemon;
  let url: string;
  beforeAll(async () => {
    cd = await startConsoleDaemon();
    url = `ws://127.0.0.1:${cd.port}/rpc`;
  });
  afterAll(() => cd?.d.stop());

  async function open(frames: Frame[] = []): Promise<Rpc> {
    return Rpc.open(url, cd.d.token, { socket, onFrame: (f) => frames.push(f) });
  }
  const out = (frames: Frame[], id: string) =>
    Buffer.concat(
      frames
        .filter((f) => f.type === 'stream' && f.processId === id && f.stream === 'stdout')
        .map((f) => ('data' in f ? Buffer.from(f.data) : Buffer.alloc(0))),
    ).toString();

  it('refuses a wrong token with -32001 and a message saying what to do', async () => {
    const err = await Rpc.open(url, 'wrong', { socket }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RpcError);
    expect((err as RpcError).code).toBe(ERR_UNAUTHORIZED);
    expect((err as RpcError).message).toBe(REFUSED_TOKEN);
    const unreachable = await Rpc.open('ws://127.0.0.1:1/rpc', cd.d.token, { socket }).catch((e: unknown) => e);
    expect(unreachable).toBeInstanceOf(ConnectionClosedError);
  });

  it('spawns, receives binary frames in order, and fails pending calls when the connection closes', async () => {
    const frames: Frame[] = [];
    const rpc = await open(frames);
    await rpc.call('process.spawn', { id: 'pr1', command: 'sh', args: ['-c', 'printf abc; printf err >&2; exit 3'] });
    await until(() => frames.some((f) => f.type === 'stream' && f.stream === 'exit'), 10_000, 'the exit frame');
    expect(out(frames, 'pr1')).toBe('abc');
    const exit = frames.find((f) => f.type === 'stream' && f.stream === 'exit');
    expect(exit).toMatchObject({ exitCode: 3 });
    const seqs = frames.map((f) => (f.type === 'stream' ? f.seq : 0));
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    const pending = rpc.call('process.killAndWait', { id: 'nope' });
    rpc.close();
    await expect(pending).rejects.toBeInstanceOf(ConnectionClosedError);
    await expect(rpc.call('server.ping', undefined)).rejects.toBeInstanceOf(ConnectionClosedError);
  });

  it('writes stdin at the daemon offsets, coalescing queued writes, and splits large ones into chunks', async () => {
    const frames: Frame[] = [];
    const rpc = await open(frames);
    await rpc.call('process.spawn', { id: 'cat1', command: 'cat' });
    const w = new StdinWriter('cat1', (p) => rpc.call('process.stdin', p));
    const writes = ['a\n', 'b\n', 'c\n'].map((s) => w.write(Buffer.from(s)));
    expect(await Promise.all(writes)).toEqual([6, 6, 6]);
    const big = Buffer.alloc(STDIN_CHUNK_BYTES * 2 + 5, 0x78);
    expect(await w.write(big)).toBe(6 + big.length);
    expect(await w.write(new Uint8Array(0), true)).toBe(6 + big.length);
    await until(() => frames.some((f) => f.type === 'stream' && f.stream === 'exit'), 10_000, 'cat to exit');
    expect(out(frames, 'cat1')).toBe(`a\nb\nc\n${big.toString()}`);
    rpc.close();
  });

  it('starts from where stdin is, and reports a write that another client beat to the same offsets', async () => {
    const frames: Frame[] = [];
    const rpc = await open(frames);
    await rpc.call('process.spawn', { id: 'cat2', command: 'cat' });
    const other = await cd.d.client();
    await other.call('process.stdin', { id: 'cat2', data: Buffer.from('first\n').toString('base64'), offset: 0 });
    const w = new StdinWriter('cat2', (p) => rpc.call('process.stdin', p));
    expect(await w.write(Buffer.from('mine\n'))).toBe(11);
    // The other client writes at 11 too, after our writer learnt 11: ours is now a duplicate and is not applied.
    await other.call('process.stdin', { id: 'cat2', data: Buffer.from('theirs\n').toString('base64'), offset: 11 });
    await expect(w.write(Buffer.from('lost?\n'))).rejects.toBeInstanceOf(StdinConflictError);
    // The next write asks where stdin is first, and lands.
    expect(await w.write(Buffer.from('again\n'))).toBe(24);
    await until(() => out(frames, 'cat2') === 'first\nmine\ntheirs\nagain\n', 10_000, 'the lines in order');
    await rpc.call('process.kill', { id: 'cat2', signal: 'KILL' });
    rpc.close();
  });

  it('retries a full queue (-32002) with the same bytes at the same offset, and fails cleanly when the process dies', async () => {
    const rpc = await open();
    await rpc.call('process.spawn', { id: 'deaf', ...fixture('never-read-stdin') });
    const w = new StdinWriter('deaf', (p) => rpc.call('process.stdin', p));
    // 17 MiB: past the daemon's 16 MiB stdin queue, so the last chunks are refused until the child reads (never).
    const pending = w.write(Buffer.alloc(17 * 1024 * 1024, 1));
    await until(() => w.refusals > 2, 20_000, 'queue-full refusals');
    await rpc.call('process.kill', { id: 'deaf', signal: 'KILL' });
    await expect(pending).rejects.toThrow('Process not running');
    rpc.close();
  });

  it('resends what was in flight over a new connection, and the child gets it exactly once', async () => {
    const frames: Frame[] = [];
    const owner = await open(frames);
    await owner.call('process.spawn', { id: 'cat3', command: 'cat' });
    let rpc = await open();
    const w = new StdinWriter('cat3', (p) => rpc.call('process.stdin', p));
    await w.write(Buffer.from('one\n'));
    const p = w.write(Buffer.from('two\n'));
    rpc.close(); // whether or not the daemon applied it
    rpc = await open();
    w.reconnected((params) => rpc.call('process.stdin', params));
    expect(await p).toBe(8);
    expect(await w.write(Buffer.from('three\n'))).toBe(14);
    await until(() => out(frames, 'cat3') === 'one\ntwo\nthree\n', 10_000, 'each line once');
    await owner.call('process.kill', { id: 'cat3', signal: 'KILL' });
    owner.close();
    rpc.close();
  });
});
