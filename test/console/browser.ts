/**
 * A real headless Chromium (Debian's, /usr/bin/chromium) driven by playwright-core, against a real daemon started
 * with -ws-addr and -console. No browser is downloaded: `.ci/run` installs the chromium package.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { Daemon, until } from '../helpers/daemon.js';

export const CHROMIUM = process.env.CLAUSTRUM_CHROMIUM ?? '/usr/bin/chromium';

export interface ConsoleDaemon {
  readonly d: Daemon;
  readonly port: number;
  readonly url: string;
}

export async function startConsoleDaemon(extra: string[] = []): Promise<ConsoleDaemon> {
  const d = await Daemon.start({ args: ['-ws-addr', '127.0.0.1:0', '-console', ...extra] });
  const m = await until(() => /websocket: serving ws:\/\/127\.0\.0\.1:(\d+)\/rpc/.exec(d.log()), 10_000, 'the websocket listener');
  const port = Number(m[1]);
  return { d, port, url: `http://127.0.0.1:${port}/` };
}

export interface Chromium {
  readonly context: BrowserContext;
  close(): Promise<void>;
}

export async function launchChromium(viewport = { width: 1280, height: 720 }): Promise<Chromium> {
  const profile = mkdtempSync(path.join(tmpdir(), 'claustrum-chromium-'));
  // A fresh profile directory per launch (playwright passes it as --user-data-dir).
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    viewport,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    close: async () => {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** Collects what must never happen on a page: uncaught errors, console errors, CSP violations. */
export function watchPage(page: Page): { problems: string[] } {
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error') problems.push(`console.error: ${msg.text()}`);
  });
  void page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective} ${e.blockedURI}`));
  });
  return { problems };
}

export async function login(page: Page, url: string, token: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Connect' }).click();
  await page.locator('#filter').waitFor();
}
