import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, relative, sep } from 'node:path';
import { KarlstageError } from '../core/errors.js';

/**
 * Maildirs (https://cr.yp.to/proto/maildir.html): a message is written whole
 * into tmp/, flushed to disk, then renamed into new/ — a reader never sees half
 * a message, and a crash leaves only a file in tmp/. The customer's mail-in
 * reads new/; "mail --caught" reads new/ and cur/.
 */
export const MAILDIR_PARTS = ['tmp', 'new', 'cur'] as const;

/**
 * The Maildir `dir` and the folders from `base` down to it, made or found without following a
 * link: a branch's code can put anything in its own folder. With `owner` (as root), the Maildir
 * and its parts are given to it, setgid and group-writable (2770), through an open handle, so a
 * link swapped in after the check is refused, never followed.
 */
export async function makeMaildir(
  base: string,
  dir: string,
  owner?: { uid: number; gid: number },
): Promise<void> {
  const parts = relative(base, dir).split(sep);
  let at = base;
  for (const part of parts.slice(0, -1)) await folder((at = join(at, part)), 0o755);
  for (const d of [dir, ...MAILDIR_PARTS.map((p) => join(dir, p))]) await folder(d, 0o2770, owner);
}

async function folder(d: string, mode: number, owner?: { uid: number; gid: number }) {
  await mkdir(d, { mode }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  const flags = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
  const handle = await open(d, flags).catch(async (e: NodeJS.ErrnoException) => {
    if (e.code !== 'ELOOP' && e.code !== 'ENOTDIR') throw e;
    const link = (await lstat(d).catch(() => undefined))?.isSymbolicLink();
    throw new KarlstageError(
      `${d} is ${link ? 'a symbolic link' : 'not a folder'}: karlstage makes no Maildir through it; remove it`,
    );
  });
  try {
    if (owner) {
      await handle.chown(owner.uid, owner.gid);
      await handle.chmod(mode); // the umask took bits from mkdir's mode
    }
  } finally {
    await handle.close();
  }
}

/** A name no other delivery can have: time, random part, pid, host. */
function uniqueName(): string {
  const now = Date.now();
  const host = hostname().replace(/[/:]/g, '_');
  return `${Math.floor(now / 1000)}.M${(now % 1000) * 1000}R${randomBytes(6).toString('hex')}P${process.pid}.${host}`;
}

/** Deliver one message into an existing Maildir; returns the file in new/. */
export async function deliverToMaildir(dir: string, message: Buffer): Promise<string> {
  const name = uniqueName();
  const tmp = join(dir, 'tmp', name);
  const file = join(dir, 'new', name);
  const handle = await open(tmp, 'wx', 0o660);
  try {
    // Readable by the Maildir's group (mail-in's user), whatever the umask.
    await handle.chmod(0o660);
    await handle.writeFile(message);
    await handle.sync();
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  } finally {
    await handle.close();
  }
  await rename(tmp, file);
  // The rename itself must reach the disk before postfix is told the mail is delivered.
  const folder = await open(join(dir, 'new'), 'r');
  try {
    await folder.sync();
  } finally {
    await folder.close();
  }
  return file;
}

/** How many messages wait in new/ (not yet read by mail-in); undefined when there is no Maildir. */
export async function unprocessed(dir: string): Promise<number | undefined> {
  try {
    return (await readdir(join(dir, 'new'))).filter((f) => !f.startsWith('.')).length;
  } catch {
    return undefined;
  }
}

/** Every message of a Maildir (new/ and cur/), oldest first. */
export async function messagesOf(
  dir: string,
): Promise<{ file: string; mtime: Date; text: () => Promise<Buffer> }[]> {
  const found = [];
  for (const part of ['new', 'cur']) {
    const files = await readdir(join(dir, part)).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [] as string[];
      throw e; // not allowed to read it: said, not shown as empty
    });
    for (const f of files.filter((x) => !x.startsWith('.'))) {
      const file = join(dir, part, f);
      const s = await stat(file).catch(() => undefined);
      if (s?.isFile()) found.push({ file, mtime: s.mtime, text: () => readFile(file) });
    }
  }
  return found.sort((a, b) => a.mtime.getTime() - b.mtime.getTime());
}
