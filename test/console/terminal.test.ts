/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The console's terminal view over the daemon's terminals (process.spawn `pty`, process.resize, `screen` and
 * `resize` frames, `pty` in process.list): the screen it draws is the screen a headless terminal renders from the
 * process's whole output; resizing and typing (only once in control) reach the program.
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import xtermHeadless from '@xterm/headless';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, ROOT, tempDir, until } from '../helpers/daemon.js';
import type { RpcClient } from '../helpers/rpc.js';
import { type Chromium, type ConsoleDaemon, launchChromium, login, startConsoleDaemon, watchPage } from './browser.js';

const { Terminal } = xtermHeadless;

async function requireMethods(c: RpcClient, ...methods: string[]): Promise<void> {
  const caps = await c.call('server.capabilities');
  for (const m of methods) expect(caps.methods, `${m} is not on this daemon (observers and terminals)`).toContain(m);
}

/** The screen as the page's xterm.js draws it: one string per row, trailing blanks dropped. */
async function pageScreen(page: Page): Promise<string[]> {
  return page.evaluate(() =>
    [...document.querySelectorAll('.term .xterm-rows > div')].map((row) => (row.textContent ?? '').replaceAll('\u00a0', ' ').trimEnd()),
  );
}

/** The screen a headless terminal of the same size shows after the process's whole output. */
function headlessScreen(output: Buffer, cols: number, rows: number): Promise<string[]> {
  const term = new Terminal({ cols, rows, allowProposedApi: true });
  return new Promise((resolve) =>
    term.write(output, () => {
      const buf = term.buffer.active;
      const lines: string[] = [];
      for (let y = 0; y < rows; y++) lines.push(buf.getLine(buf.viewportY + y)?.translateToString(true) ?? '');
      term.dispose();
      resolve(lines);
    }),
  );
}

const SHOT_DIR = process.env.CLAUSTRUM_UPDATE_SCREENSHOTS === '1' ? path.join(ROOT, 'docs') : tempDir('claustrum-shots-');

describe('console terminal view', () => {
  let cd: ConsoleDaemon;
  let chrome: Chromium;
  beforeAll(async () => {
    [cd, chrome] = await Promise.all([startConsoleDaemon(), launchChromium()]);
  });
  afterAll(async () => {
    await chrome?.close();
    await cd?.d.stop();
    if (process.env.CLAUSTRUM_UPDATE_SCREENSHOTS !== '1') rmSync(SHOT_DIR, { recursive: true, force: true });
  });

  it('shows a terminal process drawing on the alternate screen exactly as a headless terminal renders its output', async () => {
    const owner = await cd.d.client();
    await requireMethods(owner, 'process.observe', 'process.resize');
    const cols = 80;
    const rows = 24;
    await owner.call('process.spawn', { id: 'alt', ...fixture('alt-screen'), pty: { cols, rows } });
    await until(() => owner.output('alt').toString().includes('ready'), 10_000, 'the fixture to draw');
    const page = await chrome.context.newPage();
    const { problems } = watchPage(page);
    await login(page, cd.url, cd.d.token);
    await expect.poll(() => page.locator('tr[data-id="alt"] .c-kind').textContent(), { timeout: 10_000 }).toBe(`terminal ${cols}×${rows}`);
    await page.locator('tr[data-id="alt"]').click();
    await expect.poll(async () => (await pageScreen(page)).join('\n'), { timeout: 10_000 }).toContain('ready');
    const expected = await headlessScreen(owner.output('alt'), cols, rows);
    expect(expected.join('\n')).toContain('claustrum alt-screen fixture');
    expect(await pageScreen(page)).toEqual(expected);
    mkdirSync(SHOT_DIR, { recursive: true });
    await page.screenshot({ path: path.join(SHOT_DIR, 'console-terminal.png') });

    // Resize to the view: the process gets the view's size (and its SIGWINCH); the list shows it.
    await page.getByRole('button', { name: 'Resize to view' }).click();
    await expect.poll(() => page.locator('tr[data-id="alt"] .c-kind').textContent(), { timeout: 10_000 }).not.toBe(`terminal ${cols}×${rows}`);
    // Typing goes nowhere until control is taken; then the program reads it ("q" makes it leave).
    await page.locator('.term').click();
    await page.keyboard.type('q');
    await page.waitForTimeout(300);
    expect((await owner.call('process.list', {})).processes.find((p: { id: string }) => p.id === 'alt').running).toBe(true);
    await page.getByRole('button', { name: 'Take control…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Take control' }).click();
    await owner.closed;
    await page.locator('.term').click();
    await page.keyboard.type('q');
    const c = await cd.d.client();
    await until(
      async () => (await c.call('process.list', {})).processes.find((p: { id: string }) => p.id === 'alt')?.running === false,
      10_000,
      'the fixture to exit on q',
    );
    expect(problems).toEqual([]);
    await page.close();
  });

  it('spawns a terminal from the page at the size asked, and shows it as its owner', async () => {
    const c = await cd.d.client();
    await requireMethods(c, 'process.resize');
    const page = await chrome.context.newPage();
    const { problems } = watchPage(page);
    await login(page, cd.url, cd.d.token);
    await page.getByRole('button', { name: 'Spawn…' }).click();
    await page.getByLabel('Id').fill('tty-size');
    await page.getByLabel('Command').fill('sh');
    await page.getByLabel('Arguments').fill('-c\nstty size; tty; sleep 300');
    await page.getByLabel('run on a pseudo-terminal').check();
    await page.getByLabel('Columns').fill('90');
    await page.getByLabel('Rows').fill('20');
    await page.getByRole('button', { name: 'Review…' }).click();
    await expect.poll(() => page.locator('dialog pre.review').textContent()).toContain('"cols": 90');
    await page.getByRole('button', { name: 'Spawn', exact: true }).click();
    await expect.poll(async () => (await pageScreen(page)).slice(0, 2).join('|'), { timeout: 10_000 }).toMatch(/^20 90\|\/dev\/pts\/\d+$/);
    expect(await page.locator('.term .xterm-rows > div').count()).toBe(20);
    await expect.poll(() => page.locator('tr[data-id="tty-size"] .c-kind').textContent(), { timeout: 10_000 }).toBe('terminal 90×20');
    await c.call('process.kill', { id: 'tty-size', signal: 'KILL' });
    expect(problems).toEqual([]);
    await page.close();
  });
});
