import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import lockfile from 'proper-lockfile';
import { LockedError } from './errors.js';
import { layout } from './layout.js';

/**
 * Named locks under .karlstage/locks/, built on proper-lockfile (an atomic
 * mkdir, kept fresh while held). Inside the lock folder we record who holds it,
 * so a second run can say who, and a lock left by a killed run (its pid gone on
 * this host) is taken over at once instead of after the staleness timeout.
 */
export interface LockOwner {
  pid: number;
  host: string;
  command: string;
  since: string;
}

export interface LockOptions {
  waitSeconds?: number;
  command: string;
}

export type Release = () => Promise<void>;

const STALE_MS = 30_000;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(lockDir: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(join(lockDir, 'owner.json'), 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

function describe(name: string, owner: LockOwner | undefined): string {
  if (!owner) return `another karlstage run holds the ${name} lock`;
  return `another karlstage run holds the ${name} lock: "${owner.command}" (pid ${owner.pid} on ${owner.host}, since ${owner.since})`;
}

export async function acquireLock(root: string, name: string, opts: LockOptions): Promise<Release> {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`bad lock name ${JSON.stringify(name)}`);
  const dir = layout.locks(root);
  await mkdir(dir, { recursive: true });
  const target = join(dir, name);
  const lockDir = `${target}.lock`;
  const deadline = Date.now() + (opts.waitSeconds ?? 0) * 1000;
  for (;;) {
    try {
      const release = await lockfile.lock(target, {
        lockfilePath: lockDir,
        realpath: false,
        stale: STALE_MS,
        update: STALE_MS / 3,
        retries: 0,
        onCompromised: () => undefined,
      });
      const owner: LockOwner = {
        pid: process.pid,
        host: hostname(),
        command: opts.command,
        since: new Date().toISOString(),
      };
      await writeFile(join(lockDir, 'owner.json'), JSON.stringify(owner));
      return async () => {
        // proper-lockfile removes the lock folder with rmdir: empty it first.
        await rm(join(lockDir, 'owner.json'), { force: true });
        await release().catch(() => undefined);
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw e;
      const owner = await readOwner(lockDir);
      if (owner && owner.host === hostname() && !isAlive(owner.pid)) {
        // Left behind by a killed run: take it over.
        await rm(lockDir, { recursive: true, force: true });
        continue;
      }
      if (Date.now() >= deadline) {
        const waited = opts.waitSeconds ? ` after waiting ${opts.waitSeconds} s` : '';
        throw new LockedError(`${describe(name, owner)}${waited}; try again later or pass --wait SECONDS`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}

/** Run fn while holding every named lock (taken in a fixed order, so two runs cannot deadlock). */
export async function withLocks<T>(
  root: string,
  names: string[],
  opts: LockOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const releases: Release[] = [];
  try {
    for (const name of [...new Set(names)].sort()) releases.push(await acquireLock(root, name, opts));
    return await fn();
  } finally {
    for (const release of releases.reverse()) await release();
  }
}
