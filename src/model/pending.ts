import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { startTime } from '../core/children.js';
import { layout } from './layout.js';

/**
 * A marker written before a branch site is changed and removed when the change
 * is over, success or failure. Found later (its writer killed), it tells the
 * next run what to repair: a half-made site to remove, or a working copy to
 * clean up. Only read or written while holding that branch's lock.
 */
export interface Pending {
  op: 'create' | 'update' | 'switch' | 'destroy';
  pid: number;
  /** The run's start time (/proc), so a reused pid is not taken for it. */
  start?: string;
  started: string;
}

export async function markPending(root: string, branch: string, op: Pending['op']): Promise<void> {
  await mkdir(layout.pendingDir(root), { recursive: true });
  const p: Pending = {
    op,
    pid: process.pid,
    start: startTime(process.pid),
    started: new Date().toISOString(),
  };
  await writeFile(layout.pending(root, branch), JSON.stringify(p));
}

export async function readPending(root: string, branch: string): Promise<Pending | undefined> {
  try {
    return JSON.parse(await readFile(layout.pending(root, branch), 'utf8')) as Pending;
  } catch {
    return undefined;
  }
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
