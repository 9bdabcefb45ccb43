/**
 * The browser console in a real headless Chromium against a real daemon (-ws-addr -console).
 */
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, until } from '../helpers/daemon.js';
import { type Chromium, type ConsoleDaemon, launchChromium, login, startConsoleDaemon, watchPage } from './browser.js';

describe('console in Chromium', () => {
  let cd: ConsoleDaemon;
  let chrome: Chromium;
  beforeAll(async () => {
    [cd, chrome] = await Promise.all([startConsoleDaemon(), launchChromium()]);
  });
  afterAll(async () => {
    await chrome?.close();
    await cd?.d.stop();
  });

  async function openPage(): Promise<{ page: Page; problems: string[] }> {
    const page = await chrome.context.newPage();
    const { problems } = watchPage(page);
    return { page, problems };
  }

  it('logs in with the token and lists a spawned process, then its exit', async () => {
    const { page, problems } = await openPage();
    await login(page, cd.url, cd.d.token);
    const c = await cd.d.client();
    await c.call('process.spawn', { id: 'listed', ...fixture('report-signals') });
    const row = page.locator('tr[data-id="listed"]');
    await expect.poll(() => row.locator('.c-state').textContent(), { timeout: 10_000 }).toBe('running');
    await expect.poll(() => page.title()).toMatch(/1 running/);
    await c.call('process.kill', { id: 'listed', signal: 'KILL' });
    await expect.poll(() => row.locator('.c-state').textContent(), { timeout: 10_000 }).toBe('exited');
    expect(await row.locator('.c-exit').textContent()).toBe('SIGKILL');
    expect(problems).toEqual([]);
    await page.close();
  });
});
