import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { startTime } from '../core/children.js';
import { writeFileAtomic } from '../core/files.js';
import { layout } from './layout.js';

/**
 * A marker written before a branch site is changed and removed when the change
 * is over, success or failure. Found later (its writer killed), it tells the
 * next run what to repair: a half-made site to remove, or a working copy to
 * clean up. Only read or written while holding that branch's lock.
 */
export interface Pending {
  /** What was under way; "unknown" when the marker is damaged (still an interrupted change: redone). */
  op: 'create' | 'update' | 'switch' | 'destroy' | 'unknown';
  pid: number;
  /** The run's start time (/proc), so a reused pid is not taken for it. */
  start?: string;
  started: string;
  /** The marker could not be read (not JSON, of the wrong shape): what is wrong with it. */
  damaged?: string;
}

const OPS: readonly string[] = ['create', 'update', 'switch', 'destroy'];

export async function markPending(root: string, branch: string, op: Pending['op']): Promise<void> {
  await mkdir(layout.pendingDir(root), { recursive: true });
  const p: Pending = {
    op,
    pid: process.pid,
    start: startTime(process.pid),
    started: new Date().toISOString(),
  };
  // Whole or not at all: a marker cut short by a full disk or a kill would be a damaged one.
  await writeFileAtomic(layout.pending(root, branch), JSON.stringify(p));
}

/**
 * The marker of an interrupted change, if there is one. A marker that cannot be
 * read is still one: the change it stood for was interrupted, and is redone
 * (an update builds again, a create starts over), never taken for "nothing pending".
 */
export async function readPending(root: string, branch: string): Promise<Pending | undefined> {
  const file = layout.pending(root, branch);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const damaged = (why: string): Pending => ({
    op: 'unknown',
    pid: 0,
    started: 'unknown',
    damaged: `${file} is damaged (${why})`,
  });
  let p: Partial<Pending>;
  try {
    p = JSON.parse(text) as Partial<Pending>;
  } catch {
    return damaged(text.trim() === '' ? 'empty' : 'not JSON');
  }
  if (
    typeof p !== 'object' ||
    p === null ||
    !OPS.includes(p.op as string) ||
    typeof p.pid !== 'number' ||
    typeof p.started !== 'string'
  )
    return damaged('not a marker karlstage wrote');
  return p as Pending;
}

export async function clearPending(root: string, branch: string): Promise<void> {
  await rm(layout.pending(root, branch), { force: true });
}

export async function listPending(root: string): Promise<Record<string, Pending>> {
  const out: Record<string, Pending> = {};
  const files = await readdir(layout.pendingDir(root)).catch(() => [] as string[]);
  for (const f of files) {
    if (!f.endsWith('.json')) continue;
    const branch = f.slice(0, -'.json'.length);
    const p = await readPending(root, branch);
    if (p) out[branch] = p;
  }
  return out;
}
