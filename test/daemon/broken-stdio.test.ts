/**
 * A foreground daemon outlives whoever reads its output: once stdout and stderr lead to closed pipes, every log line
 * meets EPIPE. That must cost nothing (it once turned into an endless uncaught-exception loop that ignored SIGTERM).
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { expect, it } from 'vitest';
import { BIN, sleep, tempDir } from '../helpers/daemon.js';
import { RpcClient } from '../helpers/rpc.js';

it('keeps serving, and stops on SIGTERM, after its stdout and stderr pipes close', async () => {
  const dir = tempDir();
  const socket = path.join(dir, 'rpc.sock');
  writeFileSync(path.join(dir, 'tok'), 'tok\n');
  const proc = spawn(process.execPath, [BIN, '-serve', '-foreground', '-socket', socket, '-token-file', path.join(dir, 'tok')], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  try {
    await new Promise<void>((resolve) => proc.stdout!.on('data', (d: Buffer) => d.toString().includes('listening on') && resolve()));
    // The reader goes away: the daemon's next writes to either stream get EPIPE.
    proc.stdout!.destroy();
    proc.stderr!.destroy();
    for (let i = 0; i < 5; i++) {
      const c = await RpcClient.connect(socket, 'tok'); // each connection is logged
      expect(await c.call('server.ping')).toEqual({ pong: true });
      await c.call('process.spawn', { id: `p${i}`, command: 'true' });
      await c.waitExit(`p${i}`);
      c.destroy();
      await sleep(20);
    }
    proc.kill('SIGTERM');
    expect(await exited).toBe(0);
  } finally {
    proc.kill('SIGKILL');
  }
});
