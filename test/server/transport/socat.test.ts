/**
 * The seed's one-shot socat examples (../shared/seeds/002_c2367ea4597fc236.txt), run through real socat processes:
 * `req() { printf '%s\n' "$1" | socat -t2 - UNIX-CONNECT:"$D/rpc.sock"; }`.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Daemon } from '../../helpers/daemon.js';

const run = promisify(execFile);

/** The seed's req(): one line into socat, whatever socat prints back. */
async function req(socket: string, request: string): Promise<string> {
  const { stdout } = await run('sh', ['-c', `printf '%s\\n' "$1" | socat -t2 - UNIX-CONNECT:"$2"`, 'req', request, socket], { timeout: 15_000 });
  return stdout;
}

describe('socat', () => {
  it('is installed (CI installs it)', () => {
    expect(execFileSync('sh', ['-c', 'command -v socat']).toString().trim()).not.toBe('');
  });
});

describe("the seed's socat examples", () => {
  let d: Daemon;
  beforeAll(async () => {
    d = await Daemon.start();
  });
  afterAll(() => d.stop());

  it('ping', async () => {
    const out = await req(d.socket, `{"jsonrpc":"2.0","id":1,"method":"server.ping","auth":"${d.token}"}`);
    expect(out).toBe('{"jsonrpc":"2.0","id":1,"result":{"pong":true}}\n');
  });

  it('capabilities', async () => {
    const out = await req(d.socket, `{"jsonrpc":"2.0","id":2,"method":"server.capabilities","auth":"${d.token}"}`);
    const lines = out.split('\n');
    expect(lines.length).toBe(2);
    expect(lines[1]).toBe('');
    const reply = JSON.parse(lines[0]!);
    expect(reply).toMatchObject({ jsonrpc: '2.0', id: 2 });
    expect(reply.result.methods).toContain('process.spawn');
    expect(reply.result.instanceId).toMatch(/^[0-9a-f]{32}$/);
  });

  it('an unauthenticated request gets the auth error', async () => {
    const out = await req(d.socket, '{"jsonrpc":"2.0","id":3,"method":"server.ping"}');
    expect(out).toBe('{"jsonrpc":"2.0","id":3,"error":{"code":-32001,"message":"Unauthorized: invalid or missing auth token"}}\n');
  });

  it('the copy-paste ping line the daemon prints at start works as printed', async () => {
    const lines = d.stdout.split('\n');
    const at = lines.findIndex((l) => l.trim() === 'ping it:');
    expect(at).toBeGreaterThanOrEqual(0);
    const { stdout } = await run('sh', ['-c', lines[at + 1]!.trim()], { timeout: 15_000 });
    expect(stdout).toBe('{"jsonrpc":"2.0","id":1,"result":{"pong":true}}\n');
  });
});

describe('shutdown through socat', () => {
  it('stops the daemon, which exits 0 and removes its socket', async () => {
    const d = await Daemon.start();
    try {
      const out = await req(d.socket, '{"jsonrpc":"2.0","id":1,"method":"server.shutdown"}');
      expect(['', '{"jsonrpc":"2.0","id":1,"result":{"ok":true}}\n']).toContain(out);
      expect(await d.exited).toBe(0);
      expect(existsSync(d.socket)).toBe(false);
    } finally {
      await d.stop();
    }
  });
});
