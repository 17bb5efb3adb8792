import { open, stat, truncate, utimes } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import { layout } from './layout.js';

/**
 * When a branch site was last used: the modification time of its activity file, to which
 * nginx appends a line for each logged-in request through the TLS host (templates/nginx.conf),
 * and which karlstage touches for an update, switch, reset, hold or start. Idle sites are
 * put to sleep by it (watch).
 */
export async function lastActivity(root: string, branch: string): Promise<number | undefined> {
  return (await stat(layout.activity(root, branch)).catch(() => undefined))?.mtimeMs;
}

/** Now counts as activity: the file is made when missing (karlstage owns it; nginx appends). */
export async function noteActivity(root: string, branch: string): Promise<void> {
  const file = layout.activity(root, branch);
  await mkdir(layout.activityDir(root), { recursive: true });
  await (await open(file, 'a', 0o644)).close();
  const now = new Date();
  await utimes(file, now, now);
}

/** Every site's activity file exists before nginx opens it (routes), so karlstage owns it. */
export async function makeActivityFiles(root: string, branches: string[]): Promise<void> {
  await mkdir(layout.activityDir(root), { recursive: true });
  for (const b of branches) await (await open(layout.activity(root, b), 'a', 0o644)).close();
}

/** Keep a busy site's file small: emptied past 1 MB, its time of last use kept. */
export async function tidyActivity(root: string, branch: string): Promise<void> {
  const file = layout.activity(root, branch);
  const s = await stat(file).catch(() => undefined);
  if (!s || s.size < 1_000_000) return;
  await truncate(file, 0);
  await utimes(file, s.atime, s.mtime);
}
