/**
 * The output of one piped process as lines, for the log view: stdout and stderr told apart, gaps and the exit as
 * entries of their own. Every frame is taken in full (the counts cover every byte); what is kept is bounded, the
 * newest MAX_LOG_LINES entries, as the daemon's replay buffer keeps the newest frames. No DOM here: the view
 * (logview.ts) draws what it needs from `since()`.
 */

/** Entries kept per process; older ones are dropped, oldest first. */
export const MAX_LOG_LINES = 5000;
/** A line longer than this is cut into pieces of this length (a process that never writes a newline stays bounded). */
export const MAX_LINE_CHARS = 2000;

export type LogEntry =
  | { readonly kind: 'stdout' | 'stderr'; readonly text: string }
  | { readonly kind: 'gap'; readonly fromSeq: number; readonly toSeq: number }
  | { readonly kind: 'exit'; readonly text: string }
  | { readonly kind: 'note'; readonly text: string };

// Colour and cursor escapes (CSI), window titles and hyperlinks (OSC): noise in a log view of piped output.
// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are control characters
const ESCAPES = /\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-Z\\-_]/g;

function clean(line: string): string {
  // The common case (plain text) costs two scans and no regex.
  if (!line.includes('\r') && !line.includes('\x1b')) return line;
  const cr = line.endsWith('\r') ? line.slice(0, -1) : line;
  // A carriage return in the middle rewrites the line (progress bars): keep what a terminal would show last.
  const last = cr.lastIndexOf('\r');
  return (last >= 0 ? cr.slice(last + 1) : cr).replace(ESCAPES, '');
}

/** Describes an exit frame as the view shows it. */
export function describeExit(exitCode: number, signal?: string, killedBy?: string): string {
  const how = signal ? `killed by ${signal}` : `exited with code ${exitCode}`;
  return killedBy ? `${how} (${killedBy === 'client' ? 'killed on request' : `killedBy ${killedBy}`})` : how;
}

export class LogModel {
  #entries: LogEntry[] = [];
  /** Entries ever appended; entry i of #entries has index appended - length + i. */
  #appended = 0;
  readonly #decoders = { stdout: new TextDecoder('utf-8'), stderr: new TextDecoder('utf-8') };
  /** The unfinished last line of each stream. */
  readonly #partial = { stdout: '', stderr: '' };
  #lastStream: 'stdout' | 'stderr' | undefined;
  frames = 0;
  bytes = 0;
  lastSeq = 0;
  exited = false;
  /** Frames reported lost (gap notices), counted apart from the entries so a flood cannot push them out of sight. */
  gaps = 0;
  lostFrames = 0;
  lastGap: { readonly fromSeq: number; readonly toSeq: number } | undefined;

  /** Index one past the newest entry (monotonic; a view remembers how far it drew). */
  get end(): number {
    return this.#appended;
  }

  /** Index of the oldest entry still kept. */
  get start(): number {
    return this.#appended - this.#entries.length;
  }

  /** Entries from index `from` (clamped to what is kept) to the end. */
  since(from: number): { readonly from: number; readonly entries: readonly LogEntry[] } {
    const at = Math.max(from, this.start);
    return { from: at, entries: this.#entries.slice(at - this.start) };
  }

  /** Entries with index in [from, to), clamped to what is kept. */
  range(from: number, to: number): { readonly from: number; readonly entries: readonly LogEntry[] } {
    const at = Math.max(from, this.start);
    return { from: at, entries: this.#entries.slice(at - this.start, Math.max(at, to) - this.start) };
  }

  /** The unfinished lines, drawn after the entries until their newline comes. */
  partials(): readonly LogEntry[] {
    const out: LogEntry[] = [];
    for (const kind of ['stdout', 'stderr'] as const) if (this.#partial[kind] !== '') out.push({ kind, text: clean(this.#partial[kind]) });
    return out;
  }

  data(stream: 'stdout' | 'stderr', seq: number, bytes: Uint8Array): void {
    this.frames++;
    this.bytes += bytes.length;
    this.lastSeq = Math.max(this.lastSeq, seq);
    // Interleaved streams: the other stream's unfinished line ends where this one starts writing.
    if (this.#lastStream !== undefined && this.#lastStream !== stream) this.#flush(this.#lastStream);
    this.#lastStream = stream;
    let text = this.#partial[stream] + this.#decoders[stream].decode(bytes, { stream: true });
    let nl = text.indexOf('\n');
    let from = 0;
    while (nl >= 0) {
      this.#line(stream, text.slice(from, nl));
      from = nl + 1;
      nl = text.indexOf('\n', from);
    }
    text = text.slice(from);
    while (text.length > MAX_LINE_CHARS) {
      this.#line(stream, text.slice(0, MAX_LINE_CHARS));
      text = text.slice(MAX_LINE_CHARS);
    }
    this.#partial[stream] = text;
  }

  gap(fromSeq: number, toSeq: number): void {
    this.gaps++;
    this.lostFrames += toSeq - fromSeq + 1;
    this.lastGap = { fromSeq, toSeq };
    this.#flushAll();
    this.#push({ kind: 'gap', fromSeq, toSeq });
    this.lastSeq = Math.max(this.lastSeq, toSeq);
  }

  exit(seq: number, text: string): void {
    this.#flushAll();
    this.frames++;
    this.lastSeq = Math.max(this.lastSeq, seq);
    this.exited = true;
    this.#push({ kind: 'exit', text });
  }

  note(text: string): void {
    this.#flushAll();
    this.#push({ kind: 'note', text });
  }

  #flushAll(): void {
    this.#flush('stdout');
    this.#flush('stderr');
  }

  #flush(stream: 'stdout' | 'stderr'): void {
    const rest = this.#partial[stream] + this.#decoders[stream].decode();
    this.#partial[stream] = '';
    if (rest !== '') this.#line(stream, rest);
  }

  #line(kind: 'stdout' | 'stderr', raw: string): void {
    this.#push({ kind, text: clean(raw) });
  }

  #push(entry: LogEntry): void {
    this.#entries.push(entry);
    this.#appended++;
    // Dropped in batches of a quarter, so a flood costs an occasional copy, not one per line.
    if (this.#entries.length > MAX_LOG_LINES + (MAX_LOG_LINES >> 2)) this.#entries.splice(0, this.#entries.length - MAX_LOG_LINES);
  }
}
