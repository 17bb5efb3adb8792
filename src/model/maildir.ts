import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';

/**
 * Maildirs (https://cr.yp.to/proto/maildir.html): a message is written whole
 * into tmp/, flushed to disk, then renamed into new/ — a reader never sees half
 * a message, and a crash leaves only a file in tmp/. The customer's mail-in
 * reads new/; "mail --caught" reads new/ and cur/.
 */
export const MAILDIR_PARTS = ['tmp', 'new', 'cur'] as const;

export async function makeMaildir(dir: string): Promise<void> {
  for (const part of MAILDIR_PARTS) await mkdir(join(dir, part), { recursive: true, mode: 0o2770 });
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
