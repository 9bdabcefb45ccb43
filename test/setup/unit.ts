/**
 * Unit tests run no daemon and no child process (npm run test:unit stays under a minute, and a unit test that
 * needs the real thing belongs with the integration tests). This setup makes that a rule rather than a habit: any
 * attempt to start a process or open a socket throws, naming the rule.
 */
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';
import net from 'node:net';

function forbidden(what: string): () => never {
  return () => {
    throw new Error(`unit tests do not ${what}: move this test to an integration file (*.test.ts, not *.unit.test.ts)`);
  };
}

const cp = childProcess as unknown as Record<string, unknown>;
for (const name of ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork']) cp[name] = forbidden('start child processes');
const n = net as unknown as Record<string, unknown>;
for (const name of ['connect', 'createConnection', 'createServer']) n[name] = forbidden('open sockets');
syncBuiltinESMExports();
