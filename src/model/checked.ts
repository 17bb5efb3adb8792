import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { layout } from './layout.js';

/**
 * When each branch site's upstream was last asked: written by every poll, cheaply (a small
 * file renamed into place, not fsynced: losing it loses only a time), so that a poll that
 * finds nothing new writes nothing durable (state.json keeps what was found, and when it
 * changed).
 */
const file = (root: string) => join(layout.meta(root), 'checked.json');

export async function readChecked(root: string): Promise<Record<string, string>> {
  try {
    const value = JSON.parse(await readFile(file(root), 'utf8')) as unknown;
    return typeof value === 'object' && value !== null ? (value as Record<string, string>) : {};
  } catch {
    return {};
  }
}

export async function recordChecked(root: string, branches: string[], at: string): Promise<void> {
  const checked = await readChecked(root);
  for (const b of branches) checked[b] = at;
  const tmp = `${file(root)}.${process.pid}`;
  await writeFile(tmp, JSON.stringify(checked));
  await rename(tmp, file(root));
}
