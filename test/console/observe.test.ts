/**
 * The console as an observer (process.observe, process.unobserve, `observers` in process.list): what it shows of a
 * process it does not own, never taking it from its owner.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture } from '../helpers/daemon.js';
import type { RpcClient } from '../helpers/rpc.js';
import { type Chromium, type ConsoleDaemon, launchChromium, login, startConsoleDaemon, watchPage } from './browser.js';

async function requireMethods(c: RpcClient, ...methods: string[]): Promise<void> {
  const caps = await c.call('server.capabilities');
  for (const m of methods) expect(caps.methods, `${m} is not on this daemon (observers, issue 11)`).toContain(m);
}

describe('console observing processes', () => {
  let cd: ConsoleDaemon;
  let chrome: Chromium;
  beforeAll(async () => {
    [cd, chrome] = await Promise.all([startConsoleDaemon(), launchChromium()]);
  });
  afterAll(async () => {
    await chrome?.close();
    await cd?.d.stop();
  });

  it('observes a process in view without taking it from its owner, counted in the list', async () => {
    const owner = await cd.d.client();
    await requireMethods(owner, 'process.observe', 'process.unobserve');
    const page = await chrome.context.newPage();
    const { problems } = watchPage(page);
    await login(page, cd.url, cd.d.token);
    await owner.call('process.spawn', {
      id: 'watched',
      command: process.execPath,
      args: ['-e', "let i=0;setInterval(()=>console.log('tick '+(i++)),50)"],
    });
    await owner.call('process.spawn', { id: 'other', ...fixture('report-signals') });
    await page.locator('tr[data-id="watched"]').click();
    // The replay (everything retained) and then live lines, in order, from tick 0.
    await expect.poll(() => page.locator('.log .lines .line.stdout').first().textContent(), { timeout: 10_000 }).toBe('tick 0');
    await expect
      .poll(async () => Number((await page.locator('.log .lines .line.stdout').last().textContent())?.split(' ')[1]), { timeout: 10_000 })
      .toBeGreaterThan(10);
    await expect.poll(() => page.locator('#view-state').textContent()).toContain('observing');
    await expect.poll(() => page.locator('tr[data-id="watched"] .c-observers').textContent(), { timeout: 10_000 }).toBe('1');
    // The owner keeps its process and every byte.
    expect(owner.isClosed).toBe(false);
    // Another process in view: the first is no longer observed.
    await page.locator('tr[data-id="other"]').click();
    await expect.poll(() => page.locator('tr[data-id="watched"] .c-observers').textContent(), { timeout: 10_000 }).toBe('0');
    await owner.call('process.kill', { id: 'watched', signal: 'KILL' });
    await owner.call('process.kill', { id: 'other', signal: 'KILL' });
    expect(owner.isClosed).toBe(false);
    const text = owner.output('watched').toString();
    expect(text.split('\n').slice(0, 3)).toEqual(['tick 0', 'tick 1', 'tick 2']);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows a process that exited, from the replay, with its exit at the end', async () => {
    const owner = await cd.d.client();
    await requireMethods(owner, 'process.observe');
    await owner.call('process.spawn', { id: 'done', command: 'sh', args: ['-c', 'echo out; echo err >&2; exit 7'] });
    await owner.waitExit('done');
    const page = await chrome.context.newPage();
    await login(page, cd.url, cd.d.token);
    await page.locator('tr[data-id="done"]').click();
    await expect.poll(() => page.locator('.log .marker.exit').textContent(), { timeout: 10_000 }).toContain('exited with code 7');
    expect(await page.locator('.log .lines .line.stdout').allTextContents()).toEqual(['out']);
    expect(await page.locator('.log .lines .line.stderr').allTextContents()).toEqual(['err']);
    await page.close();
  });

  it('marks frames evicted before the view opened (a gap notice) with their seqs, then shows the rest and the exit', async () => {
    const owner = await cd.d.client();
    await requireMethods(owner, 'process.observe');
    // About 20 MB of lines: more than the 16 MiB replay buffer keeps, so the first frames are evicted.
    await owner.call('process.spawn', { id: 'long', command: 'sh', args: ['-c', 'yes gap-test-line | head -n 1400000; echo last line'] });
    await owner.waitExit('long', 60_000);
    const entry = (await owner.call('process.list', {})).processes.find((p: { id: string }) => p.id === 'long');
    expect(entry.firstSeq).toBeGreaterThan(1);
    const page = await chrome.context.newPage();
    const { problems } = watchPage(page);
    await login(page, cd.url, cd.d.token);
    await page.locator('tr[data-id="long"]').click();
    await expect.poll(() => page.locator('.log .marker.exit').textContent(), { timeout: 30_000 }).toContain('exited with code 0');
    expect(await page.locator('.log .lines .line.stdout').last().textContent()).toBe('last line');
    await expect
      .poll(() => page.locator('#view-status').textContent())
      .toContain(`seq ${entry.lastSeq} · ⚠ ${entry.firstSeq - 1} frames lost (1–${entry.firstSeq - 1})`);
    // Pinned at the top of the log, wherever it is scrolled: the gap's own entry is long gone under 20 MB of lines.
    const bar = page.locator('.log .gap-bar');
    expect(await bar.isVisible()).toBe(true);
    expect(await bar.textContent()).toBe(
      `⚠ frames 1–${entry.firstSeq - 1} lost (${entry.firstSeq - 1}): evicted from the daemon’s buffer before this view read them`,
    );
    await page.locator('.log').evaluate((el) => {
      el.scrollTop = 0;
    });
    expect(await bar.isVisible()).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });
});
