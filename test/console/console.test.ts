/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/**
 * The browser console in a real headless Chromium against a real daemon (-ws-addr -console): what works on a
 * daemon with or without observers and terminals. What needs them is in observe-and-terminal.test.ts.
 */
import { mkdirSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixture, ROOT, tempDir, until } from '../helpers/daemon.js';
import { type Chromium, type ConsoleDaemon, launchChromium, login, startConsoleDaemon, watchPage } from './browser.js';

/**
 * Under a flood, a click may take this many times as long to answer as the same click on the idle page, measured in
 * the same run (see clickLatencies). Measured here (2 cores shared with other agents, load average 18–22): idle median
 * 20–60 ms, flood median 1–4× that.
 */
const RESPONSIVE_FACTOR = 10;
/** One animation frame at 60 Hz: the floor of the idle baseline, so a very fast idle click does not make the bound 0. */
const FRAME_MS = 1000 / 60;

const FLOOD_SCRIPT =
  "let i=0;const w=()=>{for(;;){let s='';for(let k=0;k<2000;k++)s+='flood line '+(i++)+'\\n';if(!process.stdout.write(s))return process.stdout.once('drain',w)}};w()";

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/**
 * Clicks the ID column's sort button `n` times (real input through the browser) and returns, for each click, the time
 * from the input event's own timestamp to the frame after its handler ran: input delay + handling + the next paint,
 * measured inside the page, so the test process's and the driver's own scheduling do not count.
 */
async function clickLatencies(page: Page, n: number): Promise<number[]> {
  await page.evaluate(() => {
    const w = window as unknown as { __latencies?: number[] };
    if (w.__latencies) return;
    const lat: number[] = (w.__latencies = []);
    document.querySelector('th button')!.addEventListener('click', (e) => {
      const at = e.timeStamp;
      requestAnimationFrame(() => setTimeout(() => lat.push(performance.now() - at), 0));
    });
  });
  for (let i = 0; i < n; i++) {
    await page.locator('th button').first().click();
    await page.waitForFunction(() => (window as unknown as { __latencies: number[] }).__latencies.length > 0);
    await page.waitForTimeout(50);
  }
  return page.evaluate(() => (window as unknown as { __latencies: number[] }).__latencies.splice(0));
}

/** Screenshots go to docs/ with CLAUSTRUM_UPDATE_SCREENSHOTS=1 (committed), else to a temporary directory. */
const SHOT_DIR = process.env.CLAUSTRUM_UPDATE_SCREENSHOTS === '1' ? path.join(ROOT, 'docs') : tempDir('claustrum-shots-');

async function screenshot(page: Page, name: string): Promise<void> {
  mkdirSync(SHOT_DIR, { recursive: true });
  const png = await page.screenshot({ path: path.join(SHOT_DIR, name) });
  // A PNG of the viewport: the IHDR chunk holds width and height.
  expect(png.subarray(1, 4).toString()).toBe('PNG');
  expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([page.viewportSize()!.width, page.viewportSize()!.height]);
}

async function spawnFromPage(page: Page, id: string, command: string, args: string[]): Promise<void> {
  await page.getByRole('button', { name: 'Spawn…' }).click();
  await page.getByLabel('Id').fill(id);
  await page.getByLabel('Command').fill(command);
  await page.getByLabel('Arguments').fill(args.join('\n'));
  await page.getByRole('button', { name: 'Review…' }).click();
  await expect.poll(() => page.locator('dialog pre.review').textContent()).toContain(JSON.stringify(command));
  await page.getByRole('button', { name: 'Spawn', exact: true }).click();
  await page.locator(`tr[data-id="${id}"]`).waitFor();
}

describe('console in Chromium', () => {
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

  async function openPage(viewport?: { width: number; height: number }): Promise<{ page: Page; problems: string[] }> {
    const page = await chrome.context.newPage();
    if (viewport) await page.setViewportSize(viewport);
    const { problems } = watchPage(page);
    return { page, problems };
  }

  it('refuses a wrong token with a message and keeps nothing of it', async () => {
    const { page, problems } = await openPage();
    await page.goto(cd.url);
    await page.getByLabel('Token').fill('not-the-token');
    await page.getByRole('button', { name: 'Connect' }).click();
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('refused this token (-32001)');
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    expect(await page.locator('#filter').count()).toBe(0);
    // The daemon logged the refusal; the page's only console line is none (a refusal is not an error of the page).
    expect(cd.d.log()).toMatch(/Unauthorized request: method=server\.ping/);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('logs in, lists a spawned process and its exit, counts it in the title; the token is in no URL, cookie or local storage', async () => {
    const { page, problems } = await openPage();
    const wsUrls: string[] = [];
    page.on('websocket', (ws) => wsUrls.push(ws.url()));
    const t0 = performance.now();
    await page.goto(cd.url);
    await page.getByLabel('Token').waitFor();
    const loginShown = performance.now() - t0;
    await page.getByLabel('Token').fill(cd.d.token);
    const t1 = performance.now();
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.locator('#filter').waitFor();
    await expect.poll(() => page.locator('#counts').textContent()).toMatch(/running/);
    const listMs = performance.now() - t1;
    const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1);
    console.info(
      `[console] first render: first contentful paint ${fcp.toFixed(0)} ms (in the page), login form ${loginShown.toFixed(0)} ms after navigation, ` +
        `list ${listMs.toFixed(0)} ms after Connect (as the driver sees them)`,
    );

    const c = await cd.d.client();
    await c.call('process.spawn', { id: 'listed', ...fixture('report-signals') });
    const row = page.locator('tr[data-id="listed"]');
    await expect.poll(() => row.locator('.c-state').textContent(), { timeout: 10_000 }).toBe('running');
    await expect.poll(() => page.title()).toMatch(/\(1 running, 0 exited\)/);
    // CPU and memory come from process.stats for the visible running row.
    await expect.poll(() => row.locator('.c-memory').textContent(), { timeout: 10_000 }).toMatch(/iB$/);
    expect(await row.locator('.c-kind').textContent()).toBe('pipes');
    await c.call('process.kill', { id: 'listed', signal: 'KILL' });
    await expect.poll(() => row.locator('.c-state').textContent(), { timeout: 10_000 }).toBe('exited');
    expect(await row.locator('.c-exit').textContent()).toBe('SIGKILL');
    await expect.poll(() => page.title()).toMatch(/\(0 running, 1 exited\)/);

    // Where the token may be: this tab's session storage only.
    expect(await page.evaluate(() => sessionStorage.getItem('claustrum.console.token'))).toBe(cd.d.token);
    expect(page.url()).not.toContain(cd.d.token);
    expect(wsUrls.length).toBeGreaterThan(0);
    for (const u of wsUrls) expect(u).not.toContain(cd.d.token);
    expect(await chrome.context.cookies()).toEqual([]);
    const local = await page.evaluate(() => Object.entries(localStorage).map(([k, v]) => `${k}=${v}`));
    expect(local.join('\n')).not.toContain(cd.d.token);
    const visited = await page.evaluate(() => performance.getEntries().map((e) => e.name));
    for (const u of visited) expect(u).not.toContain(cd.d.token);
    // A reload keeps the session (same tab), without asking again.
    await page.reload();
    await page.locator('#filter').waitFor();
    expect(page.url()).toBe(cd.url);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows a flood as it comes, stays responsive, pauses drawing but not reading, and kills it', async () => {
    const { page, problems } = await openPage();
    await login(page, cd.url, cd.d.token);
    const idle = await clickLatencies(page, 7);

    await spawnFromPage(page, 'flood', process.execPath, ['-e', FLOOD_SCRIPT]);
    const view = page.locator('#view');
    await expect.poll(() => page.locator('.log .lines .line').count(), { timeout: 15_000 }).toBeGreaterThan(50);
    await expect.poll(async () => Number(await view.getAttribute('data-frames')), { timeout: 15_000 }).toBeGreaterThan(50);
    const lastLine = page.locator('.log .lines .line.stdout').last();
    expect(await lastLine.textContent()).toMatch(/^flood line \d+$/);

    const read = async () => ({
      at: performance.now(),
      frames: Number(await view.getAttribute('data-frames')),
      bytes: Number(await view.getAttribute('data-bytes')),
      renders: Number(await view.getAttribute('data-renders')),
      requests: Number(await view.getAttribute('data-requests')),
      drawMs: Number(await view.getAttribute('data-draw-ms')),
    });
    const a = await read();
    const busy = await clickLatencies(page, 7);
    const b = await read();
    const secs = (b.at - a.at) / 1000;
    console.info(
      `[console] flood: ${((b.frames - a.frames) / secs).toFixed(0)} frames/s, ${((b.bytes - a.bytes) / secs / 1048576).toFixed(1)} MiB/s read, ` +
        `${((b.renders - a.renders) / secs).toFixed(0)} renders/s for ${((b.requests - a.requests) / secs).toFixed(0)} model updates/s ` +
        `(${b.requests - a.requests - (b.renders - a.renders)} merged into later draws), drawing ${((b.drawMs - a.drawMs) / 10 / secs).toFixed(0)}% of the time; click: idle median ${median(idle).toFixed(0)} ms, ` +
        `flood median ${median(busy).toFixed(0)} ms (${busy.map((x) => x.toFixed(0)).join(', ')})`,
    );
    expect(b.frames).toBeGreaterThan(a.frames);
    expect(median(busy)).toBeLessThanOrEqual(RESPONSIVE_FACTOR * Math.max(median(idle), FRAME_MS));
    // The DOM stays bounded however much arrives (FOLLOW_DOM_LINES while following).
    expect(await page.locator('.log .lines .line').count()).toBeLessThanOrEqual(100);

    // Pause: the drawn lines stop moving while frames keep arriving.
    await page.getByRole('button', { name: 'Pause' }).click();
    await expect.poll(() => page.getByRole('button', { name: 'Follow' }).getAttribute('aria-pressed')).toBe('true');
    await page.waitForTimeout(100);
    const frozen = await lastLine.textContent();
    // Paused, the view fills back (MAX_DOM_LINES) for scrolling through.
    expect(await page.locator('.log .lines .line').count()).toBeGreaterThan(100);
    expect(await page.locator('.log .lines .line').count()).toBeLessThanOrEqual(1000);
    const f0 = Number(await view.getAttribute('data-frames'));
    await expect.poll(async () => Number(await view.getAttribute('data-frames')), { timeout: 10_000 }).toBeGreaterThan(f0 + 10);
    expect(await lastLine.textContent()).toBe(frozen);
    await page.getByRole('button', { name: 'Follow' }).click();
    await expect.poll(() => lastLine.textContent()).not.toBe(frozen);
    await screenshot(page, 'console-output.png');

    // Kill from the page: a confirmation, then the exit at the end of the log and in the list.
    await page.getByRole('button', { name: 'Kill…' }).click();
    await page.getByLabel('Signal').selectOption('KILL');
    await page.getByRole('button', { name: 'Send signal' }).click();
    await expect.poll(() => page.locator('.log .marker.exit').textContent(), { timeout: 10_000 }).toContain('killed by SIGKILL');
    await expect.poll(() => page.locator('tr[data-id="flood"] .c-state').textContent(), { timeout: 10_000 }).toBe('exited');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('kills and waits, sends stdin lines and raw bytes with offsets, and closes stdin', async () => {
    const { page, problems } = await openPage();
    await login(page, cd.url, cd.d.token);
    const c = await cd.d.client();
    await c.call('process.spawn', { id: 'cat', command: 'cat' });
    await c.call('process.spawn', { id: 'sleeper', command: 'sleep', args: ['300'] });
    await page.locator('tr[data-id="cat"]').click();
    await page.getByLabel('Stdin', { exact: true }).fill('hello from the page');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await until(() => c.output('cat').toString() === 'hello from the page\n', 10_000, 'the line at cat');
    await page.getByLabel('As').selectOption('raw');
    await page.getByLabel('Stdin', { exact: true }).fill('tab\\there\\x41\\n');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await until(() => c.output('cat').toString() === 'hello from the page\ntab\thereA\n', 10_000, 'the raw bytes at cat');
    await expect.poll(() => page.locator('#message').textContent()).toContain('stdin at byte 30');
    // A malformed escape is refused before anything is sent.
    await page.getByLabel('Stdin', { exact: true }).fill('bad \\q');
    await page.getByRole('button', { name: 'Send', exact: true }).click();
    await expect.poll(() => page.locator('#message').textContent()).toContain('unknown escape \\q');
    await page.getByRole('button', { name: 'Close stdin…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Close stdin' }).click();
    expect((await c.waitExit('cat')).exitCode).toBe(0);
    expect(c.output('cat').toString()).toBe('hello from the page\ntab\thereA\n');

    await page.locator('tr[data-id="sleeper"]').click();
    await page.getByRole('button', { name: 'Kill…' }).click();
    await page.getByLabel('Grace (seconds)').fill('5');
    await page.getByRole('button', { name: 'Kill and wait' }).click();
    await expect.poll(() => page.locator('#message').textContent(), { timeout: 10_000 }).toBe('sleeper exited.');
    expect((await c.waitExit('sleeper')).signal).toBe('SIGTERM');
    expect(problems).toEqual([]);
    await page.close();
  });

  it('takes control of a piped process from its owner only when asked, and shows its output from then on', async () => {
    const { page, problems } = await openPage();
    await login(page, cd.url, cd.d.token);
    const owner = await cd.d.client();
    await owner.call('process.spawn', {
      id: 'ticker',
      command: process.execPath,
      args: ['-e', "let i=0;setInterval(()=>console.log('tick '+(i++)),50)"],
    });
    await page.locator('tr[data-id="ticker"]').click();
    const caps = await owner.call('server.capabilities');
    if (!caps.methods.includes('process.observe')) {
      await expect.poll(() => page.locator('.log .marker.note').textContent()).toContain('process.observe is missing');
    }
    await until(() => owner.output('ticker').toString().includes('tick 3'), 10_000, 'the owner reading');
    expect(owner.isClosed).toBe(false);
    // Declining the confirmation changes nothing.
    await page.getByRole('button', { name: 'Take control…' }).click();
    await page.keyboard.press('Escape');
    expect(await page.locator('dialog[open]').count()).toBe(0);
    expect(owner.isClosed).toBe(false);
    await page.getByRole('button', { name: 'Take control…' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Take control' }).click();
    await owner.closed;
    await expect.poll(() => page.locator('.log .lines .line.stdout').last().textContent(), { timeout: 10_000 }).toMatch(/^tick \d+$/);
    await expect.poll(() => page.locator('#view-state').textContent()).toContain('owner');
    const n = Number((await page.locator('.log .lines .line.stdout').last().textContent())!.split(' ')[1]);
    await expect.poll(async () => Number((await page.locator('.log .lines .line.stdout').last().textContent())!.split(' ')[1])).toBeGreaterThan(n);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('rides out a lost connection: says so, reconnects with the token it kept, and carries on', async () => {
    const { page, problems } = await openPage();
    await login(page, cd.url, cd.d.token);
    await spawnFromPage(page, 'held', 'sleep', ['300']);
    await expect.poll(() => page.locator('#view-state').textContent()).toContain('owner');
    // Everything the banner says, recorded in the page: it may show for a moment only (the first retry is at 250 ms).
    await page.evaluate(() => {
      const banner = document.getElementById('banner')!;
      const seen: string[] = ((window as unknown as { __banner: string[] }).__banner = []);
      new MutationObserver(() => {
        if (!banner.hidden) seen.push(banner.textContent ?? '');
      }).observe(banner, { attributes: true, childList: true, characterData: true, subtree: true });
    });
    // Another client takes the process: the daemon closes the page's whole connection (reattach is exclusive).
    const c = await cd.d.client();
    await c.call('process.reattach', { id: 'held', fromSeq: 0 });
    await expect
      .poll(() => page.evaluate(() => (window as unknown as { __banner: string[] }).__banner.join('\n')), { timeout: 10_000 })
      .toContain('Reconnecting');
    await expect.poll(() => page.locator('#banner').isVisible(), { timeout: 15_000 }).toBe(false);
    // Back, and no longer the owner: the other client has it.
    await expect.poll(() => page.locator('#view-state').textContent()).not.toContain('owner');
    await c.call('process.spawn', { id: 'after', command: 'sleep', args: ['300'] });
    await page.locator('tr[data-id="after"]').waitFor({ timeout: 10_000 });
    await c.call('process.kill', { id: 'held', signal: 'KILL' });
    await c.call('process.kill', { id: 'after', signal: 'KILL' });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('is keyboard usable: dialogs open with Enter, close with Escape and give focus back; rows open with Enter', async () => {
    const { page, problems } = await openPage();
    await login(page, cd.url, cd.d.token);
    const c = await cd.d.client();
    await c.call('process.spawn', { id: 'kbd', command: 'sleep', args: ['300'] });
    const spawn = page.getByRole('button', { name: 'Spawn…' });
    await spawn.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('spawn-id');
    // No terminals on this daemon (process.resize missing): the terminal option is offered only where it works.
    const caps2 = await c.call('server.capabilities');
    expect(await page.locator('#spawn-pty').isDisabled()).toBe(!caps2.methods.includes('process.resize'));
    await page.keyboard.press('Escape');
    expect(await page.locator('dialog').count()).toBe(0);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('spawn');
    // "/" jumps to the filter; typing filters the rows.
    await page.keyboard.press('/');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('filter');
    await page.keyboard.type('kbd');
    await expect.poll(() => page.locator('tbody tr:not([hidden])').count()).toBe(1);
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    // Tab reaches the column headers, then the rows.
    for (let i = 0; i < 12 && !(await page.evaluate(() => document.activeElement?.tagName === 'TR')); i++) await page.keyboard.press('Tab');
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.id)).toBe('kbd');
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#view-title').textContent()).toBe('Output of kbd');
    // Every form control has a name a screen reader can say.
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll('input, select, textarea, button')]
        .filter((el) => !(el as HTMLElement).hidden)
        .filter((el) => {
          const e = el as HTMLInputElement;
          return (e.labels?.length ?? 0) === 0 && !e.getAttribute('aria-label') && (e.textContent ?? '').trim() === '';
        })
        .map((el) => el.outerHTML.slice(0, 80)),
    );
    expect(unnamed).toEqual([]);
    await c.call('process.kill', { id: 'kbd', signal: 'KILL' });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('shows the daemon panel and fits a phone-size window', async () => {
    const { page, problems } = await openPage({ width: 390, height: 844 });
    await login(page, cd.url, cd.d.token);
    const caps = await (await cd.d.client()).call('server.capabilities');
    const version = page.locator('.daemon dt', { hasText: 'Version' }).locator('xpath=following-sibling::dd[1]');
    await expect.poll(() => version.textContent(), { timeout: 10_000 }).toBe(caps.version);
    await expect
      .poll(() => page.locator('.daemon dt', { hasText: 'Uptime' }).locator('xpath=following-sibling::dd[1]').textContent())
      .toMatch(/^\d+[smhd]/);
    expect(await page.locator('.spark canvas').count()).toBe(2);
    // Nothing wider than the window: no sideways scrolling on a phone.
    expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('takes the list screenshot at 1280x720', async () => {
    const { page, problems } = await openPage();
    const c = await cd.d.client();
    await c.call('process.spawn', { id: 'build-web', command: 'sh', args: ['-c', 'echo building; sleep 300'] });
    await c.call('process.spawn', { id: 'dev-server', command: process.execPath, args: ['-e', 'setInterval(()=>{}, 1000)'] });
    await c.call('process.spawn', { id: 'lint', command: 'sh', args: ['-c', 'echo lint failed >&2; exit 2'] });
    await login(page, cd.url, cd.d.token);
    await expect.poll(() => page.locator('tr[data-id="lint"] .c-exit').textContent(), { timeout: 10_000 }).toBe('2');
    await expect.poll(() => page.locator('tr[data-id="dev-server"] .c-memory').textContent(), { timeout: 10_000 }).toMatch(/iB$/);
    // A process another client owns, in view as an observer.
    await page.locator('tr[data-id="build-web"]').click();
    await expect.poll(() => page.locator('.log .lines .line.stdout').first().textContent(), { timeout: 10_000 }).toBe('building');
    await expect.poll(() => page.locator('tr[data-id="build-web"] .c-observers').textContent(), { timeout: 10_000 }).toBe('1');
    await screenshot(page, 'console-list.png');
    expect(problems).toEqual([]);
    await page.close();
  });
});

describe('console origin checks in Chromium', () => {
  let cd: ConsoleDaemon;
  let chrome: Chromium;
  let other: http.Server;
  let otherUrl: string;
  beforeAll(async () => {
    [cd, chrome] = await Promise.all([startConsoleDaemon(), launchChromium()]);
    // A page from another origin (another port on the same host) that tries the daemon's WebSocket with the token.
    other = http.createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end(`<!doctype html><title>other</title><script>
        const ws = new WebSocket('ws://127.0.0.1:${cd.port}/rpc');
        ws.onopen = () => { document.title = 'opened'; };
        ws.onerror = () => { document.title = 'refused'; };
      </script>`);
    });
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    otherUrl = `http://127.0.0.1:${(other.address() as AddressInfo).port}/`;
  });
  afterAll(async () => {
    await chrome?.close();
    other?.close();
    await cd?.d.stop();
  });

  it('refuses a page from another Origin', async () => {
    const page = await chrome.context.newPage();
    await page.goto(otherUrl);
    await expect.poll(() => page.title(), { timeout: 10_000 }).toBe('refused');
    expect(cd.d.log()).toContain(`origin ${otherUrl.slice(0, -1)} is not allowed`);
    // The console's own files refuse to be loaded cross-origin by a script, too.
    const status = await page.evaluate(async (u) => {
      try {
        const r = await fetch(u, { mode: 'cors' });
        return r.status;
      } catch {
        return 'blocked';
      }
    }, `http://127.0.0.1:${cd.port}/console.js`);
    expect(status).toBe('blocked');
    await page.close();
  });

  it('lets in the style elements the page creates (as xterm.js does), and no other inline style', async () => {
    const page = await chrome.context.newPage();
    const violations: string[] = [];
    page.on('console', (m) => {
      if (m.text().startsWith('CSP violation')) violations.push(m.text());
    });
    await page.addInitScript(() => {
      document.addEventListener('securitypolicyviolation', (e) => console.error(`CSP violation: ${e.violatedDirective}`));
    });
    await login(page, cd.url, cd.d.token);
    const applied = await page.evaluate(async () => {
      const stamped = document.createElement('style');
      stamped.textContent = '#app { outline: 3px solid rgb(1, 2, 3); }';
      document.head.append(stamped);
      // Markup parsed from a string is not created through document.createElement: no nonce, refused.
      const parsed = document.createElement('div');
      parsed.innerHTML = '<style>#app { text-decoration-line: line-through; }</style>';
      document.head.append(parsed.firstChild!);
      await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0)));
      const cs = getComputedStyle(document.getElementById('app')!);
      return { outline: cs.outlineColor, decoration: cs.textDecorationLine };
    });
    expect(applied).toEqual({ outline: 'rgb(1, 2, 3)', decoration: 'none' });
    await expect.poll(() => violations).toEqual(['CSP violation: style-src-elem']);
    await page.close();
  });

  it('serves its page with a strict CSP, and the page connects to its own origin', async () => {
    const page = await chrome.context.newPage();
    const { problems } = watchPage(page);
    const response = await page.goto(cd.url);
    const csp = response!.headers()['content-security-policy']!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain(`connect-src 'self' ws://127.0.0.1:${cd.port}`);
    await page.getByLabel('Token').fill(cd.d.token);
    await page.getByRole('button', { name: 'Connect' }).click();
    await page.locator('#filter').waitFor();
    expect(problems).toEqual([]);
    await page.close();
  });
});
