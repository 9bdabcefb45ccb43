/**
 * The named limit constants behind PROTOCOL.md's limits tables ("## Limits", and the "**Limits.**" table of
 * "## files.* and git.*"): for each, the table row that states it, the column it appears in, and the unit the doc
 * writes it in. test/docs/protocol.test.ts renders each value in its unit and fails when the doc's cell does not say
 * it, and fails when a row of either table has no constant here.
 */
import { MAX_RECORD_BYTES } from '../../src/daemon/orphans.js';
import { DEFAULT_MAX_EXTRACT_BYTES } from '../../src/files/extract.js';
import { FILES_READ_BUDGET_BYTES, FILES_READ_MAX_CONCURRENT } from '../../src/files/read-gate.js';
import { LOG_LINE_MAX_CHARS, REFUSAL_LOG_BURST, REFUSAL_LOG_WINDOW_MS, WIRE_TEXT_MAX_CHARS } from '../../src/log/escape.js';
import { DEFAULT_READ_MAX_BYTES, MAX_READ_BYTES } from '../../src/files/inspect.js';
import { TAR_MAX_SPECIAL_FILE_BYTES } from '../../src/files/tar.js';
import { STATUS_ENTRY_MAX_BYTES, STATUS_MAX_ENTRIES, WORKTREE_RECORD_MAX_BYTES } from '../../src/git/repo.js';
import { DEFAULT_GIT_TIMEOUT_MS, GIT_MAX_OUTPUT_BYTES, GIT_WAIT_DELAY_MS } from '../../src/git/run.js';
import { GIT_TEXT_MAX_BYTES } from '../../src/git/worktree.js';
import { EXIT_DRAIN_GRACE_MS } from '../../src/process/child.js';
import { STDIN_QUEUE_CAP_BYTES } from '../../src/process/stdin.js';
import { EXITED_RETENTION_MS, RETENTION_SWEEP_MS, SHUTDOWN_KILL_WAIT_MS } from '../../src/process/supervisor.js';
import { REPLAY_CAP_BYTES } from '../../src/replay/buffer.js';
import { MAX_FRAME_DATA } from '../../src/replay/frame.js';
import { MAX_LINE_BYTES } from '../../src/protocol/ndjson.js';
import { DEFAULT_FLOW_LIMITS } from '../../src/server/rpc/connection.js';
import { KILL_ESCALATION_WAIT_MS, KILL_GRACE_DEFAULT_MS, KILL_GRACE_MAX_MS } from '../../src/server/rpc/methods/process.js';
import { SHUTDOWN_FLUSH_MS } from '../../src/server/rpc/server.js';
import { MAX_CONNECTIONS, MAX_SOCKET_PATH_BYTES, UNIX_AUTH_DEADLINE_MS, UNIX_MAX_UNAUTHENTICATED } from '../../src/server/transport/unix.js';
import {
  WS_AUTH_DEADLINE_MS,
  WS_MAX_BUFFERED_CHUNKS,
  WS_MAX_CONNECTIONS,
  WS_HANDSHAKE_TIMEOUT_MS,
  WS_MAX_FRAGMENTS,
  WS_MAX_HANDSHAKES,
  WS_MAX_UNAUTHENTICATED,
} from '../../src/server/transport/websocket.js';
import { METRICS_MAX_CONNECTIONS } from '../../src/metrics/metrics.js';
import { MAX_ID_JSON_CHARS } from '../../src/server/rpc/request.js';
import { DEFAULT_REPLAY_BUDGET_BYTES } from '../../src/replay/budget.js';
import { COMMAND_TIMEOUT_MS } from '../../src/cli/connect.js';
import { PS_STATS_CONCURRENCY } from '../../src/cli/ps.js';
import { DEFAULT_RECONNECT_BUDGET_MS, ESCALATION_WINDOW_MS } from '../../src/cli/run.js';
import { ON_DEMAND_IDLE_EXIT_MS } from '../../src/daemon/idle.js';
import { MAX_RECORDS_READ } from '../../src/daemon/records.js';
import { TERMINAL_MAX_COLS, TERMINAL_MAX_ROWS } from '../../src/server/rpc/methods/process.js';
import { CUT_HOLD_MAX_BYTES, CUT_HOLD_MS } from '../../src/terminal/cutter.js';
import { PTY_EXIT_DRAIN_MS, PTY_WRITE_RETRY_MAX_MS, PTY_WRITE_RETRY_MIN_MS } from '../../src/terminal/pty.js';
import { SCREEN_MAX_PENDING_BYTES, SCREEN_SCROLLBACK_BYTES, SCREEN_SCROLLBACK_LINES, SNAPSHOT_MAX_BYTES } from '../../src/terminal/screen.js';
import { REPLAY_ANSWER_WAIT_MS } from '../../src/cli/terminal-input.js';
import { JOURNAL_ALONE_BYTES, JOURNAL_HOLD_BYTES, KEEPER_IDLE_EXIT_MS } from '../../src/keeper/keeper.js';
import { KEEPER_START_TIMEOUT_MS } from '../../src/keeper/link.js';
import { KEEPER_MAX_MESSAGE_BYTES } from '../../src/keeper/protocol.js';
import { JOURNAL_SEGMENT_BYTES, MAX_RECORD_BYTES as JOURNAL_MAX_RECORD_BYTES } from '../../src/replay/journal.js';
import { SCREEN_PERSIST_INTERVAL_MS } from '../../src/process/child.js';

/** How the doc writes a value: `bytes` as `1,048,575 bytes`, `count` bare, `none` for a 0 that means no limit. */
export type Unit = 'bytes' | 'KiB' | 'MiB' | 'GiB' | 'count' | 'ms' | 's' | 'min' | 'none' | 'off';

export interface LimitRow {
  /** The line that introduces the table in PROTOCOL.md. */
  readonly table: '## Limits' | '**Limits.**';
  /** The row's first cell, verbatim. */
  readonly row: string;
  /** The header of the column that states the value. */
  readonly column: 'default' | 'boundary';
  /** The constant, as exported. */
  readonly name: string;
  readonly value: number;
  readonly unit: Unit;
}

const main = (row: string, name: string, value: number, unit: Unit, column: LimitRow['column'] = 'default'): LimitRow => ({
  table: '## Limits',
  row,
  column,
  name,
  value,
  unit,
});
const workspace = (row: string, name: string, value: number, unit: Unit): LimitRow => ({
  table: '**Limits.**',
  row,
  column: 'default',
  name,
  value,
  unit,
});

export const LIMITS: readonly LimitRow[] = [
  main('request line', 'MAX_LINE_BYTES', MAX_LINE_BYTES, 'bytes'),
  main('data per frame', 'MAX_FRAME_DATA', MAX_FRAME_DATA, 'KiB'),
  main('replay buffer', 'REPLAY_CAP_BYTES', REPLAY_CAP_BYTES, 'MiB'),
  main('stdin queue', 'STDIN_QUEUE_CAP_BYTES', STDIN_QUEUE_CAP_BYTES, 'MiB'),
  main('exit drain', 'EXIT_DRAIN_GRACE_MS', EXIT_DRAIN_GRACE_MS, 's'),
  main('exited process retention', 'EXITED_RETENTION_MS', EXITED_RETENTION_MS, 'min'),
  main('exited process retention', 'RETENTION_SWEEP_MS', RETENTION_SWEEP_MS, 's', 'boundary'),
  main('killAndWait grace', 'KILL_GRACE_DEFAULT_MS', KILL_GRACE_DEFAULT_MS, 'ms'),
  main('killAndWait grace', 'KILL_GRACE_MAX_MS', KILL_GRACE_MAX_MS, 'ms'),
  main('killAndWait grace', 'KILL_ESCALATION_WAIT_MS', KILL_ESCALATION_WAIT_MS, 's', 'boundary'),
  main('receiver high / low water', 'DEFAULT_FLOW_LIMITS.highWaterBytes', DEFAULT_FLOW_LIMITS.highWaterBytes, 'MiB'),
  main('receiver high / low water', 'DEFAULT_FLOW_LIMITS.lowWaterBytes', DEFAULT_FLOW_LIMITS.lowWaterBytes, 'KiB'),
  main('stall timeout', 'DEFAULT_FLOW_LIMITS.stallTimeoutMs', DEFAULT_FLOW_LIMITS.stallTimeoutMs, 's'),
  main('requests in flight', 'DEFAULT_FLOW_LIMITS.maxInflight', DEFAULT_FLOW_LIMITS.maxInflight, 'count'),
  main('unread replies', 'DEFAULT_FLOW_LIMITS.inputPauseBytes', DEFAULT_FLOW_LIMITS.inputPauseBytes, 'MiB'),
  main('connections', 'MAX_CONNECTIONS', MAX_CONNECTIONS, 'count'),
  main('unauthenticated Unix connections', 'UNIX_MAX_UNAUTHENTICATED', UNIX_MAX_UNAUTHENTICATED, 'count'),
  main('unauthenticated Unix connections', 'UNIX_AUTH_DEADLINE_MS', UNIX_AUTH_DEADLINE_MS, 's'),
  main('WebSocket connections', 'WS_MAX_CONNECTIONS', WS_MAX_CONNECTIONS, 'count'),
  main('unauthenticated WebSocket connections', 'WS_MAX_UNAUTHENTICATED', WS_MAX_UNAUTHENTICATED, 'count'),
  main('unauthenticated WebSocket connections', 'WS_AUTH_DEADLINE_MS', WS_AUTH_DEADLINE_MS, 's'),
  main('WebSocket handshakes', 'WS_MAX_HANDSHAKES', WS_MAX_HANDSHAKES, 'count'),
  main('WebSocket handshakes', 'WS_HANDSHAKE_TIMEOUT_MS', WS_HANDSHAKE_TIMEOUT_MS, 's'),
  main('WebSocket message assembly', 'WS_MAX_BUFFERED_CHUNKS', WS_MAX_BUFFERED_CHUNKS, 'count'),
  main('WebSocket message assembly', 'WS_MAX_FRAGMENTS', WS_MAX_FRAGMENTS, 'count'),
  main('metrics connections', 'METRICS_MAX_CONNECTIONS', METRICS_MAX_CONNECTIONS, 'count'),
  main('echoed id', 'MAX_ID_JSON_CHARS', MAX_ID_JSON_CHARS, 'count'),
  main('replay budget', 'DEFAULT_REPLAY_BUDGET_BYTES', DEFAULT_REPLAY_BUDGET_BYTES, 'GiB'),
  main('drain (`-drain-timeout`)', 'drain off by default', 0, 'off'),
  main('idle exit (`-idle-exit`)', 'ON_DEMAND_IDLE_EXIT_MS', ON_DEMAND_IDLE_EXIT_MS, 'min'),
  main("operator commands' wait", 'COMMAND_TIMEOUT_MS', COMMAND_TIMEOUT_MS, 's'),
  main('`-ps` stats', 'PS_STATS_CONCURRENCY', PS_STATS_CONCURRENCY, 'count'),
  main('`-run` Ctrl-C escalation', 'ESCALATION_WINDOW_MS', ESCALATION_WINDOW_MS, 's'),
  main('`-run` reconnect budget', 'DEFAULT_RECONNECT_BUDGET_MS', DEFAULT_RECONNECT_BUDGET_MS, 's'),
  main("child records read by `-status`, `-purge`, `-serve`'s notice", 'MAX_RECORDS_READ', MAX_RECORDS_READ, 'count'),
  main('shutdown', 'SHUTDOWN_FLUSH_MS', SHUTDOWN_FLUSH_MS, 'ms'),
  main('shutdown', 'SHUTDOWN_KILL_WAIT_MS', SHUTDOWN_KILL_WAIT_MS, 's'),
  main('socket path', 'MAX_SOCKET_PATH_BYTES', MAX_SOCKET_PATH_BYTES, 'bytes'),
  main('files.read in progress', 'FILES_READ_MAX_CONCURRENT', FILES_READ_MAX_CONCURRENT, 'count'),
  main('files.read in progress', 'FILES_READ_BUDGET_BYTES', FILES_READ_BUDGET_BYTES, 'MiB'),
  main('child record', 'MAX_RECORD_BYTES', MAX_RECORD_BYTES, 'bytes'),
  main('log message', 'LOG_LINE_MAX_CHARS', LOG_LINE_MAX_CHARS, 'count'),
  main('log message', 'WIRE_TEXT_MAX_CHARS', WIRE_TEXT_MAX_CHARS, 'count'),
  main('refusal log lines', 'REFUSAL_LOG_BURST', REFUSAL_LOG_BURST, 'count'),
  main('refusal log lines', 'REFUSAL_LOG_WINDOW_MS', REFUSAL_LOG_WINDOW_MS, 's'),
  main('terminal size', 'TERMINAL_MAX_COLS', TERMINAL_MAX_COLS, 'count'),
  main('terminal size', 'TERMINAL_MAX_ROWS', TERMINAL_MAX_ROWS, 'count'),
  main('held unfinished escape sequence', 'CUT_HOLD_MS', CUT_HOLD_MS, 'ms'),
  main('held unfinished escape sequence', 'CUT_HOLD_MAX_BYTES', CUT_HOLD_MAX_BYTES, 'KiB'),
  main('terminal exit drain', 'PTY_EXIT_DRAIN_MS', PTY_EXIT_DRAIN_MS, 's'),
  main('terminal input retry', 'PTY_WRITE_RETRY_MIN_MS', PTY_WRITE_RETRY_MIN_MS, 'ms'),
  main('terminal input retry', 'PTY_WRITE_RETRY_MAX_MS', PTY_WRITE_RETRY_MAX_MS, 'ms'),
  main('screen scrollback', 'SCREEN_SCROLLBACK_LINES', SCREEN_SCROLLBACK_LINES, 'count'),
  main('screen scrollback', 'SCREEN_SCROLLBACK_BYTES', SCREEN_SCROLLBACK_BYTES, 'MiB'),
  main('screen snapshot', 'SNAPSHOT_MAX_BYTES', SNAPSHOT_MAX_BYTES, 'KiB'),
  main('screen model backlog', 'SCREEN_MAX_PENDING_BYTES', SCREEN_MAX_PENDING_BYTES, 'MiB'),
  main('journal while no daemon runs', 'JOURNAL_ALONE_BYTES', JOURNAL_ALONE_BYTES, 'MiB'),
  main('journal while a daemon runs', 'JOURNAL_HOLD_BYTES', JOURNAL_HOLD_BYTES, 'MiB'),
  main('journal segment', 'JOURNAL_SEGMENT_BYTES', JOURNAL_SEGMENT_BYTES, 'MiB'),
  main('journal record', 'MAX_RECORD_BYTES', JOURNAL_MAX_RECORD_BYTES, 'MiB'),
  main('keeper message', 'KEEPER_MAX_MESSAGE_BYTES', KEEPER_MAX_MESSAGE_BYTES, 'MiB'),
  main('keeper idle exit', 'KEEPER_IDLE_EXIT_MS', KEEPER_IDLE_EXIT_MS, 's'),
  main('keeper start', 'KEEPER_START_TIMEOUT_MS', KEEPER_START_TIMEOUT_MS, 's'),
  main('terminal screen persisted', 'SCREEN_PERSIST_INTERVAL_MS', SCREEN_PERSIST_INTERVAL_MS, 's'),
  main('`-run -t` reply gate', 'REPLAY_ANSWER_WAIT_MS', REPLAY_ANSWER_WAIT_MS, 'ms'),

  workspace('files.read', 'DEFAULT_READ_MAX_BYTES', DEFAULT_READ_MAX_BYTES, 'bytes'),
  workspace('files.read', 'MAX_READ_BYTES', MAX_READ_BYTES, 'MiB'),
  workspace('files.extract_tar content', 'DEFAULT_MAX_EXTRACT_BYTES', DEFAULT_MAX_EXTRACT_BYTES, 'none'),
  workspace('PAX records, GNU long names', 'TAR_MAX_SPECIAL_FILE_BYTES', TAR_MAX_SPECIAL_FILE_BYTES, 'MiB'),
  workspace('git output kept', 'GIT_MAX_OUTPUT_BYTES', GIT_MAX_OUTPUT_BYTES, 'MiB'),
  workspace("git output after git's exit", 'GIT_WAIT_DELAY_MS', GIT_WAIT_DELAY_MS, 's'),
  workspace('git.status lines', 'STATUS_MAX_ENTRIES', STATUS_MAX_ENTRIES, 'count'),
  workspace('git.status lines', 'STATUS_ENTRY_MAX_BYTES', STATUS_ENTRY_MAX_BYTES, 'bytes'),
  workspace('git failure text', 'GIT_TEXT_MAX_BYTES', GIT_TEXT_MAX_BYTES, 'bytes'),
  workspace('worktree records read by the git.status gate', 'WORKTREE_RECORD_MAX_BYTES', WORKTREE_RECORD_MAX_BYTES, 'MiB'),
  workspace('git call', 'DEFAULT_GIT_TIMEOUT_MS', DEFAULT_GIT_TIMEOUT_MS, 'none'),
];

/**
 * The value as the doc writes it, without thousands separators (the doc's cell is compared with its commas taken
 * out), or undefined when the value is not a whole number of that unit: then the doc cannot be saying it.
 */
export function inUnit(value: number, unit: Unit): string | undefined {
  const whole = (n: number, suffix: string) => (Number.isInteger(n) ? `${n}${suffix}` : undefined);
  switch (unit) {
    case 'bytes':
      return whole(value, ' bytes');
    case 'KiB':
      return whole(value / 1024, ' KiB');
    case 'MiB':
      return whole(value / (1024 * 1024), ' MiB');
    case 'GiB':
      return whole(value / 1024 ** 3, ' GiB');
    case 'count':
      return whole(value, '');
    case 'ms':
      return whole(value, ' ms');
    case 's':
      return whole(value / 1000, ' s');
    case 'min':
      return whole(value / 60_000, ' min');
    case 'none':
      return value === 0 ? 'none' : undefined;
    case 'off':
      return value === 0 ? 'off' : undefined;
  }
}
