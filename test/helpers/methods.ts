/** Every method the daemon serves, in server.capabilities order: the reference's, then the extensions. */
export const SERVED_METHODS: readonly string[] = [
  'server.ping',
  'server.capabilities',
  'server.shutdown',
  'files.list',
  'files.validate',
  'files.stat',
  'files.read',
  'files.extract_tar',
  'git.info',
  'git.status',
  'git.list_branches',
  'git.worktree_create',
  'git.worktree_remove',
  'process.spawn',
  'process.stdin',
  'process.kill',
  'process.killAndWait',
  'process.reattach',
  // Extensions come after every reference method.
  'process.list',
  'process.stats',
  // Registered by the daemon after the server's own methods (src/server/methods/info.ts).
  'server.info',
];
