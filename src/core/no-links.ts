import { constants, existsSync } from 'node:fs';
import { lstat, open, type FileHandle } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';

/**
 * Folders opened without following a symbolic link anywhere below a trusted base.
 *
 * Node has no openat(2). On Linux, /proc/self/fd/N names the folder an open
 * handle N refers to, whatever happens to its path meanwhile, so opening
 * "/proc/self/fd/N/NAME" with O_NOFOLLOW is openat(N, NAME, O_NOFOLLOW): each
 * component is looked up in the folder already opened, never again by its path.
 * A link swapped in for any component, before or during the walk, is refused,
 * never followed. The base itself (the staging root, the operator's) may be
 * reached through links.
 */
const FOLDER = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;

/** Something on the way is a link or not a folder: `path` names it. */
export class NotAFolder extends Error {
  readonly code = 'ENOTFOLDER';
  constructor(
    readonly path: string,
    readonly link: boolean,
  ) {
    super(`${path} is ${link ? 'a symbolic link' : 'not a folder'}`);
  }
}

/** A folder held open; `at(name)` names an entry in it for fs calls (an fd-relative path). */
export interface HeldFolder {
  readonly path: string;
  readonly handle: FileHandle;
  at(name: string): string;
  close(): Promise<void>;
}

const viaHandle = (h: FileHandle, name: string) => `/proc/self/fd/${h.fd}/${name}`;

function held(path: string, handle: FileHandle): HeldFolder {
  return { path, handle, at: (name) => viaHandle(handle, name), close: () => handle.close() };
}

/** An error about `/proc/self/fd/N/x`, told about the real path (its code kept). */
function aboutPath(e: NodeJS.ErrnoException, path: string): NodeJS.ErrnoException {
  const told = new Error(`${path}: ${e.code ?? e.message}`) as NodeJS.ErrnoException;
  if (e.code) told.code = e.code;
  told.path = path;
  return told;
}

/** Open the folder `name` inside the held folder `parent`, refusing a link or a non-folder. */
export async function openChild(parent: HeldFolder, name: string): Promise<HeldFolder> {
  if (!name || name === '.' || name === '..' || name.includes('/'))
    throw new Error(`"${name}" is not one folder name`);
  const path = join(parent.path, name);
  try {
    return held(path, await open(parent.at(name), FOLDER));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // O_NOFOLLOW|O_DIRECTORY on a link fails with ELOOP or ENOTDIR: tell which it was.
    if (err.code === 'ELOOP' || err.code === 'ENOTDIR') {
      const s = await lstat(parent.at(name)).catch(() => undefined);
      throw new NotAFolder(path, Boolean(s?.isSymbolicLink()));
    }
    throw aboutPath(err, path);
  }
}

/**
 * Open `dir`, which must lie inside `base`, one component at a time without
 * following a link. The caller closes what it gets.
 */
export async function openBelow(base: string, dir: string): Promise<HeldFolder> {
  const rel = relative(base, dir);
  if (rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel))
    throw new Error(`${dir} is not inside ${base}`);
  if (!existsSync('/proc/self/fd'))
    throw new Error('/proc is not mounted: no folder can be opened without following links');
  let at = held(base, await open(base, constants.O_RDONLY | constants.O_DIRECTORY));
  try {
    for (const part of rel.split(sep).filter(Boolean)) {
      const next = await openChild(at, part);
      await at.close();
      at = next;
    }
    return at;
  } catch (e) {
    await at.close();
    throw e;
  }
}
