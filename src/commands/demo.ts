import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { UsageError } from '../core/errors.js';
import { makeGitSample, makeSkeleton, makeSvnSample } from '../demo/sample-repos.js';
import { freeBasePort } from '../demo/ports.js';
import { create } from './create.js';
import { outputFor, type GlobalOptions } from './context.js';
import { init } from './init.js';
import { status } from './status.js';

export interface DemoOptions extends GlobalOptions {
  dir?: string;
  vcs?: 'git' | 'svn';
  basePort?: number;
}

export interface DemoResult {
  dir: string;
  root: string;
  config: string;
  sites: { branch: string; customer: string; url: string; answer: string }[];
}

/**
 * A throwaway staging server, end to end: a sample application repository, a
 * sample deployment skeleton, karlstage.ini, two branch sites of two customers
 * each, built and started; then each site is asked what it runs.
 */
export async function demo(opts: DemoOptions): Promise<DemoResult> {
  const out = await outputFor(opts);
  const vcs = opts.vcs ?? 'git';
  const dir = opts.dir
    ? resolve(opts.cwd ?? process.cwd(), opts.dir)
    : await mkdtemp(join(tmpdir(), 'karlstage-demo-'));
  if (existsSync(dir) && (await readdir(dir)).length > 0)
    throw new UsageError(`${dir} is not empty: give an empty or new folder for the demo`);
  if (opts.dryRun)
    throw new UsageError(
      'demo builds a throwaway server; --dry-run has nothing to show (try it on create)',
    );
  const quiet = { quiet: true, color: opts.color };

  out.line(out.c.bold(`karlstage demo in ${dir}`));
  out.progress(`making a sample ${vcs} repository and a deployment skeleton`);
  const repo =
    vcs === 'git'
      ? await makeGitSample(join(dir, 'repos'))
      : await makeSvnSample(join(dir, 'repos'));
  const skeleton = await makeSkeleton(join(dir, 'skeleton'));
  const root = join(dir, 'staging');
  const basePort = opts.basePort ?? (await freeBasePort(2));
  const { file } = await init({
    ...quiet,
    dir: root,
    host: 'karltest.localhost',
    vcs,
    url: repo.url,
    skeleton,
    defaultRef: repo.defaultRef,
    database: 'host=127.0.0.1 user=karl dbname=karl',
    basePort,
  });
  // The demo has no certificate or nginx of its own: routes stay manual ("karlstage routes").
  // ...nor a PostgreSQL: the sample app keeps no data, so no staging databases either.
  await writeFile(
    file,
    (await readFile(file, 'utf8'))
      .replace('routes = auto', 'routes = manual')
      .replace('manage_databases = yes', 'manage_databases = no'),
  );
  await appendFile(file, '\n[customer:another]\nmail_branch = branch2\n');
  const g = { ...quiet, config: file };

  out.progress(`creating branch1 at ${repo.defaultRef}`);
  await create({ ...g, branch: 'branch1' });
  out.progress(`creating branch2 at ${repo.featureRef}`);
  await create({ ...g, branch: 'branch2', ref: repo.featureRef });

  const st = await status(g);
  const sites: DemoResult['sites'] = [];
  for (const b of st.branches)
    for (const customer of b.customers) {
      const url = `http://127.0.0.1:${b.port}/${customer}/`;
      const answer = (await (await fetch(url)).text()).trim();
      sites.push({ branch: b.name, customer, url, answer });
    }
  const result: DemoResult = { dir, root, config: file, sites };
  out.result(result);

  out.line();
  out.line(out.c.bold('Made:'));
  out.line(`  ${join(dir, 'repos')}      the sample application repository (${vcs}: ${repo.url})`);
  out.line(`  ${skeleton}   the sample deployment skeleton`);
  out.line(`  ${root}    the staging root: karlstage.ini, branch1/, branch2/, .karlstage/`);
  out.line();
  out.line(out.c.bold('Each site answers:'));
  for (const s of sites) out.line(`  ${s.url}  ${s.answer}`);
  out.line();
  // Say how to run karlstage the way this run was started (a clone has no global install).
  const launcher = process.argv[1]?.endsWith('karlstage.js')
    ? `node ${process.argv[1]}`
    : 'karlstage';
  out.line(out.c.bold('Look around:'));
  out.line(`  cd ${root}`);
  out.line(`  ${launcher} status`);
  out.line(`  curl ${sites[0]?.url ?? ''}`);
  out.line(`  ${launcher} switch branch2 ${repo.defaultRef}      # then curl branch2 again`);
  out.line(`  ${launcher} update --all --dry-run`);
  out.line(
    `  ${launcher} destroy branch1 --yes; ${launcher} destroy branch2 --yes   # stops the apps`,
  );
  return result;
}
