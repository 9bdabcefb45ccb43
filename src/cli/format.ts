/**
 * Human output of the operator commands (-status, -ps, -kill, -purge, -service): tables, durations, sizes, and
 * strings from the daemon made safe for a terminal (a command line may hold escape sequences or newlines that would
 * redraw or forge the operator's screen).
 */

/** `1h2m`, `3m12s`, `4.2s`, `350ms`: two units at most, the way `ps` and `docker ps` round ages. */
export function formatAge(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 10) return `${(ms / 1000).toFixed(1)}s`;
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${m % 60}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

/** `512B`, `1.5KiB`, `12MiB`, `3.1GiB`. */
export function formatBytes(n: number): string {
  if (!Number.isFinite(n) || n < 0) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v}B` : `${v < 10 ? v.toFixed(1) : Math.round(v)}${units[u]}`;
}

/** Control characters (C0, DEL, C1) and lone surrogates become visible escapes; everything else is kept. */
export function printable(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
  return s.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => {
    switch (c) {
      case '\n':
        return '\\n';
      case '\t':
        return '\\t';
      case '\r':
        return '\\r';
      default:
        return `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`;
    }
  });
}

/** A command line as a shell would read it back: words quoted only when they need it. */
export function commandLine(command: string, args: readonly string[]): string {
  return [command, ...args].map(shellWord).join(' ');
}

function shellWord(w: string): string {
  if (w !== '' && /^[\w@%+=:,./-]+$/.test(w)) return w;
  return `'${w.replace(/'/g, `'\\''`)}'`;
}

/** Shell-quotes a path for a command line printed to copy and paste. */
export function shellQuote(s: string): string {
  return shellWord(s);
}

export interface Column {
  readonly title: string;
  /** Numbers read better right-aligned. */
  readonly align?: 'left' | 'right';
}

/**
 * Columns padded to their widest cell, two spaces apart; the last column is not padded (it holds the command, and
 * may be long). Cells are made printable first.
 */
export function table(columns: readonly Column[], rows: readonly (readonly string[])[]): string {
  const cells = rows.map((r) => r.map(printable));
  const widths = columns.map((c, i) => Math.max(c.title.length, ...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: readonly string[]) =>
    columns
      .map((c, i) => {
        const v = r[i] ?? '';
        if (i === columns.length - 1) return v;
        return c.align === 'right' ? v.padStart(widths[i]!) : v.padEnd(widths[i]!);
      })
      .join('  ')
      .trimEnd();
  return `${[line(columns.map((c) => c.title)), ...cells.map(line)].join('\n')}\n`;
}

/** `key  value` lines with the keys padded to one width. */
export function keyValues(pairs: readonly (readonly [string, string])[], indent = '  '): string {
  const width = Math.max(...pairs.map(([k]) => k.length));
  return pairs.map(([k, v]) => `${indent}${k.padEnd(width)}  ${printable(v)}`).join('\n');
}
