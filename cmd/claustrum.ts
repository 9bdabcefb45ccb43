#!/usr/bin/env node
/**
 * The `claustrum` executable: flag parsing and mode selection, nothing else.
 */
import path from 'node:path';
import { auditPath, runAuditTail, runAuditVerify, TAIL_USAGE, VERIFY_USAGE } from '../src/audit/cli.js';
import { flagValue, formatUsage, HelpRequested, parseFlags, type FlagSpec, type FlagValue, type ParsedFlags } from '../src/cli/flags.js';
import { LOGS_USAGE, runLogs } from '../src/cli/logs.js';
import { RUN_USAGE, runCommand } from '../src/cli/run.js';
import { runBridge } from '../src/daemon/bridge.js';
import { defaultSocketPath, runDirectory } from '../src/protocol/paths.js';
import { stopDaemon } from '../src/daemon/stop.js';
import { runInstall, runProbeCli } from '../src/install/install.js';
import { DEFAULT_CLI_KEEP } from '../src/install/bounds.js';
import { quietWriter } from '../src/install/io.js';
import { silentLogger } from '../src/log/logger.js';
import { runServeMode } from '../src/cli/serve.js';
import { BUILD } from '../src/version.js';

const FLAGS: readonly FlagSpec[] = [
  // modes
  { name: 'serve', kind: 'bool', usage: 'run the RPC server on -socket: start it detached and return once it accepts (see -foreground)' },
  { name: 'stop', kind: 'bool', usage: 'stop the daemon on -socket; prints one word: stopped, none, terminated, killed or survivor' },
  { name: 'bridge', kind: 'bool', usage: 'relay stdin/stdout to the daemon on -socket, adding nothing (what an SSH session attaches to)' },
  { name: 'version', kind: 'bool', usage: 'print the version and build time, then exit' },
  {
    name: 'install',
    kind: 'bool',
    usage: 'ensure the agent CLI -cli-version is in -cli-dir (present, or from -cli-zst / -cli-url); prints one __INSTALL_RESULT__ line',
  },
  {
    name: 'probe-cli',
    kind: 'string',
    arg: 'path',
    usage: 'run <path> --version (30s bound); prints nothing, __CLI_HUNG__ or __CLI_BAD__; always exits 0',
  },
  {
    name: 'run',
    kind: 'bool',
    usage: `run a command through the daemon on -socket (started if none answers): ${RUN_USAGE}; stdio, EOF and SIGINT/SIGTERM/SIGHUP are forwarded, a dropped connection is reattached, and the exit code is the command's (128+signal)`,
  },
  {
    name: 'logs',
    kind: 'string',
    arg: 'id',
    usage:
      "print what process <id> wrote (stdout to stdout, stderr to stderr) as an observer: it never takes the process from its owner; exit code = the process's once it exited",
  },
  {
    name: 'f',
    kind: 'bool',
    usage: 'with -logs: follow live output until the process exits; with -audit-tail: follow the log (across rotations) until interrupted',
  },
  {
    name: 'audit-verify',
    kind: 'bool',
    usage: `check an audit log's hash chain over all its rotated files: ${VERIFY_USAGE} (default path: audit.jsonl beside -socket); exit 0 intact, 1 problems (each at its record), 2 no log`,
  },
  {
    name: 'audit-tail',
    kind: 'bool',
    usage: `print an audit log's records in order, and with -f follow it across rotations: ${TAIL_USAGE}; gaps and truncations are reported on stderr`,
  },
  // audit-verify, audit-tail
  { name: 'json', kind: 'bool', usage: 'with -audit-verify: print the report as one JSON object' },
  {
    name: 'audit-head',
    kind: 'string',
    arg: 'hash',
    usage: 'with -audit-verify: a head hash kept elsewhere (from /info or the metrics); the log must contain it, else its end was cut',
  },
  { name: 'from-seq', kind: 'int', arg: 'n', default: 0, usage: 'with -audit-tail: show records after seq n (resume from the last seq seen)' },
  {
    name: 'from-log',
    kind: 'string',
    arg: 'id',
    usage: 'with -audit-tail: the log id that -from-seq belongs to; another log at the path is reported and shown whole',
  },
  { name: 'pretty', kind: 'bool', usage: 'with -audit-tail: render records as [audit.<kind>] k:v lines (for people; the JSON lines are the record)' },
  // where
  {
    name: 'socket',
    kind: 'string',
    arg: 'path',
    default: '$XDG_RUNTIME_DIR/claustrum/rpc.sock, else ~/.claustrum/rpc.sock',
    usage: 'Unix socket path; its directory holds daemon.token, daemon.lock, remote-server.log and children/',
  },
  // serve
  { name: 'foreground', kind: 'bool', usage: 'with -serve: stay in the foreground and log to stderr (npm start, systemd, tests)' },
  {
    name: 'token-file',
    kind: 'string',
    arg: 'path',
    usage: 'with -serve: read the auth token from this file once (one trailing newline stripped), then unlink it',
  },
  {
    name: 'token-fd',
    kind: 'int',
    arg: 'n',
    default: -1,
    usage: 'with -serve: read the auth token (one line) from this open file descriptor; it never touches disk, argv or the environment',
  },
  {
    name: 'stall-timeout',
    kind: 'duration',
    arg: 'duration',
    default: '30s',
    usage: 'with -serve: drop a receiver that takes no output for this long while a child waits on it (Go duration: 30s, 2m)',
  },
  {
    name: 'replay-budget',
    kind: 'bytes',
    arg: 'size',
    default: '1GiB',
    usage:
      'with -serve: the most every replay buffer together may hold (each keeps its own 16 MiB cap); over it, exited processes lose their buffered output first, oldest first, then the largest live buffers their oldest frames (never frames an owner has not been sent). Sizes: 512MiB, 2GiB, bytes',
  },
  { name: 'keep-children', kind: 'bool', usage: 'with -serve: leave children running across a graceful shutdown (they lose their stdio)' },
  { name: 'no-login-path', kind: 'bool', usage: "with -serve: give children the daemon's PATH instead of the login shell's" },
  {
    name: 'ws-addr',
    kind: 'string',
    arg: 'host:port',
    usage:
      'with -serve: also serve WebSocket on ws://host:port/rpc (text = JSON, binary = MessagePack; auth on every request); use a loopback address such as 127.0.0.1:7777',
  },
  {
    name: 'ws-allow-origin',
    kind: 'list',
    arg: 'origin',
    usage:
      'with -serve -ws-addr: a browser Origin allowed to connect, e.g. https://app.example (repeatable); requests without Origin are allowed, other origins get 403',
  },
  {
    name: 'metrics-addr',
    kind: 'string',
    arg: 'host:port',
    usage: 'with -serve: serve Prometheus metrics on http://host:port/metrics (no auth: bind to loopback, e.g. 127.0.0.1:9090)',
  },
  {
    name: 'max-extract-bytes',
    kind: 'int',
    arg: 'n',
    default: 0,
    usage:
      'with -serve: files.extract_tar writes at most n bytes of file content per archive, else fails "extraction size limit exceeded" (0: no cap)',
  },
  {
    name: 'git-timeout',
    kind: 'duration',
    arg: 'duration',
    default: '0s',
    usage: 'with -serve: kill any git call of the git.* methods that runs longer than this (Go duration: 30s, 2m; 0: no deadline)',
  },
  // install
  {
    name: 'cli-version',
    kind: 'string',
    arg: 'version',
    usage: 'with -install: the CLI version, one path component; the CLI is <cli-dir>/<version>',
  },
  {
    name: 'cli-dir',
    kind: 'string',
    arg: 'dir',
    default: '~/.claustrum/cli',
    usage: 'with -install: the folder of installed CLI versions (created 0700)',
  },
  {
    name: 'cli-url',
    kind: 'string',
    arg: 'url',
    usage: 'with -install: download the zstd-compressed CLI from this http(s) URL (needs -cli-checksum)',
  },
  {
    name: 'cli-checksum',
    kind: 'string',
    arg: 'sha256',
    usage: 'with -install: lower-case hex SHA-256 of the .zst; always checked for -cli-url, for -cli-zst when given',
  },
  { name: 'cli-zst', kind: 'string', arg: 'path', usage: 'with -install: a local zstd-compressed CLI; consumed once decompressed' },
  {
    name: 'cli-keep',
    kind: 'int',
    arg: 'n',
    default: DEFAULT_CLI_KEEP,
    usage: 'with -install: after an install, keep this many newest entries of -cli-dir',
  },
  {
    name: 'max-cli-bytes',
    kind: 'int',
    arg: 'n',
    usage: 'with -install: cap on the download and on the decompressed CLI, in bytes (0: no cap)',
  },
  {
    name: 'cli-download-timeout',
    kind: 'duration',
    arg: 'duration',
    usage: 'with -install: deadline on the whole -cli-url download (0: none; a 60s stall aborts it regardless)',
  },
];

const MODES = ['version', 'install', 'probe-cli', 'serve', 'bridge', 'stop', 'run', 'logs', 'audit-verify', 'audit-tail'] as const;

/** Serve flags a launcher hands on to the daemon it starts (the token sources it consumes itself). */
const NOT_FORWARDED = new Set([
  ...['serve', 'foreground', 'socket', 'token-file', 'token-fd', 'stop', 'bridge', 'version', 'install', 'probe-cli', 'run', 'logs', 'f'],
  ...['cli-version', 'cli-dir', 'cli-url', 'cli-checksum', 'cli-zst', 'cli-keep', 'max-cli-bytes', 'cli-download-timeout'],
  ...['audit-verify', 'audit-tail', 'json', 'audit-head', 'from-seq', 'from-log', 'pretty'],
]);

function usage(): string {
  return `Usage: claustrum -serve [flags] | -stop | -bridge | -version   [-socket path]\n       claustrum -install -cli-version v [install flags] | -probe-cli path\n       ${RUN_USAGE}\n       ${LOGS_USAGE}\n       ${VERIFY_USAGE}\n       ${TAIL_USAGE}\n\n${formatUsage(FLAGS)}\n`;
}

function forwardedFlags(parsed: ParsedFlags): string[] {
  const out: string[] = [];
  for (const [name, value] of parsed.given) {
    if (NOT_FORWARDED.has(name)) continue;
    const spec = FLAGS.find((f) => f.name === name)!;
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) out.push(`-${name}=${spec.kind === 'duration' ? `${v}ms` : String(v)}`);
  }
  return out;
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed: ParsedFlags;
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
  const get = <T extends FlagValue>(name: string) => flagValue<T>(FLAGS, parsed, name);
  const socketPath = path.resolve(parsed.given.has('socket') ? get<string>('socket') : defaultSocketPath());

  if (get<boolean>('version')) {
    process.stdout.write(`claustrum ${BUILD.version} (built ${BUILD.builtAt})\n`);
    return 0;
  }
  if (get<boolean>('install')) {
    return runInstall({
      cliVersion: get<string>('cli-version'),
      cliDir: parsed.given.has('cli-dir') ? get<string>('cli-dir') : '',
      cliUrl: get<string>('cli-url'),
      cliChecksum: get<string>('cli-checksum'),
      cliZst: get<string>('cli-zst'),
      cliKeep: get<number>('cli-keep'),
      maxCliBytes: get<number>('max-cli-bytes'),
      downloadTimeoutMs: get<number>('cli-download-timeout'),
      stdout: quietWriter(process.stdout),
      stderr: quietWriter(process.stderr),
    });
  }
  if (get<string>('probe-cli') !== '') return runProbeCli(get<string>('probe-cli'), quietWriter(process.stdout));
  if (get<boolean>('serve')) {
    return runServeMode({
      socketPath,
      foreground: get<boolean>('foreground'),
      tokenFile: get<string>('token-file'),
      tokenFd: get<number>('token-fd'),
      forward: forwardedFlags(parsed),
      stallTimeoutMs: get<number>('stall-timeout'),
      maxExtractBytes: get<number>('max-extract-bytes'),
      gitTimeoutMs: get<number>('git-timeout'),
      keepChildren: get<boolean>('keep-children'),
      replayBudgetBytes: get<number>('replay-budget'),
      loginPath: !get<boolean>('no-login-path'),
      metricsAddr: parsed.given.has('metrics-addr') ? get<string>('metrics-addr') : undefined,
      websocket: parsed.given.has('ws-addr') ? { addr: get<string>('ws-addr'), allowOrigins: get<string[]>('ws-allow-origin') } : undefined,
    });
  }
  if (get<boolean>('bridge')) {
    return runBridge(socketPath, process.stdin, process.stdout, (line) => process.stderr.write(`${line}\n`));
  }
  if (get<boolean>('stop')) {
    // One word on stdout is the whole answer; the eviction steps behind it are not narrated.
    const word = await stopDaemon(socketPath, silentLogger);
    process.stdout.write(`${word}\n`);
    return 0;
  }
  if (get<boolean>('run')) return runCommand({ socket: socketPath, argv: parsed.positionals });
  if (parsed.given.has('logs')) return runLogs({ socket: socketPath, id: get<string>('logs'), follow: get<boolean>('f') });
  if (get<boolean>('audit-verify') || get<boolean>('audit-tail')) {
    if (parsed.positionals.length > 1) {
      process.stderr.write(`claustrum: one audit log path at most (got ${parsed.positionals.length})\n${usage()}`);
      return 2;
    }
    const file = auditPath(parsed.positionals[0], runDirectory(socketPath));
    const stdout = { write: quietWriter(process.stdout) };
    const stderr = { write: quietWriter(process.stderr) };
    if (get<boolean>('audit-verify'))
      return runAuditVerify({ path: file, json: get<boolean>('json'), head: get<string>('audit-head'), stdout, stderr });
    const stop = new AbortController();
    for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(sig, () => stop.abort());
    return runAuditTail({
      path: file,
      follow: get<boolean>('f'),
      fromSeq: get<number>('from-seq'),
      fromLog: get<string>('from-log'),
      pretty: get<boolean>('pretty'),
      stdout: process.stdout,
      stderr,
      signal: stop.signal,
    });
  }
  process.stderr.write(`claustrum: one of ${MODES.map((m) => `--${m}`).join('/')} is required\n`);
  return 2;
}

process.exitCode = await main(process.argv.slice(2));
// A daemon's last handles (timers, the metrics listener) must not keep a finished process alive; other modes end
// on their own once stdout has drained.
if (process.argv.slice(2).some((a) => /^--?serve(=|$)/.test(a))) process.exit(process.exitCode);
