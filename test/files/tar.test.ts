import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERR_FIELD_TOO_LONG, ERR_HEADER, ERR_UNEXPECTED_EOF, TAR_MAX_SPECIAL_FILE_BYTES, TarReader } from '../../src/files/tar.js';
import { systemTar, tarBytes, tarHeader } from '../helpers/tar.js';

async function* chunked(buf: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

interface Read {
  name: string;
  typeflag: string;
  linkname: string;
  size: number;
  body: string;
}

async function readAll(buf: Buffer, chunk = 7): Promise<Read[]> {
  const r = new TarReader(chunked(buf, chunk));
  const out: Read[] = [];
  for (;;) {
    const e = await r.next();
    if (e === null) return out;
    const parts: Buffer[] = [];
    for await (const c of r.body()) parts.push(c);
    out.push({ name: e.name, typeflag: e.typeflag, linkname: e.linkname, size: e.size, body: Buffer.concat(parts).toString() });
  }
}

const pax = (records: Record<string, string>): string =>
  Object.entries(records)
    .map(([k, v]) => {
      const rest = ` ${k}=${v}\n`;
      let n = rest.length + 1;
      while (String(n).length + rest.length !== n) n++;
      return `${n}${rest}`;
    })
    .join('');

describe('the tar reader on archives from the system tar', () => {
  let dir: string;
  const longName = `${'d'.repeat(60)}/${'f'.repeat(90)}.txt`; // over 100 bytes: a GNU L entry, a PAX path, a USTAR prefix
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tar-unit-'));
    const src = path.join(dir, 'src');
    mkdirSync(path.join(src, 'd'.repeat(60)), { recursive: true });
    mkdirSync(path.join(src, 'sub'));
    writeFileSync(path.join(src, 'a.txt'), 'alpha\n');
    writeFileSync(path.join(src, 'sub', 'b.txt'), 'b'.repeat(1500));
    writeFileSync(path.join(src, longName), 'long\n');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const expected = () => [
    { name: 'a.txt', typeflag: '0', body: 'alpha\n' },
    { name: `${'d'.repeat(60)}/`, typeflag: '5', body: '' },
    { name: longName, typeflag: '0', body: 'long\n' },
    { name: 'sub/', typeflag: '5', body: '' },
    { name: 'sub/b.txt', typeflag: '0', body: 'b'.repeat(1500) },
  ];

  it.each(['gnu', 'pax', 'ustar'])('reads the %s format, long names included, in any chunking', async (format) => {
    const file = path.join(dir, `${format}.tar`);
    systemTar(path.join(dir, 'src'), `--format=${format}`, '--sort=name', '-cf', file, 'a.txt', 'd'.repeat(60), 'sub');
    const buf = readFileSync(file);
    for (const chunk of [1, 7, 512, 1 << 20]) {
      const got = (await readAll(buf, chunk)).map(({ name, typeflag, body }) => ({ name, typeflag, body }));
      expect(got).toEqual(expected());
    }
  });
});

describe('the tar reader on hand-made archives', () => {
  it('reports links, devices and FIFOs with their typeflag, and no content', async () => {
    const got = await readAll(
      tarBytes([
        { name: 'hard', type: '1', linkname: 'a.txt' },
        { name: 'soft', type: '2', linkname: '/etc/passwd' },
        { name: 'fifo', type: '6' },
        { name: 'chr', type: '3' },
      ]),
    );
    expect(got.map((e) => [e.name, e.typeflag, e.linkname, e.size])).toEqual([
      ['hard', '1', 'a.txt', 0],
      ['soft', '2', '/etc/passwd', 0],
      ['fifo', '6', '', 0],
      ['chr', '3', '', 0],
    ]);
  });

  it('turns an old-style typeflag NUL into a file, or a directory when the name ends in /', async () => {
    const got = await readAll(
      tarBytes([
        { name: 'old/', type: '\0' },
        { name: 'old/f', type: '\0', body: 'x' },
      ]),
    );
    expect(got.map((e) => [e.name, e.typeflag, e.body])).toEqual([
      ['old/', '5', ''],
      ['old/f', '0', 'x'],
    ]);
  });

  it('keeps names as given, ../ included (judging them is the extractor’s job)', async () => {
    const got = await readAll(
      tarBytes([
        { name: '../escape.txt', body: 'e' },
        { name: '/abs.txt', body: 'a' },
      ]),
    );
    expect(got.map((e) => e.name)).toEqual(['../escape.txt', '/abs.txt']);
  });

  it('reads a base-256 size', async () => {
    const patch = (h: Buffer) => {
      h.fill(0, 124, 136);
      h[124] = 0x80;
      h[135] = 5;
    };
    const buf = Buffer.concat([tarHeader({ name: 'big', patch }, 0), Buffer.from('hello'), Buffer.alloc(507), Buffer.alloc(1024)]);
    expect((await readAll(buf)).map((e) => [e.name, e.size, e.body])).toEqual([['big', 5, 'hello']]);
  });

  it('applies PAX path and size records, and hands a global header to the caller as type g', async () => {
    const got = await readAll(
      tarBytes([
        { name: 'pax_global_header', type: 'g', body: pax({ comment: 'hi' }) },
        { name: 'PaxHeaders/x', type: 'x', body: pax({ path: 'renamed/by/pax.txt' }) },
        { name: 'short.txt', body: 'content' },
      ]),
    );
    expect(got.map((e) => [e.name, e.typeflag, e.body])).toEqual([
      ['pax_global_header', 'g', ''],
      ['renamed/by/pax.txt', '0', 'content'],
    ]);
  });

  it('ends cleanly at the end of input on a block boundary, or inside the last padding', async () => {
    expect((await readAll(tarBytes([{ name: 'a', body: 'x' }], { end: false }))).map((e) => e.body)).toEqual(['x']);
    const cut = tarBytes([{ name: 'a', body: 'xyz' }], { end: false }).subarray(0, 512 + 3);
    expect((await readAll(cut)).map((e) => e.body)).toEqual(['xyz']);
    const oneZeroBlock = Buffer.concat([tarBytes([{ name: 'a', body: 'x' }], { end: false }), Buffer.alloc(512)]);
    expect((await readAll(oneZeroBlock)).map((e) => e.name)).toEqual(['a']);
  });

  it('fails with Go’s texts: bad checksum, data after a zero block, truncation', async () => {
    const bad = tarBytes([{ name: 'a', body: 'x' }]);
    bad[0] = 0x62; // name changed after the checksum was computed
    await expect(readAll(bad)).rejects.toThrow(ERR_HEADER);

    const zeroThenData = Buffer.concat([Buffer.alloc(512), tarBytes([{ name: 'a' }])]);
    await expect(readAll(zeroThenData)).rejects.toThrow(ERR_HEADER);

    const inHeader = tarBytes([{ name: 'a', body: 'x' }]).subarray(0, 300);
    await expect(readAll(inHeader)).rejects.toThrow(ERR_UNEXPECTED_EOF);

    const inBody = tarBytes([{ name: 'a', body: 'y'.repeat(2000) }]).subarray(0, 512 + 1000);
    await expect(readAll(inBody)).rejects.toThrow(ERR_UNEXPECTED_EOF);

    const badOctal = tarBytes([{ name: 'a', patch: (h) => h.write('9', 124, 'latin1') }]);
    await expect(readAll(badOctal)).rejects.toThrow(ERR_HEADER);

    const badPax = tarBytes([{ name: 'x', type: 'x', body: '5 a\n' }, { name: 'a' }]);
    await expect(readAll(badPax)).rejects.toThrow(ERR_HEADER);
  });

  it('accepts a PAX header of exactly the special-file limit and refuses one byte more', async () => {
    const record = (total: number) => {
      const head = `${total} comment=`;
      return `${head + 'c'.repeat(total - head.length - 1)}\n`;
    };
    const atLimit = record(TAR_MAX_SPECIAL_FILE_BYTES);
    expect(atLimit.length).toBe(TAR_MAX_SPECIAL_FILE_BYTES);
    const ok = await readAll(
      tarBytes([
        { name: 'x', type: 'x', body: atLimit },
        { name: 'f', body: 'ok' },
      ]),
      1 << 16,
    );
    expect(ok.map((e) => e.body)).toEqual(['ok']);
    const over = record(TAR_MAX_SPECIAL_FILE_BYTES + 1);
    await expect(readAll(tarBytes([{ name: 'x', type: 'x', body: over }, { name: 'f' }]), 1 << 16)).rejects.toThrow(ERR_FIELD_TOO_LONG);
  });
});
