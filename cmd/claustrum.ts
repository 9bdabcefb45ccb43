#!/usr/bin/env node
/**
 * The `claustrum` executable: flag parsing and mode selection, nothing else.
 *
 * Exactly one mode per run; every other flag names the modes it applies to, and a flag given with a mode it does
 * not apply to is an error, as are two modes at once. `claustrum -<mode> -help` prints that mode's own help.
 */
import path from 'node:path';
import {
  AUDIT_SERVE_FLAGS,
  AuditFlagError,
  auditPath,
  auditServeOptions,
  runAuditTail,
  runAuditVerify,
  TAIL_USAGE,
  VERIFY_USAGE,
} from '../src/audit/cli.js';
import { flagValue, formatUsage, HelpRequested, parseFlags, type FlagSpec, type FlagValue, type ParsedFlags } from '../src/cli/flags.js';
import { CliError } from '../src/cli/connect.js';
import { KILL_USAGE, runKill } from '../src/cli/kill.js';
import { PS_USAGE, runPs } from '../src/cli/ps.js';
import { PURGE_USAGE, runPurge } from '../src/cli/purge.js';
import { LOGS_USAGE, runLogs } from '../src/cli/logs.js';
import { shellQuote } from '../src/cli/format.js';
import { DEFAULT_RECONNECT_BUDGET_MS, RUN_USAGE, runCommand } from '../src/cli/run.js';
import { ATTACH_USAGE, runAttach } from '../src/cli/terminal.js';
import { DEFAULT_ESCAPE_CHAR, parseEscapeChar } from '../src/cli/terminal-input.js';
import { HANDOVER_ENV, RESTART_USAGE, runRestart } from '../src/cli/restart.js';
import { runServeMode } from '../src/cli/serve.js';
import { runService, SERVICE_ACTIONS, SERVICE_USAGE, type ServiceAction } from '../src/cli/service.js';
import { runStatus, STATUS_USAGE } from '../src/cli/status.js';
import { runBridge } from '../src/daemon/bridge.js';
import { ON_DEMAND_IDLE_EXIT_MS } from '../src/daemon/idle.js';
import { DAEMON_CHILD_ENV } from '../src/daemon/launcher.js';
import { defaultSocketPath, runDirectory } from '../src/protocol/paths.js';
import { checkSocketPath } from '../src/daemon/socketpath.js';
import { stopDaemon } from '../src/daemon/stop.js';
import { runInstall, runProbeCli } from '../src/install/install.js';
import { DEFAULT_CLI_KEEP } from '../src/install/bounds.js';
import { quietWriter } from '../src/install/io.js';
import { LOG_FORMATS, type LogFormat, silentLogger } from '../src/log/logger.js';
import { formatDuration } from '../src/util/duration.js';
import { splitHostPort } from '../src/util/hostport.js';
import { BUILD } from '../src/version.js';

/** The modes, in the order -help lists them. */
const MODES = [
  'version',
  'install',
  'probe-cli',
  'serve',
  'bridge',
  'stop',
  'restart',
  'run',
  'attach',
  'logs',
  'status',
  'ps',
  'kill',
  'purge',
  'service',
  'audit-verify',
  'audit-tail',
] as const;
type Mode = (typeof MODES)[number];

/** Modes that work on a daemon's socket. */
const SOCKET_MODES: readonly Mode[] = ['serve', 'stop', 'restart', 'bridge', 'run', 'attach', 'logs', 'status', 'ps', 'kill', 'purge', 'service'];
/** Modes that read an audit log: its path defaults to audit.jsonl beside -socket. */
const AUDIT_MODES: readonly Mode[] = ['audit-verify', 'audit-tail'];
/** Flags of the daemon itself: -serve runs with them, -service bakes them into the unit. */
const DAEMON: readonly Mode[] = ['serve', 'service'];

const FLAGS: readonly FlagSpec[] = [
  // modes
  { name: 'serve', kind: 'bool', usage: 'run the RPC server on -socket: start it detached and return once it accepts (see -foreground)' },
  { name: 'stop', kind: 'bool', usage: 'stop the daemon on -socket; prints one word: stopped, none, terminated, killed or survivor' },
  {
    name: 'restart',
    kind: 'bool',
    usage:
      'replace the daemon on -socket by one of this build with the same flags; its processes keep running and are handed over, output and stdin intact',
  },
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
    usage:
      'run a command through the daemon on -socket (started if none answers) as if here: this PATH, directory and environment; stdio, EOF and signals reach it, the exit code is its own. On a terminal of the daemon when stdin and stdout are terminals (-t, -T)',
  },
  {
    name: 'attach',
    kind: 'string',
    arg: 'id',
    usage:
      'come back to terminal process <id> (one -run -t detached from, or any process spawned with a pty): its screen as it is now, then live; detach again with Enter ~ .',
  },
  {
    name: 'status',
    kind: 'bool',
    usage: 'is a daemon running on -socket: running (exit 0), stale state left by a dead one (1), stopped (3), unknown (4); with what it holds',
  },
  { name: 'ps', kind: 'bool', usage: "list the daemon's processes: id, pid, state, age, CPU, memory, terminal, observers, command" },
  {
    name: 'kill',
    kind: 'string',
    arg: 'id',
    usage: "signal the process group of the daemon's process <id> (-signal, default TERM); -wait for its end",
  },
  {
    name: 'purge',
    kind: 'bool',
    usage:
      'stop the daemon on -socket and delete its state: the socket, daemon.token, daemon.lock, remote-server.log(.old), client-start.lock, children/ and, if then empty, the directory; refused while processes run unless -force',
  },
  {
    name: 'service',
    kind: 'string',
    arg: 'install|uninstall|status',
    usage:
      'run the daemon as a systemd user service (launchd agent on macOS): install writes and enables the unit, uninstall removes it, status shows it',
  },
  // where
  {
    name: 'socket',
    kind: 'string',
    arg: 'path',
    default: '$XDG_RUNTIME_DIR/claustrum/rpc.sock, else ~/.claustrum/rpc.sock',
    usage: 'Unix socket path; its directory holds daemon.token, daemon.lock, remote-server.log and children/',
    modes: [...SOCKET_MODES, ...AUDIT_MODES],
  },
  // operator commands
  {
    name: 'json',
    kind: 'bool',
    usage: 'print JSON instead of a table (-status, -ps, -kill, -purge, -service); with -audit-verify the report as one object',
    modes: ['status', 'ps', 'kill', 'purge', 'service', 'audit-verify'],
  },
  {
    name: 'token-fd',
    kind: 'int',
    arg: 'n',
    default: -1,
    usage:
      'the auth token (one line) from this open descriptor. -serve: it never touches argv or the environment, and no daemon.token is written unless -write-token. -run, -attach, -logs, -status, -ps, -kill, -purge: authenticate with it (a daemon started with -token-fd has no daemon.token)',
    modes: ['serve', 'run', 'attach', 'logs', 'status', 'ps', 'kill', 'purge'],
  },
  { name: 'signal', kind: 'string', arg: 'name', default: 'TERM', usage: 'with -kill: TERM, INT, HUP or KILL', modes: ['kill'] },
  {
    name: 'wait',
    kind: 'bool',
    usage: 'with -kill: wait for the process to end, up to 3s, then SIGKILL its group and wait up to 7s more; exit 1 if it still runs',
    modes: ['kill'],
  },
  {
    name: 'force',
    kind: 'bool',
    usage: 'with -purge: go ahead although processes run (they are killed) or the state cannot be judged',
    modes: ['purge'],
  },
  {
    name: 'socket-activation',
    kind: 'bool',
    usage: 'with -service install: also a .socket unit that owns the socket and starts the daemon at the first connection (fd 3, LISTEN_FDS)',
    modes: ['service'],
  },
  // run
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
    modes: ['logs', 'audit-tail'],
  },
  { name: 'daemon-env', kind: 'bool', usage: "with -run: the daemon's environment and PATH lookup instead of this shell's", modes: ['run'] },
  {
    name: 't',
    kind: 'bool',
    usage:
      'with -run: run the command on a pseudo-terminal of the daemon, this terminal in raw mode as its screen and keyboard (size and every change sent; a dropped connection resumed with the screen; Enter ~ . detaches). The default when stdin and stdout are terminals; stdout and stderr are then one stream',
    modes: ['run'],
  },
  {
    name: 'T',
    kind: 'bool',
    usage: 'with -run: run the command on pipes even at a terminal (stdout and stderr apart, EOF forwarded)',
    modes: ['run'],
  },
  {
    name: 'escape-char',
    kind: 'string',
    arg: 'c',
    default: DEFAULT_ESCAPE_CHAR,
    usage:
      'with -run -t and -attach: the escape character, special right after Enter: c. detaches (the process keeps running), c? lists the escapes, cc sends c itself. One character, ^X for a control character, or none',
    modes: ['run', 'attach'],
  },
  {
    name: 'reconnect-budget',
    kind: 'duration',
    arg: 'duration',
    default: formatDuration(DEFAULT_RECONNECT_BUDGET_MS),
    usage:
      'with -run and -attach: how long a dropped connection is retried before giving up (a daemon that is gone is reported at once; a terminal process is left running)',
    modes: ['run', 'attach'],
  },
  {
    name: 'idle-exit',
    kind: 'duration',
    arg: 'duration',
    default: '0s',
    usage: `the daemon shuts down after this long with no live process and no connection (0: never). -run starts a daemon with ${formatDuration(ON_DEMAND_IDLE_EXIT_MS)} unless given`,
    modes: ['serve', 'service', 'run'],
  },
  // serve
  { name: 'foreground', kind: 'bool', usage: 'with -serve: stay in the foreground and log to stderr (npm start, systemd, tests)', modes: ['serve'] },
  {
    name: 'token-file',
    kind: 'string',
    arg: 'path',
    usage: 'with -serve: read the auth token from this file once (one trailing newline stripped), then unlink it',
    modes: ['serve'],
  },
  {
    name: 'write-token',
    kind: 'bool',
    usage: 'with -serve: write daemon.token beside the socket (the default, except for a token from -token-fd); -write-token=false: never',
    modes: DAEMON,
  },
  {
    name: 'stall-timeout',
    kind: 'duration',
    arg: 'duration',
    default: '30s',
    usage: 'with -serve: drop a receiver that takes no output for this long while a child waits on it (Go duration: 30s, 2m)',
    modes: DAEMON,
  },
  {
    name: 'replay-budget',
    kind: 'bytes',
    arg: 'size',
    default: '1GiB',
    usage:
      'with -serve: the most every replay buffer together may hold (each keeps its own 16 MiB cap); over it, exited processes lose their buffered output first, oldest first, then the largest live buffers their oldest frames (never frames an owner has not been sent). Sizes: 512MiB, 2GiB, bytes',
    modes: DAEMON,
  },
  {
    name: 'keep-children',
    kind: 'bool',
    usage: 'with -serve: leave children running across a graceful shutdown (they lose their stdio)',
    modes: DAEMON,
  },
  { name: 'no-login-path', kind: 'bool', usage: "with -serve: give children the daemon's PATH instead of the login shell's", modes: DAEMON },
  {
    name: 'ws-addr',
    kind: 'string',
    arg: 'host:port',
    usage:
      'with -serve: also serve WebSocket on ws://host:port/rpc (text = JSON, binary = MessagePack; auth on every request); use a loopback address such as 127.0.0.1:7777',
    modes: DAEMON,
  },
  {
    name: 'ws-allow-origin',
    kind: 'list',
    arg: 'origin',
    usage:
      'with -serve -ws-addr: a browser Origin allowed to connect, e.g. https://app.example (repeatable); requests without Origin are allowed, other origins get 403',
    modes: DAEMON,
  },
  {
    name: 'console',
    kind: 'bool',
    usage:
      'with -serve -ws-addr: also serve the browser console at http://host:port/ on the -ws-addr listener (same Origin and Host checks; the page asks for the token and keeps it in the tab only)',
    modes: DAEMON,
  },
  {
    name: 'metrics-addr',
    kind: 'string',
    arg: 'host:port',
    usage:
      'with -serve: serve Prometheus metrics on http://host:port/metrics, and /healthz, /readyz, /info (no auth: bind to loopback, e.g. 127.0.0.1:9090)',
    modes: DAEMON,
  },
  {
    name: 'drain-timeout',
    kind: 'duration',
    arg: 'duration',
    default: '0s',
    usage:
      'with -serve: on SIGTERM first refuse new processes, report not ready, and wait up to this long for the children to exit, then shut down (0: shut down at once)',
    modes: DAEMON,
  },
  {
    name: 'log-format',
    kind: 'string',
    arg: 'text|json',
    default: 'text',
    usage: 'with -serve: log lines as text, or as one JSON object per line (time, level, component, msg)',
    modes: DAEMON,
  },
  {
    name: 'log-file',
    kind: 'string',
    arg: 'path|-',
    usage:
      'with -serve: where the log goes: a file (0600, rotated to .old at start), or - for stderr (-foreground only); default stderr in the foreground, else remote-server.log',
    modes: DAEMON,
  },
  {
    name: 'max-extract-bytes',
    kind: 'int',
    arg: 'n',
    default: 0,
    usage:
      'with -serve: files.extract_tar writes at most n bytes of file content per archive, else fails "extraction size limit exceeded" (0: no cap)',
    modes: DAEMON,
  },
  {
    name: 'git-timeout',
    kind: 'duration',
    arg: 'duration',
    default: '0s',
    usage: 'with -serve: kill any git call of the git.* methods that runs longer than this (Go duration: 30s, 2m; 0: no deadline)',
    modes: DAEMON,
  },
  // the audit trail (src/audit/cli.ts)
  ...AUDIT_SERVE_FLAGS.map((f) => ({ ...f, modes: DAEMON })),
  {
    name: 'audit-verify',
    kind: 'bool',
    usage: `check an audit log's hash chain over all its rotated files (default path: audit.jsonl beside -socket); exit 0 intact, 1 problems (each at its record), 2 no log`,
  },
  {
    name: 'audit-tail',
    kind: 'bool',
    usage: `print an audit log's records in order (default path: audit.jsonl beside -socket), and with -f follow it across rotations; gaps and truncations are reported on stderr`,
  },
  {
    name: 'audit-head',
    kind: 'string',
    arg: 'hash',
    usage: 'with -audit-verify: a head hash kept elsewhere (from /info or the metrics); the log must contain it, else its end was cut',
    modes: ['audit-verify'],
  },
  {
    name: 'from-seq',
    kind: 'int',
    arg: 'n',
    default: 0,
    usage: 'with -audit-tail: show records after seq n (resume from the last seq seen)',
    modes: ['audit-tail'],
  },
  {
    name: 'from-log',
    kind: 'string',
    arg: 'id',
    usage: 'with -audit-tail: the log id that -from-seq belongs to; another log at the path is reported and shown whole',
    modes: ['audit-tail'],
  },
  {
    name: 'pretty',
    kind: 'bool',
    usage: 'with -audit-tail: render records as [audit.<kind>] k:v lines (for people; the JSON lines are the record)',
    modes: ['audit-tail'],
  },
  // install
  {
    name: 'cli-version',
    kind: 'string',
    arg: 'version',
    usage: 'with -install: the CLI version, one path component; the CLI is <cli-dir>/<version>',
    modes: ['install'],
  },
  {
    name: 'cli-dir',
    kind: 'string',
    arg: 'dir',
    default: '~/.claustrum/cli',
    usage: 'with -install: the folder of installed CLI versions (created 0700)',
    modes: ['install'],
  },
  {
    name: 'cli-url',
    kind: 'string',
    arg: 'url',
    usage: 'with -install: download the zstd-compressed CLI from this http(s) URL (needs -cli-checksum)',
    modes: ['install'],
  },
  {
    name: 'cli-checksum',
    kind: 'string',
    arg: 'sha256',
    usage: 'with -install: lower-case hex SHA-256 of the .zst; always checked for -cli-url, for -cli-zst when given',
    modes: ['install'],
  },
  {
    name: 'cli-zst',
    kind: 'string',
    arg: 'path',
    usage: 'with -install: a local zstd-compressed CLI; consumed once decompressed',
    modes: ['install'],
  },
  {
    name: 'cli-keep',
    kind: 'int',
    arg: 'n',
    default: DEFAULT_CLI_KEEP,
    usage: 'with -install: after an install, keep this many newest entries of -cli-dir',
    modes: ['install'],
  },
  {
    name: 'max-cli-bytes',
    kind: 'int',
    arg: 'n',
    usage: 'with -install: cap on the download and on the decompressed CLI, in bytes (0: no cap)',
    modes: ['install'],
  },
  {
    name: 'cli-download-timeout',
    kind: 'duration',
    arg: 'duration',
    usage: 'with -install: deadline on the whole -cli-url download (0: none; a 60s stall aborts it regardless)',
    modes: ['install'],
  },
];

/** What each mode is for, and how it is called, for its own -help. */
const MODE_HELP: Readonly<Record<Mode, { readonly usage: string; readonly about: string }>> = {
  version: { usage: 'claustrum -version', about: 'Prints the version and build time.' },
  install: {
    usage: 'claustrum -install -cli-version v [install flags]',
    about: 'Makes sure the agent CLI is installed; prints one __INSTALL_RESULT__ line.',
  },
  'probe-cli': { usage: 'claustrum -probe-cli path', about: 'Runs <path> --version with a 30 s bound; prints nothing, __CLI_HUNG__ or __CLI_BAD__.' },
  serve: {
    usage: 'claustrum -serve [-foreground] [-socket path] [serve flags]',
    about:
      'Starts the daemon (detached unless -foreground) and returns once it accepts. A daemon already serving the socket is taken over: its processes keep running and the new daemon adopts them (said on stderr first).',
  },
  restart: {
    usage: RESTART_USAGE,
    about:
      "Replaces the daemon on the socket by one of this build (an upgrade, when this claustrum is newer) with the flags the running one was started with. Its processes keep running with the keeper and are adopted: seqs, replay, stdin offsets and exits carry over, and clients reattach. Exit code: the new daemon's start, as -serve's; 1 when no daemon runs.",
  },
  bridge: { usage: 'claustrum -bridge [-socket path]', about: 'Relays stdin and stdout to the daemon, adding nothing.' },
  stop: {
    usage: 'claustrum -stop [-socket path]',
    about:
      'Stops the daemon and its children (with -keep-children, the children stay with the keeper for the next daemon to adopt); prints one word.',
  },
  logs: {
    usage: LOGS_USAGE,
    about:
      "Prints what a process wrote, read as an observer (it never takes the process from its owner, never slows it): stdout to stdout, stderr to stderr, a loss announced on stderr with its seqs. With -f, follows it to its exit. Exit code: the process's once it exited (128 + signal), else 0; 1 no such process; 125 the daemon could not be reached.",
  },
  run: {
    usage: RUN_USAGE,
    about:
      "Runs a command through the daemon as if here: looked up with this PATH, in this directory, with this environment (minus the daemon's token and systemd's LISTEN_* and NOTIFY_SOCKET). At a terminal (stdin and stdout) it runs on a pseudo-terminal of the daemon (-t forces it, -T gives pipes): this terminal goes raw, its size follows, a dropped connection is resumed with the screen, and Enter ~ . detaches, leaving the command running for claustrum -attach. On pipes: Ctrl-C, SIGTERM and SIGHUP reach the remote process group; a second Ctrl-C within 2s sends SIGTERM, a third SIGKILL. Exit code: the command's; 125 no daemon or lost, 126 cannot execute, 127 not found.",
  },
  attach: {
    usage: ATTACH_USAGE,
    about:
      "Comes back to a terminal process: this terminal in raw mode shows its screen as it is now (the daemon keeps a screen for what its replay buffer evicted), then live output, and sends it every key and this size. Enter ~ . detaches again (the process keeps running; -escape-char changes the key); a dropped connection is resumed. The process has one owner at a time: attaching takes it from a session still attached elsewhere. Exit code: the process's once it exits; 0 detached; 1 no such terminal process; 125 the daemon could not be reached or was lost.",
  },
  status: {
    usage: STATUS_USAGE,
    about:
      'Says whether a daemon runs on the socket. Exit 0 running (pid, version, instance, uptime, socket, token file, log, processes, connections, replay bytes), 1 stale (a dead daemon left state; what is listed), 3 not running, 4 unknown.',
  },
  ps: { usage: PS_USAGE, about: "Lists the daemon's processes, oldest first." },
  kill: {
    usage: KILL_USAGE,
    about:
      "Sends a signal to the process group of one of the daemon's processes. Exit 1 when there is no such process, or with -wait when it outlives SIGKILL.",
  },
  purge: {
    usage: PURGE_USAGE,
    about:
      "Stops the daemon and deletes its state directory's files: the socket, daemon.token, daemon.lock, remote-server.log and .old, client-start.lock, children/ records, then the directory if it is empty (nothing else is touched). Refused while processes run (they would be killed) unless -force.",
  },
  service: {
    usage: SERVICE_USAGE,
    about:
      'Installs the daemon as a systemd user service (absolute node and script paths, -foreground, Restart=on-failure, KillMode=process so its own shutdown signals its children), optionally with a .socket unit; a launchd agent on macOS. Where systemctl --user is not available it says so and prints the unit.',
  },
  'audit-verify': {
    usage: VERIFY_USAGE,
    about:
      "Checks an audit log's hash chain over all its files, oldest first, and reports each problem at its file, line and seq: a changed byte, a removed, inserted or swapped record, a removed file, a truncated tail. Exit 0 intact, 1 problems found, 2 no log at the path or a bad flag.",
  },
  'audit-tail': {
    usage: TAIL_USAGE,
    about:
      "Prints an audit log's records, oldest first, as the lines in the file (or HUD lines with -pretty); with -f follows the log across rotations until SIGINT, SIGTERM or SIGHUP. It resumes by (log, seq), never by inode. Gaps, truncations and damaged lines are reported on stderr, never skipped silently.",
  },
};

/** Serve flags a launcher does not hand on to the daemon it starts (it consumes them, or decides them itself). */
const NOT_FORWARDED = new Set(['foreground', 'socket', 'token-file', 'token-fd', 'write-token']);

function usage(): string {
  return (
    'Usage: claustrum -serve [flags] | -stop | -bridge | -version   [-socket path]\n' +
    `       ${RESTART_USAGE}\n` +
    '       claustrum -status | -ps | -kill id | -purge | -service install|uninstall|status   [-socket path] [-json]\n' +
    `       ${RUN_USAGE}\n` +
    `       ${ATTACH_USAGE}\n` +
    `       ${LOGS_USAGE}\n` +
    `       ${VERIFY_USAGE}\n` +
    `       ${TAIL_USAGE}\n` +
    '       claustrum -install -cli-version v [install flags] | -probe-cli path\n' +
    '       claustrum -<mode> -help: that mode alone\n\n' +
    `${formatUsage(FLAGS)}\n\n${ENVIRONMENT}`
  );
}

const ENVIRONMENT =
  'Environment:\n' +
  '  CLAUSTRUM_LOG_LEVEL\n' +
  "    \tthe daemon's log threshold: debug, info, warn or error (default debug; anything else means debug)\n" +
  '  XDG_RUNTIME_DIR\n' +
  '    \twhere the default socket lives ($XDG_RUNTIME_DIR/claustrum/rpc.sock)\n';

function modeUsage(mode: Mode): string {
  const help = MODE_HELP[mode];
  const flags = FLAGS.filter((f) => f.name === mode || f.modes?.includes(mode));
  const env = mode === 'serve' || mode === 'service' ? `\n\n${ENVIRONMENT}` : '\n';
  return `Usage: ${help.usage}\n\n${help.about}\n\n${formatUsage(flags)}${env}`;
}

/** The modes given (a bool set to true, a string not empty), in MODES order. */
function givenModes(given: ReadonlyMap<string, FlagValue>): Mode[] {
  return MODES.filter((m) => {
    const v = given.get(m);
    return v === true || (typeof v === 'string' && v !== '');
  });
}

function forwardedFlags(parsed: ParsedFlags, mode: Mode): string[] {
  const out: string[] = [];
  for (const [name, value] of parsed.given) {
    const spec = FLAGS.find((f) => f.name === name)!;
    if (NOT_FORWARDED.has(name) || !spec.modes?.includes('serve') || (mode === 'service' && !spec.modes.includes('service'))) continue;
    const values = Array.isArray(value) ? value : [value];
    for (const v of values) {
      // A relative -audit path is the launcher's: the detached daemon and a service run in another directory.
      const text = name === 'audit' ? forwardedAuditPath(v as string) : spec.kind === 'duration' ? formatDuration(v as number) : String(v);
      out.push(`-${name}=${text}`);
    }
  }
  return out;
}

function forwardedAuditPath(value: string): string {
  return value === 'on' || value === 'off' || value === '' ? value : path.resolve(value);
}

/** The audit options of -serve and -service, from their flags; undefined while the audit is off. */
function auditOptions(get: <T extends FlagValue>(name: string) => T, socketPath: string) {
  return auditServeOptions(
    { audit: get<string>('audit'), maxBytes: get<number>('audit-max-bytes'), keep: get<number>('audit-keep'), full: get<string>('audit-full') },
    runDirectory(socketPath),
  );
}

class UsageError extends Error {}

/** Cross-flag rules the parser cannot know. */
function checkCombination(mode: Mode, parsed: ParsedFlags, get: <T extends FlagValue>(name: string) => T): void {
  for (const name of parsed.given.keys()) {
    const spec = FLAGS.find((f) => f.name === name)!;
    if (spec.modes === undefined) continue;
    if (!spec.modes.includes(mode)) {
      throw new UsageError(`-${name} does not apply to -${mode} (it goes with ${spec.modes.map((m) => `-${m}`).join(', ')})`);
    }
  }
  if (mode === 'run' && get<boolean>('t') && get<boolean>('T')) throw new UsageError('-t and -T: give one (-t a terminal, -T pipes)');
  if (parsed.given.has('escape-char')) {
    try {
      parseEscapeChar(get<string>('escape-char'));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  if (AUDIT_MODES.includes(mode)) {
    if (parsed.positionals.length > 1) throw new UsageError(`-${mode} takes one audit log path at most, but got ${parsed.positionals.length}`);
  } else if (mode !== 'run' && parsed.positionals.length > 0) {
    throw new UsageError(`-${mode} takes no arguments, but got ${JSON.stringify(parsed.positionals[0])}`);
  }
  if (mode === 'serve' || mode === 'service') {
    const format = get<string>('log-format');
    if (!(LOG_FORMATS as readonly string[]).includes(format)) throw new UsageError(`-log-format ${format}: want text or json`);
    if (parsed.given.has('metrics-addr')) {
      try {
        splitHostPort(get<string>('metrics-addr'));
      } catch (err) {
        throw new UsageError(`-metrics-addr: ${(err as Error).message}`);
      }
    }
    if (get<boolean>('console') && !parsed.given.has('ws-addr')) {
      throw new UsageError('-console needs -ws-addr: the page is served on the WebSocket listener (e.g. -ws-addr 127.0.0.1:7777)');
    }
    for (const d of ['drain-timeout', 'idle-exit', 'stall-timeout']) {
      if (get<number>(d) < 0) throw new UsageError(`-${d} must not be negative`);
    }
    try {
      auditOptions(get, defaultSocketPath());
    } catch (err) {
      if (err instanceof AuditFlagError) throw new UsageError(err.message);
      throw err;
    }
    if (get<string>('audit') === 'off') {
      for (const name of ['audit-max-bytes', 'audit-keep', 'audit-full']) {
        if (parsed.given.has(name)) throw new UsageError(`-${name} goes with -audit <path|on>: the audit is off`);
      }
    }
  }
  if (mode === 'serve') {
    if (parsed.given.has('token-file') && get<number>('token-fd') >= 0) throw new UsageError('-token-file and -token-fd: give one token source');
    if (get<string>('log-file') === '-' && !get<boolean>('foreground')) {
      throw new UsageError('-log-file - (stderr) needs -foreground: a detached daemon has no terminal; give a file path');
    }
    // (The detached daemon gets its token over the launcher's pipe and -write-token from the launcher.)
    // (A restart's daemon takes the keeper's token: not a generated one nobody knows.)
    const detachedDaemon = process.env[DAEMON_CHILD_ENV] === '1' || process.env[HANDOVER_ENV] === '1';
    // Read once, here: neither the daemon this starts nor its children inherit it.
    delete process.env[HANDOVER_ENV];
    if (!detachedDaemon && parsed.given.get('write-token') === false && !parsed.given.has('token-file') && get<number>('token-fd') < 0) {
      throw new UsageError('-write-token=false with a generated token: nobody could learn it; give -token-fd or -token-file');
    }
  }
  if (mode === 'service') {
    const action = get<string>('service');
    if (!(SERVICE_ACTIONS as readonly string[]).includes(action)) throw new UsageError(`-service ${action}: want install, uninstall or status`);
    if (action !== 'install' && parsed.given.has('socket-activation')) throw new UsageError('-socket-activation goes with -service install');
    if (get<string>('log-file') === '-') throw new UsageError('-log-file -: a service logs to stderr (the journal) already; give a path or nothing');
    if (parsed.given.get('write-token') === false)
      throw new UsageError('-write-token=false: a service generates its token, which nobody could then learn');
  }
}

async function main(argv: readonly string[]): Promise<number> {
  let parsed: ParsedFlags;
  try {
    parsed = parseFlags(FLAGS, argv);
  } catch (err) {
    if (err instanceof HelpRequested) {
      const [mode] = givenModes(err.given);
      process.stdout.write(mode ? modeUsage(mode) : usage());
      return 0;
    }
    process.stderr.write(`${(err as Error).message}\n${usage()}`);
    return 2;
  }
  const get = <T extends FlagValue>(name: string) => flagValue<T>(FLAGS, parsed, name);
  const modes = givenModes(parsed.given);
  if (modes.length === 0) {
    process.stderr.write(`claustrum: one of ${MODES.map((m) => `-${m}`).join('/')} is required (claustrum -help lists them)\n`);
    return 2;
  }
  if (modes.length > 1) {
    process.stderr.write(`claustrum: ${modes.map((m) => `-${m}`).join(' and ')} are different modes: give one\n`);
    return 2;
  }
  const mode = modes[0]!;
  try {
    checkCombination(mode, parsed, get);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`claustrum: ${err.message}\n${modeUsage(mode)}`);
    return 2;
  }
  const socketPath = path.resolve(parsed.given.has('socket') ? get<string>('socket') : defaultSocketPath());
  if (SOCKET_MODES.includes(mode)) {
    try {
      // Refused before anything is created (the serve launcher creates the directory next).
      checkSocketPath(socketPath);
    } catch (err) {
      process.stderr.write(`claustrum: ${(err as Error).message}\n`);
      return mode === 'status' ? 4 : 1;
    }
  }
  const stdout = process.stdout;
  const json = get<boolean>('json');
  // How a way back names this socket: nothing for the default.
  const socketHint = parsed.given.has('socket') ? ` -socket ${shellQuote(socketPath)}` : '';
  const tokenFd = get<number>('token-fd');

  switch (mode) {
    case 'version':
      stdout.write(`claustrum ${BUILD.version} (built ${BUILD.builtAt})\n`);
      return 0;
    case 'install':
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
    case 'probe-cli':
      return runProbeCli(get<string>('probe-cli'), quietWriter(process.stdout));
    case 'serve':
      return runServeMode({
        socketPath,
        foreground: get<boolean>('foreground'),
        tokenFile: get<string>('token-file'),
        tokenFd,
        forward: forwardedFlags(parsed, 'serve'),
        stallTimeoutMs: get<number>('stall-timeout'),
        maxExtractBytes: get<number>('max-extract-bytes'),
        gitTimeoutMs: get<number>('git-timeout'),
        keepChildren: get<boolean>('keep-children'),
        replayBudgetBytes: get<number>('replay-budget'),
        loginPath: !get<boolean>('no-login-path'),
        metricsAddr: parsed.given.has('metrics-addr') ? get<string>('metrics-addr') : undefined,
        websocket: parsed.given.has('ws-addr') ? { addr: get<string>('ws-addr'), allowOrigins: get<string[]>('ws-allow-origin') } : undefined,
        console: get<boolean>('console'),
        writeToken: parsed.given.has('write-token') ? get<boolean>('write-token') : undefined,
        drainTimeoutMs: get<number>('drain-timeout'),
        idleExitMs: get<number>('idle-exit'),
        logFormat: get<string>('log-format') as LogFormat,
        logFile: parsed.given.has('log-file') ? get<string>('log-file') : undefined,
        audit: auditOptions(get, socketPath),
      });
    case 'bridge':
      return runBridge(socketPath, process.stdin, process.stdout, (line) => process.stderr.write(`${line}\n`));
    case 'restart':
      return runRestart({ socket: socketPath, bin: process.argv[1]!, specs: FLAGS });
    case 'stop': {
      // One word on stdout is the whole answer; the eviction steps behind it are not narrated.
      const word = await stopDaemon(socketPath, silentLogger);
      stdout.write(`${word}\n`);
      return 0;
    }
    case 'logs':
      return runLogs({ socket: socketPath, id: get<string>('logs'), follow: get<boolean>('f'), tokenFd });
    case 'audit-verify':
    case 'audit-tail': {
      const file = auditPath(parsed.positionals[0], runDirectory(socketPath));
      const stderr = { write: quietWriter(process.stderr) };
      if (mode === 'audit-verify') {
        return runAuditVerify({ path: file, json, head: get<string>('audit-head'), stdout: { write: quietWriter(process.stdout) }, stderr });
      }
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
    case 'run':
      return runCommand({
        socket: socketPath,
        argv: parsed.positionals,
        daemonEnv: get<boolean>('daemon-env'),
        reconnectBudgetMs: get<number>('reconnect-budget'),
        ...(parsed.given.has('idle-exit') ? { idleExitMs: get<number>('idle-exit') } : {}),
        tokenFd,
        terminal: get<boolean>('t') ? 'on' : get<boolean>('T') || !process.stdin.isTTY || !process.stdout.isTTY ? 'off' : 'auto',
        escape: parseEscapeChar(get<string>('escape-char')),
        socketHint,
      });
    case 'attach':
      return runAttach({
        socket: socketPath,
        socketHint,
        id: get<string>('attach'),
        tokenFd,
        budgetMs: get<number>('reconnect-budget'),
        escape: parseEscapeChar(get<string>('escape-char')),
      });
  }
  // The operator commands: a CliError is their failure, printed as such.
  try {
    switch (mode) {
      case 'status':
        return await runStatus({ socket: socketPath, tokenFd, json, stdout });
      case 'ps':
        return await runPs({ socket: socketPath, tokenFd, json, stdout });
      case 'kill':
        return await runKill({
          socket: socketPath,
          tokenFd,
          id: get<string>('kill'),
          signal: get<string>('signal'),
          wait: get<boolean>('wait'),
          json,
          stdout,
        });
      case 'purge':
        return await runPurge({ socket: socketPath, tokenFd, force: get<boolean>('force'), json, stdout });
      case 'service':
        return await runService({
          action: get<string>('service') as ServiceAction,
          socket: socketPath,
          args: forwardedFlags(parsed, 'service'),
          socketActivation: get<boolean>('socket-activation'),
          drainTimeoutMs: get<number>('drain-timeout'),
          json,
          stdout,
        });
    }
  } catch (err) {
    if (!(err instanceof CliError)) throw err;
    process.stderr.write(`claustrum: ${err.message}\n`);
    return mode === 'status' ? 4 : err.exitCode;
  }
}

process.exitCode = await main(process.argv.slice(2));
// A daemon's last handles (timers, the metrics listener) must not keep a finished process alive, nor may a
// connection an operator command gave up on; -run, -bridge and -install end on their own once stdout has drained.
if (process.argv.slice(2).some((a) => /^--?(serve|status|ps|kill|purge|service)(=|$)/.test(a))) process.exit(process.exitCode);
