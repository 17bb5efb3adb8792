import { existsSync } from 'node:fs';
import { readdir, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseKeep } from '../config/keep.js';
import { datesToKeep } from './retention.js';

/**
 * The dumps folder of a customer: one dump per sync, named by when it was
 * taken (osf-20261123T020000Z.dump, a directory-format dump), written as
 * NAME.partial and renamed when complete, pruned by [sync] keep.
 */
const stamp = (d: Date) =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z'); // 20261123T020000Z
const DUMP = /^.+-(\d{8}T\d{6}Z)(?:-(\d+))?\.dump$/;
const fromStamp = (s: string) =>
  new Date(s.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));

/** A name for tonight's dump that no dump in the folder has (two syncs within one second are fine). */
export function dumpName(dir: string, customer: string, taken: Date): string {
  const base = `${customer}-${stamp(taken)}`;
  for (let n = 1; ; n++) {
    const name = n === 1 ? `${base}.dump` : `${base}-${n}.dump`;
    if (!existsSync(join(dir, name)) && !existsSync(join(dir, `${name}.partial`))) return name;
  }
}

/** Remove the dumps the keep policy does not keep; returns their names. */
export async function pruneDumps(dir: string, keep: string): Promise<string[]> {
  const dated = (await readdir(dir))
    .map((f) => ({ f, m: DUMP.exec(f) }))
    .filter((x): x is { f: string; m: RegExpExecArray } => x.m !== null)
    .map(({ f, m }) => ({ f, d: fromStamp(m[1]!) }));
  const kept = datesToKeep(
    dated.map((x) => x.d),
    parseKeep(keep),
  );
  const prune = dated.filter((x) => !kept.has(x.d)).map((x) => x.f);
  for (const f of prune) await rm(join(dir, f), { recursive: true, force: true });
  return prune;
}

/** The newest file matching a path whose last part may hold * and ? (a backup's name pattern). */
export async function newestMatch(
  pattern: string,
): Promise<{ path: string; mtime: Date } | undefined> {
  const dir = dirname(pattern);
  const re = new RegExp(
    `^${basename(pattern)
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  let best: { path: string; mtime: Date } | undefined;
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    if (!re.test(f) || f.endsWith('.partial')) continue;
    const st = await stat(join(dir, f));
    if (!best || st.mtime > best.mtime) best = { path: join(dir, f), mtime: st.mtime };
  }
  return best;
}
