/**
 * The raw-relay baseline: a plain Node process that pipes a child's stdout into a Unix socket, adding nothing.
 * argv: <socket> <command> [args...]. It connects, waits for one byte ("go") from the reader, then spawns the child
 * and pipes its stdout into the socket, ending the socket at the child's EOF. At exit it prints the CPU time it spent from "go" on.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';

const [socketPath, command, ...args] = process.argv.slice(2);
const s = net.connect(socketPath);
let atGo;
s.once('data', () => {
  atGo = process.cpuUsage();
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.pipe(s);
});
s.on('error', () => process.exit(1));
// Its own CPU from "go" on (start-up excluded), for comparison with the daemon's; the caller reads it on stdout.
process.on('exit', () => {
  const c = process.cpuUsage(atGo);
  process.stdout.write(`${JSON.stringify({ cpuMs: (c.user + c.system) / 1000 })}\n`);
});
