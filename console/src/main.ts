/** The console page's entry: stamp xterm's style elements with the CSP nonce, then log in. */
import { boot } from './app.js';
import { stampStyleNonces } from './termview.js';

stampStyleNonces(document);
const root = document.getElementById('app');
if (root) void boot(root);
