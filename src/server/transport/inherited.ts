/**
 * Serving a listening socket this process inherited (systemd socket activation, src/daemon/activation.ts) instead
 * of binding one: `server.listen({fd})`. The descriptor stays the listener's; libuv marks it close-on-exec, so
 * children never inherit it (checked in test/ops/activation.test.ts).
 */
import type net from 'node:net';

export class InheritedListenError extends Error {}

export function listenInherited(server: net.Server, fd: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new InheritedListenError(`listen on inherited fd ${fd}: ${err.message}`));
    server.once('error', onError);
    server.listen({ fd }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
