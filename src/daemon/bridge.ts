/**
 * `-bridge`: a plain stdio ↔ socket relay that adds nothing, not even auth (what an SSH session attaches to).
 * At stdin EOF it half-closes the socket and keeps copying the daemon's output until the daemon closes; when the
 * daemon closes, the bridge exits whether or not stdin has ended.
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
      let done = false;
      const finish = () => {
        // The daemon closed the connection (EOF on the socket): the relay is over even if stdin is still open, as
        // the reference's socket-to-stdout copy ends there. Stop reading stdin so nothing keeps the process
        // alive; the peer then sees our stdout end.
        if (done) return;
        done = true;
        input.unpipe(s);
        input.destroy();
        s.destroy();
        output.write('', () => resolve(0));
      };
      s.once('end', finish);
      s.once('close', finish);
    });
  });
}
