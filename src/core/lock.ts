import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { link, mkdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { armChildRecord, startTime, stopLeftovers } from './children.js';
import { LockedError, osError } from './errors.js';

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
  /** The holder's start time (/proc): a pid reused by another program is not the holder. */
  start?: string;
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
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A killed process whose parent has not reaped it yet (a daemon's parent is init, which may
  // be slow to) still has a pid: a zombie holds nothing.
  return !isZombie(pid);
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) === 'Z';
  } catch {
    return false;
  }
}

/** The owner written in a lock file; undefined when the file is gone or holds no owner (damaged). */
async function readOwner(file: string): Promise<LockOwner | 'gone' | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return 'gone';
  }
  try {
    const o = JSON.parse(text) as LockOwner;
    return typeof o?.pid === 'number' && typeof o.token === 'string' ? o : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Why this lock's holder cannot be alive (so the lock is taken over), or
 * undefined when it may be. Only a holder on this host can be judged.
 */
export function deadHolder(o: LockOwner | undefined): string | undefined {
  if (!o) return 'the lock file is empty or damaged';
  if (o.host !== hostname()) return undefined;
  if (!isAlive(o.pid)) return `its holder (pid ${o.pid}) is gone`;
  if (o.start && startTime(o.pid) !== o.start) return `pid ${o.pid} now belongs to another program`;
  if (!o.start && !/karlstage/.test(commandLineOf(o.pid))) return `pid ${o.pid} is not karlstage`;
  return undefined;
}

const commandLineOf = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return '';
  }
};

/** Where each takeover is told (the command's output warns; a test listens). */
let takeovers: ((text: string) => void) | undefined;
export function onTakeover(fn: ((text: string) => void) | undefined): void {
  takeovers = fn;
}

/** Where a run says it waits for a lock (--wait): once per lock, naming its holder. */
let waits: ((text: string) => void) | undefined;
export function onWait(fn: ((text: string) => void) | undefined): void {
  waits = fn;
}

function describe(name: string, o: LockOwner | undefined | 'gone'): string {
  if (o === 'gone') return `another karlstage run holds the ${name} lock`;
  if (!o) return `another karlstage run holds the ${name} lock`;
  return `another karlstage run holds the ${name} lock: "${o.command}" (pid ${o.pid} on ${o.host}, since ${o.since})`;
}

/** Move a dead run's lock aside; put it back if, in a race, it was a live one by then. */
async function takeOver(file: string, judged: LockOwner | undefined): Promise<boolean> {
  const aside = `${file}.stale-${randomUUID()}`;
  try {
    await rename(file, aside);
  } catch {
    return false; // someone else took it over first
  }
  const moved = await readOwner(aside);
  const same = judged ? moved !== 'gone' && moved?.token === judged.token : moved === undefined;
  if (!same) await link(aside, file).catch(() => undefined);
  await unlink(aside).catch(() => undefined);
  return same;
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
    start: startTime(process.pid),
    host: hostname(),
    command: opts.command,
    since: new Date().toISOString(),
    token: randomUUID(),
  };
  const draft = join(dir, `.${name}.${owner.token}`);
  await writeFile(draft, JSON.stringify(owner)).catch(async (e: unknown) => {
    await unlink(draft).catch(() => undefined);
    throw osError(e, file) ?? e;
  });
  const deadline = Date.now() + (opts.waitSeconds ?? 0) * 1000;
  let saidWaiting = false;
  try {
    for (;;) {
      try {
        await link(draft, file);
        armChildRecord();
        return async () => {
          const current = await readOwner(file);
          if (current !== 'gone' && current?.token === owner.token)
            await unlink(file).catch(() => undefined);
        };
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      }
      const holder = await readOwner(file);
      if (holder === 'gone') continue; // released meanwhile: try again at once
      const dead = deadHolder(holder);
      if (dead) {
        // What the dead run left running (a build, say) must not race this one.
        if (holder) await stopLeftovers(room.runs, holder.pid);
        if (await takeOver(file, holder))
          takeovers?.(
            `took over the ${name} lock${holder ? ` of "${holder.command}" (pid ${holder.pid}, since ${holder.since})` : ''}: ${dead}`,
          );
        continue;
      }
      // A sibling job of this same run holds it for a moment: not worth a word.
      const ours = holder?.pid === process.pid;
      if (Date.now() < deadline && !saidWaiting && !ours) {
        saidWaiting = true;
        waits?.(`waiting up to ${opts.waitSeconds} s: ${describe(name, holder)}`);
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

/** The holder of one lock when it is alive (on this host: its pid runs); undefined when free or stale. */
export async function liveHolder(room: LockRoom, name: string): Promise<LockOwner | undefined> {
  const owner = await readOwner(join(room.locks, `${name}.lock`));
  return owner === 'gone' || deadHolder(owner) ? undefined : owner;
}

/** Every lock in the room, its holder, and why that holder cannot be alive (doctor's "stuck locks"). */
export async function listLocks(
  room: LockRoom,
): Promise<{ name: string; owner?: LockOwner; dead?: string }[]> {
  const { readdir } = await import('node:fs/promises');
  const files = (await readdir(room.locks).catch(() => [] as string[])).filter((f) =>
    /^[a-z][a-z0-9-]*\.lock$/.test(f),
  );
  const locks = [];
  for (const f of files) {
    const owner = await readOwner(join(room.locks, f));
    if (owner === 'gone') continue;
    locks.push({ name: f.slice(0, -5), owner, dead: deadHolder(owner) });
  }
  return locks;
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
