import { randomBytes } from 'node:crypto';
import { chmod, chown, lstat, open, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { osError } from './errors.js';

/**
 * Write a file whole or not at all: a temporary file beside it, written to the
 * end, flushed to disk, then renamed over it. On a full disk write(2) may
 * write only part and say so without an error; write-file-atomic (7.x, and 8)
 * issues one write and renames what it got, so a full disk could swap a
 * truncated state.json in for a good one. FileHandle.writeFile writes until
 * everything is written, or fails. Whatever fails, the old file stays as it
 * was, the temporary one is removed, and the error is one line naming the file
 * and the cause (a full disk, a read-only filesystem, a refused permission).
 *
 * Like write-file-atomic, a link at `file` is written through (its target is
 * replaced), the mode and owner of the file it replaces are kept unless `mode`
 * is given, and writes of one file within this process happen one at a time.
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  opts: WriteOptions = {},
): Promise<void> {
  const previous = queue.get(file) ?? Promise.resolve();
  const mine = previous.then(() => writeWhole(file, data, opts));
  const settled = mine.catch(() => undefined);
  queue.set(file, settled);
  try {
    await mine;
  } finally {
    if (queue.get(file) === settled) queue.delete(file);
  }
}

export interface WriteOptions {
  mode?: number;
  /** A link at `file` is replaced, not written through (a file in a folder others may write). */
  noFollow?: boolean;
}

const queue = new Map<string, Promise<void>>();

async function writeWhole(file: string, data: string | Uint8Array, opts: WriteOptions) {
  const target = opts.noFollow ? file : await realpath(file).catch(() => file);
  // What it replaces gives its mode and owner (a link replaced under noFollow gives nothing).
  const found = await (opts.noFollow ? lstat : stat)(target).catch(() => undefined);
  const old = found?.isFile() ? found : undefined;
  const mode = opts.mode ?? (old ? old.mode & 0o7777 : undefined);
  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', mode ?? 0o666);
    try {
      await handle.writeFile(data);
      await handle.sync();
    } finally {
      await handle.close();
    }
    // open's mode is cut by the umask; an explicit or inherited mode is meant as given.
    if (mode !== undefined) await chmod(temp, mode);
    if (old) await chown(temp, old.uid, old.gid).catch(() => undefined);
    await rename(temp, target);
  } catch (e) {
    await unlink(temp).catch(() => undefined);
    throw osError(e, file) ?? e;
  }
}
