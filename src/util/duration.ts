/**
 * Go's time.ParseDuration, so `-stall-timeout 30s` and `-git-timeout 1m30s` read the same as they do for the
 * reference daemon's flags. Returns milliseconds (fractional below 1 ms), or throws with the Go error text.
 */
const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3, // U+00B5 micro sign, accepted by Go
  μs: 1e-3, // U+03BC Greek mu, accepted by Go
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

export function parseDuration(text: string): number {
  const fail = (): never => {
    throw new Error(`time: invalid duration ${JSON.stringify(text)}`);
  };
  let s = text;
  let sign = 1;
  if (s.startsWith('-') || s.startsWith('+')) {
    if (s[0] === '-') sign = -1;
    s = s.slice(1);
  }
  if (s === '0') return 0;
  if (s === '') fail();
  let total = 0;
  const part = /^(\d+\.?\d*|\.\d+)([a-zµμ]+)/;
  while (s !== '') {
    const m = part.exec(s);
    if (!m) fail();
    const unit = UNIT_MS[m![2]!];
    if (unit === undefined) throw new Error(`time: unknown unit ${JSON.stringify(m![2])} in duration ${JSON.stringify(text)}`);
    total += Number(m![1]) * unit;
    s = s.slice(m![0].length);
  }
  return sign * total;
}

/** Formats milliseconds the way Go prints a time.Duration in log lines (`30s`, `5m0s`, `1.5s`, `250ms`). */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (Math.abs(ms) < 1000) return `${trim(ms)}ms`;
  let rest = ms / 1000;
  const h = Math.floor(rest / 3600);
  rest -= h * 3600;
  const m = Math.floor(rest / 60);
  rest -= m * 60;
  if (h > 0) return `${h}h${m}m${trim(rest)}s`;
  if (m > 0) return `${m}m${trim(rest)}s`;
  return `${trim(rest)}s`;
}

function trim(n: number): string {
  return String(Math.round(n * 1e6) / 1e6);
}
