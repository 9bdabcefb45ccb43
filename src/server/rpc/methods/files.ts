/**
 * files.*: list, validate, stat, read, extract_tar (PROTOCOL.md). The handlers bind params, expand a
 * leading tilde in every path and call src/files, whose failures carry their catalogue entries.
 *
 * D9: the namespace binds one set of fields, so a mistyped `maxBytes` is `Invalid params` even for files.stat.
 */
import { extractArchive } from '../../../files/extract.js';
import { listDirectory, readFile, statPath, validatePath } from '../../../files/inspect.js';
import { failure } from '../../../protocol/errors.js';
import { expandTilde } from '../../../util/paths.js';
import { defineMethod, type MethodDef } from '../dispatch.js';

const FILES_PARAMS = { path: 'string', maxBytes: 'int64', archivePath: 'string', destDir: 'string' } as const;

export interface FilesOptions {
  /** `-max-extract-bytes`: the most bytes one extraction may write; 0 means no cap. */
  readonly maxExtractBytes: number;
}

export function filesMethods(options: FilesOptions): MethodDef[] {
  return [
    defineMethod('files.list', FILES_PARAMS, async (p) => ({ entries: await listDirectory(expandTilde(p.path ?? '')) })),
    defineMethod('files.validate', FILES_PARAMS, (p) => validatePath(expandTilde(p.path ?? ''))),
    defineMethod('files.stat', FILES_PARAMS, (p) => statPath(expandTilde(p.path ?? ''))),
    defineMethod('files.read', FILES_PARAMS, (p) => readFile(expandTilde(p.path ?? ''), p.maxBytes)),
    defineMethod('files.extract_tar', FILES_PARAMS, (p) => {
      if (!p.archivePath || !p.destDir) throw failure('extractParamsRequired');
      return extractArchive(expandTilde(p.archivePath), expandTilde(p.destDir), { maxExtractBytes: options.maxExtractBytes });
    }),
  ];
}
