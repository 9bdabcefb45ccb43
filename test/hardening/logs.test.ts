/**
 * Issue 10 (4): strangers cannot forge or flood the daemon's log. Strings from the wire are escaped (no newline or
 * control character reaches a log line) and cut to a bounded length; repeated refusals are rate-limited and counted.
 *
 * Before the fix an unauthenticated request whose method held a newline wrote a second, forged log line; a 100 KB
 * method wrote a 100 KB line; and 2,000 bad requests wrote 2,000 lines.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { escapeLogText, LOG_LINE_MAX_CHARS, REFUSAL_LOG_BURST, WIRE_TEXT_MAX_CHARS } from '../../src/log/escape.js';
import { Daemon, until } from '../helpers/daemon.js';

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

describe('log lines from wire strings', () => {
  it('a newline or control character in an unauthenticated method cannot start a line of its own', async () => {
    const d = await Daemon.start();
    cleanup.push(() => d.stop());
    const c = await d.client();
    const forged = 'server.ping\n2030/01/01 00:00:00 ERROR [daemon] forged line\u001b[2J\r\u2028';
    const r = await c.request(forged, undefined, { auth: 'wrong' });
    expect(r.error?.code).toBe(-32001);
    await until(() => d.log().includes('Unauthorized request'), 5000, 'the refusal to be logged');
    const lines = d.log().split('\n');
    expect(lines.filter((l) => l.startsWith('2030/01/01'))).toEqual([]);
    const line = lines.find((l) => l.includes('Unauthorized request'))!;
    expect(line).toContain('method=server.ping\\n2030/01/01 00:00:00 ERROR [daemon] forged line\\x1b[2J\\r\\u2028');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: no control character may reach a log line
    for (const l of lines) expect(l).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f\u2028\u2029]/);
  });

  it('a huge method or id is cut in the log line', async () => {
    const d = await Daemon.start();
    cleanup.push(() => d.stop());
    const c = await d.client();
    // The id stays under the id bound (an id past it is a parse error, never logged), but past the quoting cut.
    await c.request(`x.${'m'.repeat(100_000)}`, undefined, { auth: 'wrong', id: 'i'.repeat(900) });
    await until(() => d.log().includes('Unauthorized request'), 5000, 'the refusal to be logged');
    const line = d
      .log()
      .split('\n')
      .find((l) => l.includes('Unauthorized request'))!;
    expect(line.length).toBeLessThan(3 * WIRE_TEXT_MAX_CHARS);
    expect(line).toMatch(/method=x\.m+… \(99746 more characters\), id="i+… \(646 more characters\)/);
  });

  it('2,000 refused requests write a bounded number of lines, and the rest are counted', async () => {
    const d = await Daemon.start();
    cleanup.push(() => d.stop());
    const c = await d.client();
    let lines = '';
    for (let i = 0; i < 2000; i++) lines += `${JSON.stringify({ jsonrpc: '2.0', id: i, method: 'server.ping', auth: 'wrong' })}\n`;
    c.sendRaw(lines);
    await c.waitFor((m) => m.id === 1999, 20_000);
    await sleep(200);
    const logged = d
      .log()
      .split('\n')
      .filter((l) => l.includes('Unauthorized request')).length;
    expect(logged).toBeLessThanOrEqual(REFUSAL_LOG_BURST);
    // The suppressed ones are summarized with their count, at the latest when the window closes.
    const summary = await until(() => /(\d+) more refusals \(unauthorized\) not logged/.exec(d.log()), 15_000, 'the summary line');
    expect(Number(summary[1]) + logged).toBe(2000);
  });
});

describe('escapeLogText', () => {
  it('escapes every control character, keeps other text, and cuts at the bound', () => {
    expect(escapeLogText('a\tb\nc\u0000\u009b\u2029é', 100)).toBe('a\\tb\\nc\\x00\\u009b\\u2029é');
    expect(escapeLogText('x'.repeat(50), 10)).toBe('xxxxxxxxxx… (40 more characters)');
    expect(LOG_LINE_MAX_CHARS).toBeGreaterThan(WIRE_TEXT_MAX_CHARS);
  });
});
