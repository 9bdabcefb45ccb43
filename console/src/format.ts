/** Formatting and parsing for the page's text: no DOM, unit-tested. */

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** "4s", "3m 12s", "2h 5m", "3d 4h". */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.floor(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function formatRate(perSecond: number, unit: string): string {
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(1)}M ${unit}/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(1)}k ${unit}/s`;
  return `${perSecond < 10 ? perSecond.toFixed(1) : Math.round(perSecond)} ${unit}/s`;
}

/** A command line as shown in the list: argv joined, each argument quoted when it needs it. */
export function formatArgv(command: string, args: readonly string[]): string {
  return [command, ...args].map((a) => (a === '' || /[^\w@%+=:,./-]/.test(a) ? `'${a.replaceAll("'", `'\\''`)}'` : a)).join(' ');
}

/**
 * Raw bytes typed as text with escapes: `\n`, `\r`, `\t`, `\e` (ESC), `\0`, `\\`, `\xHH`; every other character is
 * its UTF-8 bytes. A malformed escape is an error naming where it is, never a guess.
 */
export function parseEscapes(text: string): Uint8Array {
  const out: number[] = [];
  const enc = new TextEncoder();
  const simple: Record<string, number> = { n: 10, r: 13, t: 9, e: 27, '0': 0, '\\': 92 };
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c !== '\\') {
      const cp = text.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      for (const b of enc.encode(ch)) out.push(b);
      i += ch.length - 1;
      continue;
    }
    const next = text[i + 1];
    if (next === undefined) throw new Error(`a lone \\ at the end (write \\\\ for a backslash)`);
    if (next in simple) {
      out.push(simple[next]!);
      i++;
      continue;
    }
    if (next === 'x') {
      const hex = text.slice(i + 2, i + 4);
      if (!/^[0-9a-fA-F]{2}$/.test(hex)) throw new Error(`\\x at position ${i + 1} needs two hex digits`);
      out.push(Number.parseInt(hex, 16));
      i += 3;
      continue;
    }
    throw new Error(`unknown escape \\${next} at position ${i + 1} (known: \\n \\r \\t \\e \\0 \\\\ \\xHH)`);
  }
  return Uint8Array.from(out);
}

/** One argument per line; a trailing empty line is ignored, empty lines inside are empty arguments. */
export function parseArgs(text: string): string[] {
  if (text === '') return [];
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

/** `KEY=VALUE` per line; blank lines ignored; a line without `=` or with an empty key is an error naming it. */
export function parseEnv(text: string): Record<string, string> {
  const env: Record<string, string> = {};
  text.split('\n').forEach((raw, i) => {
    const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (line.trim() === '') return;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new Error(`environment line ${i + 1}: want KEY=VALUE, got ${JSON.stringify(line)}`);
    env[line.slice(0, eq)] = line.slice(eq + 1);
  });
  return env;
}
