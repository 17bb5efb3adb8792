import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { messageOf, UsageError } from '../core/errors.js';
import { run } from '../core/runner.js';
import { stagingDatabaseName } from '../db/names.js';
import { startCluster, type PgCluster } from './pg-cluster.js';
import { sync } from '../commands/sync.js';
import { makeGitSample, makeSkeleton, makeSvnSample } from './sample-repos.js';
import { freeBasePort } from './ports.js';
import { create } from '../commands/create.js';
import { outputFor, type GlobalOptions } from '../context/context.js';
import { init } from '../commands/init.js';
import { status } from '../commands/status.js';

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
  /** What the nightly sync put into each branch site's database. */
  data: { branch: string; customer: string; docs: number; sanitized: number }[];
  /** The demo's PostgreSQL, left running like the apps: its folder and the command that stops it. */
  postgres?: { port: number; dir: string; stop: string };
}

/**
 * Two customers' "production" databases with people's e-mail addresses, a
 * sanitize script that replaces them, and a folder of production blobs.
 */
async function sampleProduction(pg: PgCluster, dir: string) {
  const sql = (db: string, query: string) =>
    run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-c', query], {
      step: 'make the sample production data',
      env: { ...pg.env, PGDATABASE: db },
    });
  for (const [db, rows] of [
    ['production_osf', 500],
    ['production_another', 120],
  ] as const) {
    await sql('postgres', `CREATE DATABASE ${db}`);
    await sql(
      db,
      `CREATE TABLE docs (id serial PRIMARY KEY, title text, owner_email text); INSERT INTO docs (title, owner_email) SELECT 'document ' || i, 'person' || i || '@customer.example.org' FROM generate_series(1, ${rows}) i`,
    );
  }
  const sanitize = join(dir, 'sanitize.sql');
  await writeFile(sanitize, "UPDATE docs SET owner_email = 'id' || id || '@staging.invalid';\n");
  const files = join(dir, 'production-blobs', 'osf');
  await mkdir(join(files, '0a'), { recursive: true });
  await writeFile(join(files, '0a', '0001.blob'), 'a blob written once, never changed\n');
  return {
    osf: pg.dsn('production_osf'),
    another: pg.dsn('production_another'),
    sanitize,
    files,
  };
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
  // PostgreSQL for the nightly sync: production and staging databases in one throwaway cluster.
  out.progress('starting a throwaway PostgreSQL for the production and staging databases');
  const pg = await startCluster(randomBytes(12).toString('hex')).catch((e: unknown) => {
    out.line(
      out.c.yellow(
        `no nightly sync in this demo: ${messageOf(e)} ("scripts/setup.sh demo" installs it)`,
      ),
    );
    return undefined;
  });
  const { file } = await init({
    ...quiet,
    dir: root,
    host: 'karltest.localhost',
    vcs,
    url: repo.url,
    skeleton,
    defaultRef: repo.defaultRef,
    database: pg ? pg.dsn() : 'host=127.0.0.1 user=karl dbname=karl',
    basePort,
  });
  // The demo has no certificate or nginx of its own: routes stay manual ("karlstage routes").
  let ini = (await readFile(file, 'utf8')).replace('routes = auto', 'routes = manual');
  if (pg) {
    const production = await sampleProduction(pg, dir);
    ini = ini
      .replace(
        /^production = .*$/m,
        // One throwaway cluster plays production and staging: the operator's written permission.
        `production = ${production.osf}\nstaging_on_production_server = yes`,
      )
      .replace(/^# production_files = .*$/m, `production_files = ${production.files}`)
      .replace(/^# sanitize = .*$/m, `sanitize = ${production.sanitize}`)
      .replace(/^dumps = .*$/m, 'dumps = .karlstage/dumps')
      .replace(/^files = .*$/m, 'files = .karlstage/files');
    ini += `\n[customer:another]\nmail_branch = branch2\nproduction = ${production.another}\nstaging_on_production_server = yes\nsanitize = ${production.sanitize}\n`;
  } else {
    ini = ini.replace('manage_databases = yes', 'manage_databases = no');
    ini += '\n[customer:another]\nmail_branch = branch2\n';
  }
  await writeFile(file, ini);
  const g = { ...quiet, config: file };

  out.progress(`creating branch1 at ${repo.defaultRef}`);
  await create({ ...g, branch: 'branch1' });
  out.progress(`creating branch2 at ${repo.featureRef}`);
  await create({ ...g, branch: 'branch2', ref: repo.featureRef });

  if (pg) {
    out.progress('the nightly sync: production → golden copy (sanitized) → every branch site');
    await sync({ ...g, branches: [], nightly: true });
  }

  const st = await status(g);
  const sites: DemoResult['sites'] = [];
  for (const b of st.branches)
    for (const customer of b.customers) {
      const url = `http://127.0.0.1:${b.port}/${customer}/`;
      const answer = (await (await fetch(url)).text()).trim();
      sites.push({ branch: b.name, customer, url, answer });
    }
  const data: DemoResult['data'] = [];
  if (pg)
    for (const b of st.branches)
      for (const customer of b.customers) {
        const [docs, sanitized] = (
          await run(
            'psql',
            [
              '-XAtF,',
              '-c',
              "SELECT count(*), count(*) FILTER (WHERE owner_email LIKE '%@staging.invalid') FROM docs",
            ],
            {
              step: 'count',
              env: { ...pg.env, PGDATABASE: stagingDatabaseName(b.name, customer) },
            },
          )
        ).stdout
          .trim()
          .split(',')
          .map(Number);
        data.push({ branch: b.name, customer, docs: docs ?? 0, sanitized: sanitized ?? 0 });
      }
  const result: DemoResult = {
    dir,
    root,
    config: file,
    sites,
    data,
    ...(pg ? { postgres: { port: pg.port, dir: pg.dir, stop: pg.stopCommand } } : {}),
  };

  out.line();
  out.line(out.c.bold('Made:'));
  out.line(`  ${join(dir, 'repos')}      the sample application repository (${vcs}: ${repo.url})`);
  out.line(`  ${skeleton}   the sample deployment skeleton`);
  out.line(`  ${root}    the staging root: karlstage.ini, branch1/, branch2/, .karlstage/`);
  out.line();
  out.line(out.c.bold('Each site answers:'));
  for (const s of sites) out.line(`  ${s.url}  ${s.answer}`);
  out.line();
  if (pg) {
    out.line(out.c.bold('The nightly sync copied production into every branch site:'));
    for (const d of data)
      out.line(
        `  ${d.branch}/${d.customer}: ${d.docs} documents from production, ${d.sanitized === d.docs ? 'every' : `${d.sanitized} of ${d.docs}`} owner e-mail sanitized`,
      );
    out.line();
  }
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
  if (pg) {
    out.line(
      `  ${launcher} sync --nightly      # again: one dump per customer, each site's swap time`,
    );
    out.line(`  ${launcher} hold branch2 --reason "testing"; ${launcher} status`);
  }
  out.line(
    `  ${launcher} destroy branch1 --yes; ${launcher} destroy branch2 --yes   # stops the apps`,
  );
  if (pg) out.line(`  ${pg.stopCommand} && rm -rf ${pg.dir}   # then the demo's PostgreSQL`);
  return result;
}
