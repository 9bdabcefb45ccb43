/**
 * `-bridge`: a plain stdio ↔ socket relay that adds nothing, not even auth (what an SSH session attaches to).
 * At stdin EOF it half-closes the socket and keeps copying the daemon's output until the daemon closes.
 */
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { errnoText, errorCode } from '../util/errno.js';

export function runBridge(socketPath: string, input: Readable, output: Writable, printError: (line: string) => void): Promise<number> {
  return new Promise((resolve) => {
    const s = net.connect({ path: socketPath, allowHalfOpen: true });
    s.once('error', (err) => {
      printError(`claustrum: dial server: dial unix ${socketPath}: connect: ${errnoText(errorCode(err))}`);
      resolve(1);
    });
    s.once('connect', () => {
      s.removeAllListeners('error');
      s.on('error', () => {});
      input.pipe(s); // ends (half-closes) the socket at stdin EOF
      s.pipe(output, { end: false });
      s.once('close', () => resolve(0));
    });
  });
}
