/**
 * @xterm/addon-serialize's typings import their types from '@xterm/xterm' (the browser package), which the daemon
 * does not install: the headless package declares the same interfaces, so they are taken from there.
 */
declare module '@xterm/xterm' {
  export type { IBufferRange, IMarker, ITerminalAddon, Terminal } from '@xterm/headless';
}
