/**
 * The raw-relay baseline: a plain Node process that pipes a child's stdout into a Unix socket, adding nothing.
 * argv: <socket> <command> [args...]. It connects, waits for one byte ("go") from the reader, then spawns the child
 * and pipes its stdout into the socket, ending the socket at the child's EOF.
 */
import { spawn } from 'node:child_process';
import net from 'node:net';

const [socketPath, command, ...args] = process.argv.slice(2);
const s = net.connect(socketPath);
s.once('data', () => {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.pipe(s);
});
s.on('error', () => process.exit(1));
