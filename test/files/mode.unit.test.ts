import { constants } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { goModeString } from '../../src/files/mode.js';

describe("Go's FileMode.String for a stat mode", () => {
  it.each([
    [constants.S_IFREG | 0o644, '-rw-r--r--'],
    [constants.S_IFREG | 0o600, '-rw-------'],
    [constants.S_IFREG | 0o000, '----------'],
    [constants.S_IFREG | 0o777, '-rwxrwxrwx'],
    [constants.S_IFDIR | 0o755, 'drwxr-xr-x'],
    [constants.S_IFDIR | 0o700, 'drwx------'],
    [constants.S_IFLNK | 0o777, 'Lrwxrwxrwx'],
    [constants.S_IFIFO | 0o644, 'prw-r--r--'],
    [constants.S_IFSOCK | 0o755, 'Srwxr-xr-x'],
    [constants.S_IFCHR | 0o666, 'Dcrw-rw-rw-'],
    [constants.S_IFBLK | 0o660, 'Drw-rw----'],
    [constants.S_IFREG | 0o4755, 'urwxr-xr-x'],
    [constants.S_IFREG | 0o2755, 'grwxr-xr-x'],
    [constants.S_IFDIR | 0o1777, 'dtrwxrwxrwx'],
    [constants.S_IFDIR | 0o3777, 'dgtrwxrwxrwx'],
    [constants.S_IFREG | 0o6755, 'ugrwxr-xr-x'],
  ])('mode %o is %s', (mode, text) => {
    expect(goModeString(mode)).toBe(text);
  });
});
