// Shared by the benchmarks: a staging root made by `karlstage init`, adjusted for a machine with
// no nginx (routes manual) and, unless a database is given, no PostgreSQL (databases not managed).
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'dist');
const { freeBasePort } = await import(join(dist, 'demo', 'ports.js'));
const { init } = await import(join(dist, 'commands', 'init.js'));
const { makeGitSample, makeSkeleton } = await import(join(dist, 'demo', 'sample-repos.js'));

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
    text = text.replace(new RegExp(`^${key} =.*$`, 'm'), `${key} = ${value}`);
  await writeFile(file, text);
  return file;
}

/**
 * The common case: a sample git repository and skeleton in `dir`, and a staging root in
 * dir/staging. opts: as benchStagingRoot, without root/vcs/url/skeleton/defaultRef.
 * Returns { file, root, repo }.
 */
export async function benchGitStaging(dir, opts) {
  const repo = await makeGitSample(join(dir, 'repos'));
  const skeleton = await makeSkeleton(join(dir, 'skeleton'));
  const root = join(dir, 'staging');
  const file = await benchStagingRoot({
    ...opts,
    root,
    vcs: 'git',
    url: repo.url,
    skeleton,
    defaultRef: 'main',
  });
  return { file, root, repo };
}
