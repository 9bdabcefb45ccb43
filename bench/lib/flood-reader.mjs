/**
 * A client process for figure 7: connects to the daemon, spawns a flooding child (`cat /dev/zero`) and reads and
 * decodes its frames as fast as it can, in its own process so the measuring client's event loop stays quiet.
 * argv: <socket> <token> <processId>. Prints "ready" once frames flow; on SIGTERM prints the bytes decoded and exits.
 */
import { connect } from './client.mjs';

const [socket, token, id] = process.argv.slice(2);
const c = await connect({ wire: 'ndjson', socket, token });
let bytes = 0;
let said = false;
c.watch(id, (f) => {
  if (f.stream === 'exit') return;
  bytes += f.data.length;
  if (!said && bytes > 4 * 1024 * 1024) {
    said = true;
    process.stdout.write('ready\n');
  }
});
await c.call('process.spawn', { id, command: 'cat', args: ['/dev/zero'] });
const t0 = performance.now();
process.on('SIGTERM', () => {
  process.stdout.write(`${JSON.stringify({ bytes, seconds: (performance.now() - t0) / 1000 })}\n`, () => process.exit(0));
});
