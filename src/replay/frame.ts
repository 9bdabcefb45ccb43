/**
 * Stream frames: the unit of output, of the replay buffer, and of its 16 MiB cap.
 *
 * A frame keeps the raw bytes, not an encoded line, so one buffer serves receivers of every wire format; its `size`
 * is the length of its NDJSON line (newline included), computed arithmetically, because that is what the reference
 * counts against the cap (PROTOCOL.md). A test checks the arithmetic against the encoder byte for byte.
 */
import type { DataFrameBody, ExitFrameBody, GapNotice, KilledBy, OutputStream, ResizeFrameBody, ScreenFrameBody } from '../protocol/messages.js';

/**
 * A data frame as the replay buffer holds it: the wire body plus its NDJSON size. `clean` (terminals only, never on
 * the wire): false when the frame ends inside an escape sequence or a character, so no screen snapshot may be taken
 * right after it.
 */
export type DataFrame = DataFrameBody<Buffer> & { readonly size: number; readonly clean?: boolean };
/** The exit frame as the replay buffer holds it. */
export type ExitFrame = ExitFrameBody & { readonly size: number };
/**
 * One entry of a process's frame log. `data` of a retained data frame is a view of the buffer's ring, valid while
 * the frame is retained: encode or copy it at once.
 */
export type Frame = DataFrame | ExitFrame | ResizeFrame;
/** A terminal's resize, as the replay buffer holds it (extension). */
export type ResizeFrame = ResizeFrameBody & { readonly size: number };
/** A screen snapshot for one reader (extension): never stored, so it has no size. */
export type ScreenFrame = ScreenFrameBody<Buffer>;

export type { KilledBy, OutputStream };

/** The most raw bytes one data frame carries: one 32 KiB read, as in the reference. */
export const MAX_FRAME_DATA = 32 * 1024;

const HEAD = '{"type":"stream","processId":';
// Byte lengths of the fixed pieces of a frame line, taken from the same literals the encoder writes.
const DATA_MID = (stream: OutputStream) => `,"stream":"${stream}","seq":`.length;
const DATA_KEY = ',"data":"'.length;
const DATA_END = '"}\n'.length;
const EXIT_MID = ',"stream":"exit","seq":'.length;
const EXIT_CODE_KEY = ',"exitCode":'.length;
const SIGNAL_FIELD = (signal: string) => `,"signal":"${signal}"`.length;
const KILLED_BY_FIELD = (by: string) => `,"killedBy":"${by}"`.length;
const EXIT_END = '}\n'.length;
const RESIZE_MID = ',"stream":"resize","seq":'.length;
const COLS_KEY = ',"cols":'.length;
const ROWS_KEY = ',"rows":'.length;

/** Everything of a process's frames that does not change per frame: its id, JSON-encoded once. */
export class FrameOrigin {
  readonly processId: string;
  readonly idJson: string;
  readonly #fixedBytes: number;

  constructor(processId: string) {
    this.processId = processId;
    this.idJson = JSON.stringify(processId);
    this.#fixedBytes = HEAD.length + Buffer.byteLength(this.idJson);
  }

  dataFrame(seq: number, stream: OutputStream, data: Buffer): DataFrame {
    const size = this.#fixedBytes + DATA_MID(stream) + digits(seq) + DATA_KEY + base64Length(data.length) + DATA_END;
    return { seq, stream, data, size };
  }

  /** A terminal data frame: as dataFrame, with whether it ends at a clean boundary. */
  terminalFrame(seq: number, data: Buffer, clean: boolean): DataFrame {
    return { ...this.dataFrame(seq, 'stdout', data), clean };
  }

  resizeFrame(seq: number, cols: number, rows: number): ResizeFrame {
    const size = this.#fixedBytes + RESIZE_MID + digits(seq) + COLS_KEY + digits(cols) + ROWS_KEY + digits(rows) + EXIT_END;
    return { seq, stream: 'resize', cols, rows, size };
  }

  exitFrame(seq: number, exitCode: number, signal: string | undefined, killedBy: KilledBy | undefined): ExitFrame {
    let size = this.#fixedBytes + EXIT_MID + digits(seq) + EXIT_CODE_KEY + String(exitCode).length + EXIT_END;
    if (signal !== undefined) size += SIGNAL_FIELD(signal);
    if (killedBy !== undefined) size += KILLED_BY_FIELD(killedBy);
    return { seq, stream: 'exit', exitCode, signal, killedBy, size };
  }

  /** The frame as one NDJSON line, keys in the reference's order. */
  toJsonLine(frame: Frame): string {
    if (frame.stream === 'resize') {
      return `${HEAD}${this.idJson},"stream":"resize","seq":${frame.seq},"cols":${frame.cols},"rows":${frame.rows}}\n`;
    }
    if (frame.stream !== 'exit') {
      return `${HEAD}${this.idJson},"stream":"${frame.stream}","seq":${frame.seq},"data":"${frame.data.toString('base64')}"}\n`;
    }
    let line = `${HEAD}${this.idJson},"stream":"exit","seq":${frame.seq},"exitCode":${frame.exitCode}`;
    if (frame.signal !== undefined) line += `,"signal":"${frame.signal}"`;
    if (frame.killedBy !== undefined) line += `,"killedBy":"${frame.killedBy}"`;
    return `${line}}\n`;
  }

  /** A screen snapshot (extension) as one NDJSON line: `data` is base64 of the UTF-8 text. */
  screenLine(frame: ScreenFrame): string {
    return `${HEAD}${this.idJson},"stream":"screen","seq":${frame.seq},"cols":${frame.cols},"rows":${frame.rows},"data":"${frame.data.toString('base64')}"}\n`;
  }

  screenObject(frame: ScreenFrame): Record<string, unknown> {
    return { type: 'stream', processId: this.processId, stream: 'screen', seq: frame.seq, cols: frame.cols, rows: frame.rows, data: frame.data };
  }

  /** An observer's gap notice (extension) as one NDJSON line. */
  gapLine(fromSeq: number, toSeq: number): string {
    return `{"type":"gap","processId":${this.idJson},"fromSeq":${fromSeq},"toSeq":${toSeq}}\n`;
  }

  gapObject(fromSeq: number, toSeq: number): GapNotice {
    return { type: 'gap', processId: this.processId, fromSeq, toSeq };
  }

  /** The frame as a plain object with the same keys, for encoders other than NDJSON. */
  toObject(frame: Frame): Record<string, unknown> {
    if (frame.stream === 'resize') {
      return { type: 'stream', processId: this.processId, stream: 'resize', seq: frame.seq, cols: frame.cols, rows: frame.rows };
    }
    if (frame.stream !== 'exit') {
      return { type: 'stream', processId: this.processId, stream: frame.stream, seq: frame.seq, data: frame.data };
    }
    const o: Record<string, unknown> = { type: 'stream', processId: this.processId, stream: 'exit', seq: frame.seq, exitCode: frame.exitCode };
    if (frame.signal !== undefined) o.signal = frame.signal;
    if (frame.killedBy !== undefined) o.killedBy = frame.killedBy;
    return o;
  }
}

function digits(n: number): number {
  return String(n).length;
}

function base64Length(n: number): number {
  return Math.ceil(n / 3) * 4;
}
