import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, relative, sep } from 'node:path';
import { KarlstageError } from '../core/errors.js';
import { NotAFolder, openBelow, openChild, type HeldFolder } from '../core/no-links.js';

/**
 * Maildirs (https://cr.yp.to/proto/maildir.html): a message is written whole
 * into tmp/, flushed to disk, then renamed into new/ — a reader never sees half
 * a message, and a crash leaves only a file in tmp/. The customer's mail-in
 * reads new/; "mail --caught" reads new/ and cur/.
 */
export const MAILDIR_PARTS = ['tmp', 'new', 'cur'] as const;

/**
 * The Maildir `dir` and the folders from `base` down to it, made or found without following a
 * link (each one made and opened inside the one opened before: no path is looked up twice): a
 * branch's code can put anything in its own folder. With `owner` (as root), the Maildir and its
 * parts are given to it, setgid and group-writable (2770), through the open handle.
 */
export async function makeMaildir(
  base: string,
  dir: string,
  owner?: { uid: number; gid: number },
): Promise<void> {
  const parts = relative(base, dir).split(sep).filter(Boolean);
  let at = await openBelow(base, base);
  try {
    for (const [i, part] of parts.entries()) {
      const last = i === parts.length - 1;
      const next = await folder(at, part, last ? 0o2770 : 0o755, last ? owner : undefined);
      await at.close();
      at = next;
    }
    for (const part of MAILDIR_PARTS) await (await folder(at, part, 0o2770, owner)).close();
  } finally {
    await at.close();
  }
}

async function folder(
  parent: HeldFolder,
  name: string,
  mode: number,
  owner?: { uid: number; gid: number },
): Promise<HeldFolder> {
  await mkdir(parent.at(name), { mode }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST')
      throw new KarlstageError(`cannot make ${join(parent.path, name)}: ${e.code ?? e.message}`);
  });
  const held = await openChild(parent, name).catch((e: unknown) => {
    if (!(e instanceof NotAFolder)) throw e;
    throw new KarlstageError(`${e.message}: karlstage makes no Maildir through it; remove it`);
  });
  try {
    if (owner) {
      await held.handle.chown(owner.uid, owner.gid);
      await held.handle.chmod(mode); // the umask took bits from mkdir's mode
    }
  } catch (e) {
    await held.close();
    throw e;
  }
  return held;
}

/** A name no other delivery can have: time, random part, pid, host. */
function uniqueName(): string {
  const now = Date.now();
  const host = hostname().replace(/[/:]/g, '_');
  return `${Math.floor(now / 1000)}.M${(now % 1000) * 1000}R${randomBytes(6).toString('hex')}P${process.pid}.${host}`;
}

/**
 * Deliver one message into the existing Maildir `dir`, found below `base` (the
 * staging root) without following a link anywhere on the way: a branch's code
 * can put a link where its Maildir or a folder above it was, and one customer's
 * mail must never land in another's Maildir, or outside the site. Returns the
 * file in new/. On any failure nothing is left behind: not in tmp/, not in new/.
 */
export async function deliverToMaildir(
  base: string,
  dir: string,
  message: Buffer,
): Promise<string> {
  const name = uniqueName();
  const held: HeldFolder[] = [];
  try {
    const maildir = await openBelow(base, dir);
    held.push(maildir);
    const [tmp, fresh] = [await openChild(maildir, 'tmp'), await openChild(maildir, 'new')];
    held.push(tmp, fresh);
    await writeWhole(tmp, name, message);
    try {
      await rename(tmp.at(name), fresh.at(name));
    } catch (e) {
      await rm(tmp.at(name), { force: true });
      throw e;
    }
    // The rename itself must reach the disk before postfix is told the mail is delivered;
    // if it cannot, the message is taken back out, so the retry does not deliver it twice.
    await fresh.handle.sync().catch(async (e: unknown) => {
      await rm(fresh.at(name), { force: true });
      throw e;
    });
    return join(dir, 'new', name);
  } finally {
    for (const h of held.reverse()) await h.close();
  }
}

/** The message written whole into tmp/ and flushed; on any failure its file is removed. */
async function writeWhole(tmp: HeldFolder, name: string, message: Buffer): Promise<void> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
  const handle = await open(tmp.at(name), flags, 0o660);
  try {
    // Readable by the Maildir's group (mail-in's user), whatever the umask.
    await handle.chmod(0o660);
    await handle.writeFile(message);
    await handle.sync();
  } catch (e) {
    await rm(tmp.at(name), { force: true });
    throw e;
  } finally {
    await handle.close();
  }
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
