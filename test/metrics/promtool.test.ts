/**
 * /metrics passes `promtool check metrics` (run where promtool is installed: Debian's `prometheus` package) and, on
 * every machine, the lint rules promtool applies, checked here: HELP and TYPE for every family, `_total` on counters
 * and only on counters, snake_case names without abbreviated units, and complete histograms.
 */
import { execFile } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { sandboxes } from '../helpers/cli.js';
import { fixture } from '../helpers/daemon.js';
import { freePort, get } from '../helpers/http.js';

/** promtool's output and exit code for `text` on stdin; undefined when promtool is not installed. */
function promtool(text: string): Promise<{ code: number; output: string } | undefined> {
  return new Promise((resolve) => {
    const child = execFile('promtool', ['check', 'metrics'], { timeout: 30_000 }, (err, stdout, stderr) => {
      if (err && (err as NodeJS.ErrnoException).code === 'ENOENT') return resolve(undefined);
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, output: `${stdout}${stderr}` });
    });
    child.stdin!.on('error', () => {});
    child.stdin!.end(text);
  });
}

/** The problems promtool's linter reports (prometheus/client_golang testutil/promlint), by family. */
function lint(text: string): string[] {
  const problems: string[] = [];
  const help = new Map<string, string>();
  const type = new Map<string, string>();
  const samples = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const h = /^# HELP (\S+) (.*)$/.exec(line);
    if (h) {
      help.set(h[1]!, h[2]!);
      continue;
    }
    const t = /^# TYPE (\S+) (counter|gauge|histogram|summary|untyped)$/.exec(line);
    if (t) {
      if (type.has(t[1]!)) problems.push(`${t[1]}: second TYPE line`);
      type.set(t[1]!, t[2]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const s = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? \S+$/.exec(line);
    if (!s) {
      problems.push(`unparsable sample line: ${line}`);
      continue;
    }
    const family = [...type.keys()].find((f) => s[1] === f || (/^_(bucket|sum|count)$/.test(s[1]!.slice(f.length)) && s[1]!.startsWith(f))) ?? s[1]!;
    const list = samples.get(family) ?? [];
    list.push(line);
    samples.set(family, list);
  }
  for (const [name, kind] of type) {
    if (!help.get(name)) problems.push(`${name}: no help text`);
    if (kind === 'counter' && !name.endsWith('_total')) problems.push(`${name}: counter metrics should have "_total" suffix`);
    if (kind !== 'counter' && name.endsWith('_total')) problems.push(`${name}: non-counter metrics should not have "_total" suffix`);
    if (/[A-Z]/.test(name)) problems.push(`${name}: metric names should be written in 'snake_case' not 'camelCase'`);
    for (const unit of ['ms', 'msec', 'sec', 'secs', 'us', 'ns', 'kb', 'mb', 'gb', 'b']) {
      if (name.split('_').includes(unit)) problems.push(`${name}: metric names should not contain abbreviated units (${unit})`);
    }
    // A labelled histogram nothing was observed in has no samples at all, which is valid.
    if (kind === 'histogram' && samples.has(name)) {
      const lines = samples.get(name)!;
      if (!lines.some((l) => l.startsWith(`${name}_bucket`) && l.includes('le="+Inf"'))) problems.push(`${name}: histogram without a +Inf bucket`);
      if (!lines.some((l) => l.startsWith(`${name}_sum`))) problems.push(`${name}: histogram without _sum`);
      if (!lines.some((l) => l.startsWith(`${name}_count`))) problems.push(`${name}: histogram without _count`);
    }
  }
  for (const family of samples.keys()) if (!type.has(family)) problems.push(`${family}: samples without a TYPE line`);
  return problems;
}

describe('/metrics and promtool', () => {
  const sandbox = sandboxes();

  it('passes promtool check metrics and its lint rules after a workload', async () => {
    const sb = sandbox();
    const port = await freePort();
    await sb.start(['-metrics-addr', `127.0.0.1:${port}`, '-no-login-path']);
    const c = await sb.client();
    await c.call('process.spawn', { id: 'f', ...fixture('flood', '4096') });
    await c.waitExit('f');
    await c.request('process.spawn', { id: 'x', command: 'no-such-command' });
    const { status, body } = await get(port, '/metrics');
    expect(status).toBe(200);
    expect(body).toContain('# TYPE claustrum_spawn_duration_seconds histogram');
    expect(body).not.toContain('nodejs_active_handles_total');
    expect(lint(body)).toEqual([]);
    const checked = await promtool(body);
    if (checked) expect(checked, checked.output).toEqual({ code: 0, output: '' });
  });

  it('the lint rules catch what promtool catches (the gauges prom-client names *_total)', () => {
    const bad =
      '# HELP nodejs_active_handles_total Total number of active handles.\n# TYPE nodejs_active_handles_total gauge\nnodejs_active_handles_total 3\n';
    expect(lint(bad)).toEqual(['nodejs_active_handles_total: non-counter metrics should not have "_total" suffix']);
    expect(lint('# TYPE req counter\nreq 1\n')).toEqual(['req: no help text', 'req: counter metrics should have "_total" suffix']);
  });
});
