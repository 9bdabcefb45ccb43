/**
 * What a terminal shows, for comparing screens: bytes rendered by @xterm/headless into plain text rows, the cursor,
 * and which buffer is active. Tests compare these instead of bytes, because two different byte streams (a replay,
 * a snapshot plus the rest) must draw the same screen.
 */
import headless from '@xterm/headless';
import { SerializeAddon } from '@xterm/addon-serialize';

const { Terminal } = headless;
type HeadlessTerminal = InstanceType<typeof Terminal>;

export interface RenderedScreen {
  /** The active buffer's visible rows, right-trimmed. */
  readonly lines: string[];
  readonly cursor: { readonly x: number; readonly y: number };
  readonly alternate: boolean;
}

/** A headless terminal as the tests use it: scrollback enough for any fixture, no answers sent anywhere. */
export function headlessTerminal(cols: number, rows: number, scrollback = 1000): HeadlessTerminal {
  return new Terminal({ cols, rows, scrollback, allowProposedApi: true });
}

/** Feeds chunks in order, each as its own write (as a terminal receives reads), and resolves once all are parsed. */
export function feed(term: HeadlessTerminal, chunks: readonly (Uint8Array | string)[]): Promise<void> {
  return new Promise((resolve) => {
    if (chunks.length === 0) return resolve();
    chunks.forEach((chunk, i) => {
      term.write(chunk, i === chunks.length - 1 ? resolve : undefined);
    });
  });
}

export function screenOf(term: HeadlessTerminal): RenderedScreen {
  const buf = term.buffer.active;
  const lines: string[] = [];
  for (let y = 0; y < term.rows; y++) lines.push(buf.getLine(buf.viewportY + y)?.translateToString(true) ?? '');
  return { lines, cursor: { x: buf.cursorX, y: buf.cursorY }, alternate: buf.type === 'alternate' };
}

/** Renders `chunks` on a fresh cols x rows terminal. */
export async function renderScreen(chunks: readonly (Uint8Array | string)[], cols: number, rows: number): Promise<RenderedScreen> {
  const term = headlessTerminal(cols, rows);
  try {
    await feed(term, chunks);
    return screenOf(term);
  } finally {
    term.dispose();
  }
}

/** Everything the serializer captures (cells with attributes, both buffers, modes, cursor): the strict comparison. */
export function serializedState(term: HeadlessTerminal): string {
  let addon = serializers.get(term);
  if (addon === undefined) {
    addon = new SerializeAddon();
    term.loadAddon(addon);
    serializers.set(term, addon);
  }
  return addon.serialize();
}
/** One addon per terminal, however often it is read (a terminal fed further and read at many points). */
const serializers = new WeakMap<HeadlessTerminal, SerializeAddon>();

/** Everything a round-trip test compares: the rendered screen, every cell's attributes, the cursor's visibility. */
export interface Outcome {
  readonly screen: RenderedScreen;
  /** Cells with attributes of both buffers, modes, cursor, as the serializer sees them. */
  readonly state: string;
  readonly cursorHidden: boolean;
}

/** Plays `chunks` on a fresh terminal and reads back its Outcome. */
export async function outcomeOf(chunks: readonly (Uint8Array | string)[], cols: number, rows: number): Promise<Outcome> {
  const term = headlessTerminal(cols, rows);
  await feed(term, chunks);
  const core = (term as unknown as { _core: { coreService: { isCursorHidden: boolean } } })._core;
  const o = { screen: screenOf(term), state: serializedState(term), cursorHidden: core.coreService.isCursorHidden };
  term.dispose();
  return o;
}

/** The Outcome of a terminal already fed (and parsed): what outcomeOf reads after feeding. */
export function outcomeOfTerminal(term: HeadlessTerminal): Outcome {
  const core = (term as unknown as { _core: { coreService: { isCursorHidden: boolean } } })._core;
  return { screen: screenOf(term), state: serializedState(term), cursorHidden: core.coreService.isCursorHidden };
}
