/**
 * files.*: list, validate, stat, read, extract_tar (claustrum-wire.md §4.2). The handlers bind params, expand a
 * leading tilde in every path, call src/files, and name failures from the catalogue.
 *
 * D9: the namespace binds one set of fields, so a mistyped `maxBytes` is `Invalid params` even for files.stat.
 */
import { extractArchive } from '../../files/extract.js';
import { FsError } from '../../files/fsops.js';
import { listDirectory, readFile, ReadRefusal, statPath, validatePath } from '../../files/inspect.js';
import { ReadGate } from '../../files/read-gate.js';
import { expandTilde } from '../../util/paths.js';
import { defineMethod, type MethodDef } from '../dispatch.js';
import { wireError } from '../errors.js';
import type { ExtractTarResult, FilesListResult, ReadResult, StatResult, ValidateResult } from '../wire.js';

const FILES_PARAMS = { path: 'string', maxBytes: 'int64', archivePath: 'string', destDir: 'string' } as const;

export interface FilesOptions {
  /** `-max-extract-bytes`: the most bytes one extraction may write; 0 means no cap. */
  readonly maxExtractBytes: number;
}

export function filesMethods(options: FilesOptions): MethodDef[] {
  const readGate = new ReadGate();
  return [
    defineMethod('files.list', FILES_PARAMS, async (p): Promise<FilesListResult> => {
      const entries = await wire(listDirectory(expandTilde(p.path ?? '')));
      return { entries };
    }),
    defineMethod('files.validate', FILES_PARAMS, (p): Promise<ValidateResult> => wire(validatePath(expandTilde(p.path ?? '')))),
    defineMethod('files.stat', FILES_PARAMS, (p): Promise<StatResult> => wire(statPath(expandTilde(p.path ?? '')))),
    defineMethod('files.read', FILES_PARAMS, async (p, ctx): Promise<ReadResult> => {
      // One budget for all reads (src/files/read-gate.ts), held until this reply is encoded and written.
      const r = await wire(readFile(expandTilde(p.path ?? ''), p.maxBytes, readGate));
      if (r.release) ctx.afterReply(r.release);
      return r;
    }),
    defineMethod('files.extract_tar', FILES_PARAMS, (p): Promise<ExtractTarResult> => {
      if (!p.archivePath || !p.destDir) throw wireError('extractParamsRequired');
      return extractArchive(expandTilde(p.archivePath), expandTilde(p.destDir), { maxExtractBytes: options.maxExtractBytes });
    }),
  ];
}

/** Maps the logic's failures to their catalogue entries. */
async function wire<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw toWireError(err);
  }
}

function toWireError(err: unknown): unknown {
  if (err instanceof ReadRefusal) {
    switch (err.kind) {
      case 'isDirectory':
        return wireError('filesReadIsDirectory');
      case 'notRegular':
        return wireError('filesReadNotRegular');
      case 'tooLarge':
        return wireError('filesReadTooLarge');
    }
  }
  if (err instanceof FsError) {
    const args = { path: err.path, reason: err.reason };
    switch (err.op) {
      case 'stat':
        return wireError('statFailed', args);
      case 'open':
        return wireError('openFailed', args);
      case 'read':
        return wireError('readFailed', args);
      case 'readdirent':
        return wireError('readdirFailed', args);
      default:
        return wireError('internal', { detail: err.message });
    }
  }
  return err;
}
