/** How replies and stream messages are encoded for one connection (NDJSON, MessagePack, WebSocket text). */
import type { Frame, FrameOrigin, ScreenFrame } from '../../../replay/frame.js';
import type { Reply } from '../reply.js';

export interface WireCodec {
  reply(reply: Reply): string | Buffer;
  frame(origin: FrameOrigin, frame: Frame): string | Buffer;
  /** A terminal's screen snapshot for one reader (extension). */
  screen(origin: FrameOrigin, frame: ScreenFrame): string | Buffer;
  /** An observer's gap notice (extension). */
  gap(origin: FrameOrigin, fromSeq: number, toSeq: number): string | Buffer;
}
