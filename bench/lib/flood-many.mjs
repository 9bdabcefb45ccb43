/**
 * A client process for figure 16: connects `connections` times to the daemon (MessagePack), spawns `children`
 * flooding children (`cat /dev/zero`) spread round-robin over those connections, and reads and decodes every frame
 * as fast as it can, in its own process so the measuring client's event loop stays quiet.
 * argv: <socket> <token> <children> <connections>. Prints "ready" once every child has delivered 1 MiB; on SIGTERM
 * prints {bytes, seconds} (bytes decoded since "ready") as JSON and exits.
 */
import { connect } from './client.mjs';

const [socket, token, nChildren, nConnections] = process.argv.slice(2);
const children = Number(nChildren);
const clients = [];
for (let i = 0; i < Number(nConnections); i++) clients.push(await connect({ wire: 'msgpack', socket, token }));
const READY_BYTES = 1024 * 1024;
const perChild = new Array(children).fill(0);
let waiting = children;
let bytes = 0;
let t0;
for (let i = 0; i < children; i++) {
  const c = clients[i % clients.length];
  const id = `flood-${i}`;
  c.watch(id, (f) => {
    if (f.stream === 'exit') return;
    bytes += f.data.length;
    if (perChild[i] < READY_BYTES && (perChild[i] += f.data.length) >= READY_BYTES && --waiting === 0) {
      bytes = 0;
      t0 = performance.now();
      process.stdout.write('ready\n');
    }
  });
}
await Promise.all(
  Array.from({ length: children }, (_, i) =>
    clients[i % clients.length].call('process.spawn', { id: `flood-${i}`, command: 'cat', args: ['/dev/zero'] }),
  ),
);
process.on('SIGTERM', () => {
  process.stdout.write(`${JSON.stringify({ bytes, seconds: (performance.now() - (t0 ?? performance.now())) / 1000 })}\n`, () => process.exit(0));
});
