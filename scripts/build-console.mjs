// Bundles the browser console (console/) into dist/console/: index.html, console.js (one bundle: the page, xterm.js,
// msgpackr's browser build), console.css, xterm.css and favicon.svg. Everything the page loads is here; nothing comes from a CDN.
import { copyFile, mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out = path.join(root, 'dist/console');
const require = createRequire(import.meta.url);

await rm(out, { recursive: true, force: true });
await mkdir(out, { recursive: true });
const result = await build({
  entryPoints: [path.join(root, 'console/src/main.ts')],
  outfile: path.join(out, 'console.js'),
  bundle: true,
  format: 'iife',
  platform: 'browser',
  // Chromium, Firefox and Safari of the last few years: private fields and ?? are native there.
  target: ['es2022'],
  minify: true,
  sourcemap: false,
  legalComments: 'eof',
  metafile: true,
  logLevel: 'warning',
});
await copyFile(path.join(root, 'console/index.html'), path.join(out, 'index.html'));
await copyFile(path.join(root, 'console/console.css'), path.join(out, 'console.css'));
await copyFile(path.join(root, 'console/favicon.svg'), path.join(out, 'favicon.svg'));
await copyFile(require.resolve('@xterm/xterm/css/xterm.css'), path.join(out, 'xterm.css'));
await writeFile(path.join(root, 'dist/console-meta.json'), JSON.stringify(result.metafile));
const size = (await stat(path.join(out, 'console.js'))).size;
const html = await readFile(path.join(out, 'index.html'), 'utf8');
if (!html.includes('__CSP_NONCE__')) throw new Error('console/index.html lost its nonce placeholder');
if (process.env.CONSOLE_BUILD_QUIET !== '1') process.stdout.write(`console: dist/console/console.js ${(size / 1024).toFixed(1)} KiB\n`);
