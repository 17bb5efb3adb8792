import { readdir, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import { exec } from '../core/command.js';
import { layout } from '../model/layout.js';
import type { State } from '../model/state.js';

/**
 * Disk: what each branch site, each dump and the free space come to. Blobs are
 * hard-linked from the sync's mirror into every site, so a site's own use is
 * what `du` counts for it after the mirror (each file once), and the rest of
 * its apparent size is shared.
 */
const DUMP = /^.+-\d{8}T\d{6}Z(?:-\d+)?\.dump$/;

/** `du -s -B1` of several paths in one run: each file counted once, for the first path that has it. */
async function du(paths: string[]): Promise<Map<string, number>> {
  const sizes = new Map<string, number>();
  if (paths.length === 0) return sizes;
  const r = await exec({
    program: 'du',
    args: ['-s', '-B1', '--', ...paths],
    step: 'du',
    timeoutMs: 10 * 60_000,
    okExitCodes: [1], // a folder vanishing meanwhile is not worth failing for
  });
  for (const line of r.stdout.split('\n')) {
    const m = /^(\d+)\t(.+)$/.exec(line);
    if (m) sizes.set(m[2]!, Number(m[1]));
  }
  return sizes;
}

export interface DumpsOf {
  customer: string;
  count: number;
  bytes: number;
  /** The newest dump's size: about what tonight's needs. */
  newestBytes: number;
}

/** The dumps kept, per customer. */
export async function dumpsOf(cfg: Config, only?: string): Promise<DumpsOf[]> {
  const out: DumpsOf[] = [];
  for (const c of cfg.customers.filter((x) => !only || x.name === only)) {
    const dir = join(cfg.sync.dumps, c.name);
    const names = (await readdir(dir).catch(() => [] as string[])).filter((f) => DUMP.test(f));
    if (names.length === 0) continue;
    const paths = names.sort().map((f) => join(dir, f));
    const sizes = await du(paths);
    out.push({
      customer: c.name,
      count: names.length,
      bytes: [...sizes.values()].reduce((a, b) => a + b, 0),
      newestBytes: sizes.get(paths.at(-1)!) ?? 0,
    });
  }
  return out;
}

export async function freeBytes(path: string): Promise<number> {
  const s = await statfs(path);
  return s.bavail * s.bsize;
}

export interface DiskReport {
  sites: { name: string; ownBytes: number; sharedBytes: number }[];
  dumps: DumpsOf[];
  dumpsBytes: number;
  free: { path: string; bytes: number }[];
}

export async function diskReport(cfg: Config, state: State): Promise<DiskReport> {
  const names = Object.values(state.branches)
    .sort((a, b) => a.slot - b.slot)
    .map((b) => b.name);
  const sitePaths = names.map((n) => layout.branch(cfg.root, n));
  // The mirror first: what a site shares with it (and so with the others) is counted there.
  const together = await du([cfg.sync.files, ...sitePaths]);
  const alone = new Map<string, number>();
  for (const p of sitePaths) for (const [k, v] of await du([p])) alone.set(k, v);
  const dumps = await dumpsOf(cfg);
  const free = [];
  for (const path of [...new Set([cfg.root, cfg.sync.dumps])])
    free.push({ path, bytes: await freeBytes(path).catch(() => 0) });
  return {
    sites: names.map((name, i) => {
      const own = together.get(sitePaths[i]!) ?? 0;
      return {
        name,
        ownBytes: own,
        sharedBytes: Math.max(0, (alone.get(sitePaths[i]!) ?? own) - own),
      };
    }),
    dumps,
    dumpsBytes: dumps.reduce((a, d) => a + d.bytes, 0),
    free,
  };
}

export const mb = (bytes: number) =>
  bytes >= 1024 ** 3
    ? `${(bytes / 1024 ** 3).toFixed(1)} GB`
    : bytes >= 1024 ** 2
      ? `${(bytes / 1024 ** 2).toFixed(1)} MB`
      : `${Math.ceil(bytes / 1024)} kB`;

/** Each staging database karlstage made (ks_*), and its size; undefined when the server cannot be asked. */
export async function databaseSizes(
  cfg: Config,
): Promise<{ name: string; bytes: number }[] | undefined> {
  const { psql } = await import('../db/pg.js');
  const { stagingAdmin } = await import('../db/guard.js');
  try {
    const r = await psql(
      stagingAdmin(cfg),
      "SELECT datname || chr(9) || pg_database_size(oid) FROM pg_database WHERE datname LIKE 'ks\\_%' ORDER BY 1",
      { step: 'database sizes', timeoutMs: 30_000 },
    );
    return r.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => {
        const [name = '', bytes = '0'] = l.split('\t');
        return { name, bytes: Number(bytes) };
      });
  } catch {
    return undefined;
  }
}
