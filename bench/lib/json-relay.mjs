/**
 * Node's own ceiling for stdin as base64 in JSON (figure 9): a plain Node process that reads NDJSON lines
 * `{"data":"<base64>"}` from a Unix socket, decodes each the obvious way (the line to a string, JSON.parse,
 * Buffer.from(data, 'base64')) and writes the bytes into a child's stdin, honouring backpressure. Nothing of the
 * RPC: no envelope, offsets, replies or bookkeeping. The same three processes as the daemon's path (client, relay,
 * child), so what separates the daemon from this is the protocol's work, not the physics.
 *
 * argv: <socket> <command> [args...]. It connects, spawns the child, and reads lines until the socket ends; then it
 * closes the child's stdin and, once the child has exited, writes one byte ("d") back and prints the CPU time it spent
 * from the first byte read, as JSON on stdout.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';

const [socketPath, command, ...args] = process.argv.slice(2);
const child = spawn(command, args, { stdio: ['pipe', 'ignore', 'inherit'] });
// Half-open: the client's end of input must not close the way back for the "done" byte.
const s = net.connect({ path: socketPath, allowHalfOpen: true });
let cpu0;
let parts = [];
let bytes = 0;
s.on('data', (chunk) => {
  cpu0 ??= process.cpuUsage();
  let start = 0;
  for (;;) {
    const nl = chunk.indexOf(10, start);
    if (nl === -1) {
      if (start < chunk.length) parts.push(chunk.subarray(start));
      return;
    }
    let line = chunk.subarray(start, nl);
    if (parts.length > 0) {
      parts.push(line);
      line = Buffer.concat(parts);
      parts = [];
    }
    start = nl + 1;
    const data = Buffer.from(JSON.parse(line.toString('utf8')).data, 'base64');
    bytes += data.length;
    if (!child.stdin.write(data)) {
      s.pause();
      child.stdin.once('drain', () => s.resume());
    }
  }
});
s.once('end', () => child.stdin.end());
s.on('error', () => process.exit(1));
child.once('close', (code) => {
  const c = process.cpuUsage(cpu0);
  process.stdout.write(`${JSON.stringify({ code, bytes, cpuMs: (c.user + c.system) / 1000 })}\n`);
  s.end('d');
});
