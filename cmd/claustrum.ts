#!/usr/bin/env node
/**
 * The `claustrum` executable: flag parsing and mode selection, nothing else.
 */
import { flagValue, formatUsage, HelpRequested, parseFlags, type FlagSpec } from '../src/cli/flags.js';
import { defaultSocketPath } from '../src/daemon/paths.js';
import { runDaemon } from '../src/daemon/serve.js';
import { TokenError } from '../src/daemon/token.js';
import { Logger, parseLogLevel } from '../src/log/logger.js';
import { SocketSetupError } from '../src/server/unix.js';
import { BUILD } from '../src/version.js';

const FLAGS: readonly FlagSpec[] = [
  // modes
  { name: 'serve', kind: 'bool', usage: 'run the RPC server on -socket' },
  { name: 'version', kind: 'bool', usage: 'print the version and build time, then exit' },
  // serve
  { name: 'foreground', kind: 'bool', usage: 'serve in the foreground (for npm start, systemd and tests)' },
  {
    name: 'socket',
    kind: 'string',
    arg: 'path',
    default: '$XDG_RUNTIME_DIR/claustrum/rpc.sock, else ~/.claustrum/rpc.sock',
    usage: 'Unix socket path; its directory holds daemon.token and the daemon files',
  },
  {
    name: 'token-file',
    kind: 'string',
    arg: 'path',
    usage: 'read the auth token from this file once (one trailing newline stripped), then unlink it; without a token source a random token is generated',
  },
  {
    name: 'stall-timeout',
    kind: 'duration',
    arg: 'duration',
    default: '30s',
    usage: 'drop a receiver that takes no output for this long while a child waits on it (Go duration: 30s, 2m)',
  },
];

const MODES = ['version', 'serve'] as const;

function usage(): string {
  return `Usage: claustrum -serve [flags] | -version\n\n${formatUsage(FLAGS)}\n`;
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseFlags(FLAGS, argv);
  } catch (err) {
    if (err instanceof HelpRequested) {
      process.stdout.write(usage());
      return 0;
    }
    process.stderr.write(`${(err as Error).message}\n${usage()}`);
    return 2;
  }
  const get = <T extends string | number | boolean | string[]>(name: string) => flagValue<T>(FLAGS, parsed, name);

  if (get<boolean>('version')) {
    process.stdout.write(`claustrum ${BUILD.version} (built ${BUILD.builtAt})\n`);
    return 0;
  }
  if (!get<boolean>('serve')) {
    process.stderr.write(`claustrum: one of ${MODES.map((m) => `--${m}`).join('/')} is required\n`);
    return 2;
  }

  const log = new Logger(parseLogLevel(process.env.CLAUSTRUM_LOG_LEVEL));
  const tokenFile = get<string>('token-file');
  try {
    return await runDaemon({
      socketPath: parsed.given.has('socket') ? get<string>('socket') : defaultSocketPath(),
      tokenSource: tokenFile ? { kind: 'file', path: tokenFile } : { kind: 'generate' },
      flow: { stallTimeoutMs: get<number>('stall-timeout') },
      log,
      print: (line) => process.stdout.write(`${line}\n`),
    });
  } catch (err) {
    if (err instanceof TokenError || err instanceof SocketSetupError) {
      process.stderr.write(`claustrum: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

process.exitCode = await main(process.argv.slice(2));
// The daemon's timers and handles must not keep a finished process alive.
if (process.exitCode !== undefined) process.exit(process.exitCode);
