import { randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { armChildRecord, stopLeftovers } from './children.js';
import { LockedError } from './errors.js';

/**
 * Named locks under .karlstage/locks/. A lock is a file holding its owner
 * (pid, host, command, since), created atomically with link(2) from a file
 * written beforehand, so a lock never exists without its owner. A lock whose
 * pid is gone on this host was left by a killed run and is taken over at once.
 *
 * Why not proper-lockfile: its folder lock keeps no owner, and its mtime
 * heartbeat counts any write into the folder as a compromised lock.
 */
export interface LockOwner {
  pid: number;
  host: string;
  command: string;
  since: string;
  token: string;
}

export interface LockOptions {
  waitSeconds?: number;
  command: string;
}

export type Release = () => Promise<void>;

/** Where locks live, and where each run writes down the programs it started (children.ts). */
export interface LockRoom {
  locks: string;
  runs: string;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(file: string): Promise<LockOwner | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as LockOwner;
  } catch {
    return undefined;
  }
}

const isStale = (o: LockOwner) => o.host === hostname() && !isAlive(o.pid);

function describe(name: string, o: LockOwner | undefined): string {
  if (!o) return `another karlstage run holds the ${name} lock`;
  return `another karlstage run holds the ${name} lock: "${o.command}" (pid ${o.pid} on ${o.host}, since ${o.since})`;
}

/** Move a dead run's lock aside; put it back if, in a race, it was a live one by then. */
async function takeOver(file: string, judged: LockOwner): Promise<void> {
  const aside = `${file}.stale-${randomUUID()}`;
  try {
    await rename(file, aside);
  } catch {
    return; // someone else took it over first
  }
  const moved = await readOwner(aside);
  if (moved && moved.token !== judged.token) await link(aside, file).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
}

export async function acquireLock(
  room: LockRoom,
  name: string,
  opts: LockOptions,
): Promise<Release> {
  if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new Error(`bad lock name ${JSON.stringify(name)}`);
  const dir = room.locks;
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${name}.lock`);
  const owner: LockOwner = {
    pid: process.pid,
    host: hostname(),
    command: opts.command,
    since: new Date().toISOString(),
    token: randomUUID(),
  };
  const draft = join(dir, `.${name}.${owner.token}`);
  await writeFile(draft, JSON.stringify(owner));
  const deadline = Date.now() + (opts.waitSeconds ?? 0) * 1000;
  try {
    for (;;) {
      try {
        await link(draft, file);
        armChildRecord();
        return async () => {
          const current = await readOwner(file);
          if (current?.token === owner.token) await unlink(file).catch(() => undefined);
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = await readOwner(file);
      if (holder && isStale(holder)) {
        // What the dead run left running (a build, say) must not race this one.
        await stopLeftovers(room.runs, holder.pid);
        await takeOver(file, holder);
        continue;
      }
      if (Date.now() >= deadline) {
        const waited = opts.waitSeconds ? ` after waiting ${opts.waitSeconds} s` : '';
        throw new LockedError(
          `${describe(name, holder)}${waited}; try again later or pass --wait SECONDS`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  } finally {
    await rm(draft, { force: true });
  }
}

/** Run fn while holding every named lock (taken in a fixed order, so two runs cannot deadlock). */
export async function withLocks<T>(
  room: LockRoom,
  names: string[],
  opts: LockOptions,
  fn: () => Promise<T>,
): Promise<T> {
  const releases: Release[] = [];
  try {
    for (const name of [...new Set(names)].sort())
      releases.push(await acquireLock(room, name, opts));
    return await fn();
  } finally {
    for (const release of releases.reverse()) await release();
  }
}
