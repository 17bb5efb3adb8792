// Shared by the benchmarks: a staging root made by `karlstage init`, adjusted for a machine with
// no nginx (routes manual) and, unless a database is given, no PostgreSQL (databases not managed).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'dist');
const { freeBasePort } = await import(join(dist, 'demo', 'ports.js'));
const { init } = await import(join(dist, 'commands', 'init.js'));

/**
 * opts: { root, vcs, url, skeleton, defaultRef, sites, database?, drop?: keys whose lines are
 * removed (e.g. ['start', 'stop']), set?: { key: value } lines replaced }. Returns the config file.
 */
export async function benchStagingRoot(opts) {
  const { file } = await init({
    quiet: true,
    dir: opts.root,
    vcs: opts.vcs,
    url: opts.url,
    skeleton: opts.skeleton,
    defaultRef: opts.defaultRef,
    basePort: await freeBasePort(opts.sites),
    ...(opts.database ? { database: opts.database } : {}),
  });
  let text = (await readFile(file, 'utf8')).replace('routes = auto', 'routes = manual');
  if (!opts.database) text = text.replace('manage_databases = yes', 'manage_databases = no');
  for (const key of opts.drop ?? []) text = text.replace(new RegExp(`^${key} = .*$`, 'gm'), '');
  for (const [key, value] of Object.entries(opts.set ?? {}))
    text = text.replace(new RegExp(`^${key} = .*$`, 'm'), `${key} = ${value}`);
  await writeFile(file, text);
  return file;
}
