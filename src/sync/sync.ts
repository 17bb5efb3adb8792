import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Config, CustomerConfig } from '../core/config.js';
import { parseDsn, withDatabase, type Dsn } from '../core/dsn.js';
import { briefly, KarlstageError, UsageError } from '../core/errors.js';
import { layout } from '../core/layout.js';
import { acquireLock } from '../core/lock.js';
import type { Job, Step, StepContext } from '../core/plan.js';
import { commitFiles, mirrorFiles, putBackFiles, stageFiles, swapFiles } from './files.js';
import { run } from '../core/runner.js';
import type { BranchState, State } from '../core/state.js';
import { stagingDatabaseName } from '../instances/databases.js';
import { readInstances } from '../instances/instances-file.js';
import { branchLock } from '../branches/update.js';
import { deploymentStep, stepEnv } from '../branches/steps.js';
import {
  databaseNames,
  dropDatabase,
  endSessions,
  productionEnv,
  psql,
  psqlFile,
  quoteIdent,
  sameDatabase,
  stagingEnv,
} from './pg.js';
import { datesToKeep, parseKeep } from './retention.js';
import { goldenName, suffixed, syncTargets } from './names.js';

/**
 * The nightly sync, per customer so the cost does not grow with the branches:
 * dump production once (read-only session) into dumps/, restore it into a new
 * golden database, sanitize it, swap it in by rename; then per branch site,
 * clone the golden copy (CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY) under
 * a temporary name and swap it in by rename, and run the migrate step. Until a
 * swap, every site keeps serving yesterday's data; a failure leaves it as it was.
 */
export interface BranchSyncResult {
  branch: string;
  customer: string;
  ok: boolean;
  error?: string;
  /** When this branch site had its data (or failed). */
  at: string;
  /** From the start of the customer's sync (its dump and restore included) to `at`. */
  durationMs: number;
  /** How long the branch's database was unavailable during its swap. */
  swapMs?: number;
}

export interface CustomerSync {
  /** The branch sites serving the customer: the ones this sync writes. */
  branches: string[];
  startedAt?: number;
  dump?: string;
  asOf?: string;
}

export interface SyncOutcome {
  customers: Record<string, CustomerSync>;
  branches: BranchSyncResult[];
  held: string[];
}

const stamp = (d: Date) =>
  d
    .toISOString()
    .replace(/[-:]/g, '')
    .replace(/\.\d+Z$/, 'Z'); // 20261123T020000Z
const fromStamp = (s: string) =>
  new Date(s.replace(/^(\d{4})(\d\d)(\d\d)T(\d\d)(\d\d)(\d\d)Z$/, '$1-$2-$3T$4:$5:$6Z'));

async function exists(admin: Dsn, db: string, log: string): Promise<boolean> {
  return (await databaseNames(admin, log)).has(db);
}

/**
 * The swap: in one transaction (its sessions ended first), the live database
 * becomes `outgoing` (when there is one) and `incoming` becomes the live one,
 * so the site never lacks its database.
 */
async function swapIn(
  admin: Dsn,
  live: string,
  { incoming, outgoing, liveExists }: { incoming: string; outgoing: string; liveExists: boolean },
  step: string,
  log: string,
): Promise<void> {
  const moveOut = `ALTER DATABASE ${quoteIdent(live)} RENAME TO ${quoteIdent(outgoing)};`;
  await psql(
    admin,
    `${endSessions([live, incoming])} ${liveExists ? moveOut : ''} ALTER DATABASE ${quoteIdent(incoming)} RENAME TO ${quoteIdent(live)};`,
    { step, log },
  );
}

/**
 * Put yesterday's copy (LIVE_old) back under its live name. One transaction
 * renames tonight's copy (if any) out of the way and the old one in, so the
 * site never lacks its database; tonight's is then dropped.
 */
async function putBack(admin: Dsn, live: string, log: string): Promise<void> {
  const old = suffixed(live, '_old');
  const fresh = suffixed(live, '_new');
  await dropDatabase(admin, fresh, log);
  const hasLive = await exists(admin, live, log);
  await swapIn(
    admin,
    live,
    { incoming: old, outgoing: fresh, liveExists: hasLive },
    `put back yesterday's ${live}`,
    log,
  );
  await dropDatabase(admin, fresh, log);
}

/**
 * Repair what a killed run left. The rule: a sync of a database commits by
 * dropping its _old twin, so an _old database found here means that sync did
 * not finish (killed mid-swap or mid-migrate): yesterday's copy is put back,
 * with its files. A _new database or file folder is unfinished work: removed.
 */
async function cleanUp(
  cfg: Config,
  admin: Dsn,
  customer: string,
  branches: string[],
  dumpDir: string,
  log: string,
): Promise<string[]> {
  const said: string[] = [];
  const names = await databaseNames(admin, log);
  const golden = goldenName(customer);
  for (const live of [golden, ...branches.map((b) => stagingDatabaseName(b, customer))]) {
    const old = suffixed(live, '_old');
    const fresh = suffixed(live, '_new');
    if (names.has(old)) {
      await putBack(admin, live, log);
      said.push(`${old} → ${live}`);
    } else if (names.has(fresh)) {
      await dropDatabase(admin, fresh, log);
      said.push(fresh);
    }
  }
  for (const b of branches) {
    const uncommitted = names.has(suffixed(stagingDatabaseName(b, customer), '_old'));
    said.push(
      ...(uncommitted ? await putBackFiles(cfg, b, customer) : await commitFiles(cfg, b, customer)),
    );
  }
  for (const f of await readdir(dumpDir).catch(() => [] as string[]))
    if (f.endsWith('.partial')) {
      await rm(join(dumpDir, f), { recursive: true, force: true });
      said.push(f);
    }
  return said;
}

export interface SyncRequest {
  branches: BranchState[];
  customers: CustomerConfig[];
  held: string[];
  command: string;
}

/** Which branch sites serve which customer (their instances.ini). */
async function servedBy(cfg: Config, branches: BranchState[], customer: string): Promise<string[]> {
  const out: string[] = [];
  for (const b of branches) {
    const served = (await readInstances(layout.instancesIni(cfg.root, b.name)).catch(() => [])).map(
      (i) => i.name,
    );
    if (served.includes(customer)) out.push(b.name);
  }
  return out;
}

/** Before anything runs: no database the sync may write is the production one (after resolving defaults). */
export async function guardProduction(cfg: Config, req: SyncRequest): Promise<void> {
  const staging = parseDsn(cfg.staging.database);
  for (const c of req.customers) {
    if (!c.production) continue; // syncing from a backup file: no live production to guard
    const production = parseDsn(c.production);
    const branches = await servedBy(cfg, req.branches, c.name);
    for (const db of [...syncTargets(c.name, branches), 'postgres'])
      if (sameDatabase(withDatabase(staging, db), production))
        throw new UsageError(
          `refusing to sync ${c.name}: the staging database "${db}" would be its production database (${c.name}'s [customer:${c.name}] production): fix [staging] database or the production setting`,
        );
  }
}

export async function syncJobs(
  cfg: Config,
  state: State,
  req: SyncRequest,
  outcome: SyncOutcome,
): Promise<Job[]> {
  await guardProduction(cfg, req);
  const staging = parseDsn(cfg.staging.database);
  const admin = withDatabase(staging, 'postgres');
  const jobsN = String(cfg.sync.jobs);
  const jobs: Job[] = [];
  for (const c of req.customers) {
    const production = c.production ? parseDsn(c.production) : {};
    const branches = await servedBy(cfg, req.branches, c.name);
    const dumpDir = join(cfg.sync.dumps, c.name);
    const golden = goldenName(c.name);
    const goldenNew = suffixed(golden, '_new');
    const goldenOld = suffixed(golden, '_old');
    let dump = '';
    let dumpPath = '';
    let taken = new Date();
    const record: CustomerSync = (outcome.customers[c.name] = { branches });
    const steps: Step[] = [
      {
        title: 'clean up what an interrupted run left',
        preview: [
          `put back any *_old database (a sync that did not finish) with its files; drop leftover *_new databases and files; remove ${dumpDir}/*.partial`,
        ],
        run: async (ctx) => {
          record.startedAt = Date.now();
          await mkdir(dumpDir, { recursive: true });
          const left = await cleanUp(cfg, admin, c.name, branches, dumpDir, ctx.log);
          if (left.length) ctx.say(`cleaned up: ${left.join(', ')}`);
        },
      },
      c.productionDump
        ? {
            title: 'take the newest backup',
            preview: [`the newest file matching ${c.productionDump}`],
            run: async (ctx) => {
              const newest = await newestMatch(c.productionDump!);
              if (!newest)
                throw new KarlstageError(`${c.name}: no backup matches ${c.productionDump}`);
              dumpPath = newest.path;
              dump = basename(newest.path);
              taken = newest.mtime;
              ctx.say(`restoring ${dump} of ${taken.toISOString()}`);
            },
          }
        : {
            title: 'dump production (read-only)',
            preview: [
              `$ pg_dump --format=directory --compress=1 --jobs=${jobsN} --no-owner --no-privileges --file=${dumpDir}/${c.name}-STAMP.dump.partial   (PGOPTIONS=-c default_transaction_read_only=on)`,
              `rename it to ${c.name}-STAMP.dump when complete`,
            ],
            run: async (ctx) => {
              taken = new Date();
              dump = `${c.name}-${stamp(taken)}.dump`;
              const partial = join(dumpDir, `${dump}.partial`);
              ctx.onUndo(() => rm(partial, { recursive: true, force: true }));
              await run(
                'pg_dump',
                [
                  '--format=directory',
                  // Measured by bench/sync.mjs on 324 MB of incompressible data: default level
                  // 34.6 s / 342 MB, -Z1 13.3 s / 351 MB, -Z0 3.8 s / 600 MB. Level 1: fast, and
                  // nearly as small (the dumps are kept as snapshots, so size counts too).
                  '--compress=1',
                  `--jobs=${jobsN}`,
                  '--no-owner',
                  '--no-privileges',
                  `--file=${partial}`,
                ],
                {
                  step: `dump production`,
                  log: ctx.log,
                  timeoutMs: cfg.deployment.timeout * 1000,
                  env: productionEnv(production),
                },
              );
              dumpPath = join(dumpDir, dump);
              await rename(partial, dumpPath);
            },
          },
      {
        title: 'restore into a new golden copy',
        preview: [
          `CREATE DATABASE ${goldenNew}`,
          `$ pg_restore --jobs=${jobsN} --no-owner --no-privileges --dbname=${goldenNew} ${dumpDir}/DUMP`,
        ],
        run: async (ctx) => {
          ctx.onUndo(() => dropDatabase(admin, goldenNew, ctx.log).catch(() => undefined));
          await psql(admin, `CREATE DATABASE ${quoteIdent(goldenNew)}`, {
            step: 'create the new golden copy',
            log: ctx.log,
          });
          await run(
            'pg_restore',
            [
              `--jobs=${jobsN}`,
              '--no-owner',
              '--no-privileges',
              '--exit-on-error',
              `--dbname=${goldenNew}`,
              dumpPath,
            ],
            {
              step: 'restore',
              log: ctx.log,
              timeoutMs: cfg.deployment.timeout * 1000,
              env: stagingEnv(withDatabase(staging, goldenNew)),
            },
          );
          if (c.sanitize) {
            ctx.say(`sanitize with ${c.sanitize}`);
            await psqlFile(withDatabase(staging, goldenNew), c.sanitize, {
              step: 'sanitize',
              log: ctx.log,
              timeoutMs: cfg.deployment.timeout * 1000,
            });
          }
        },
      },
      {
        title: 'swap in the new golden copy',
        preview: [
          `ALTER DATABASE ${golden} RENAME TO ${goldenOld}; ALTER DATABASE ${goldenNew} RENAME TO ${golden}; DROP DATABASE ${goldenOld}`,
        ],
        run: async (ctx) => {
          const had = await exists(admin, golden, ctx.log);
          await swapIn(
            admin,
            golden,
            { incoming: goldenNew, outgoing: goldenOld, liveExists: had },
            'swap the golden copy',
            ctx.log,
          );
          if (had) await dropDatabase(admin, goldenOld, ctx.log);
          Object.assign(record, { dump, asOf: taken.toISOString() });
        },
      },
      ...(c.productionFiles
        ? [
            {
              title: 'copy the files (blobs)',
              preview: [
                `$ rsync --archive --delete -- ${c.productionFiles}/ ${cfg.sync.files}/${c.name}/`,
              ],
              run: async (ctx: StepContext) =>
                mirrorFiles(cfg, c.name, c.productionFiles!, ctx.log),
            },
          ]
        : []),
      {
        title: `copy it to ${branches.length ? branches.join(', ') : 'no branch site'}`,
        preview: branches.map(
          (b) =>
            `${b}: CREATE DATABASE ${suffixed(stagingDatabaseName(b, c.name), '_new')} TEMPLATE ${golden} STRATEGY FILE_COPY; swap by rename; migrate (if it fails, yesterday's copy goes back); drop yesterday's copy`,
        ),
        run: async (ctx) => {
          const failed: string[] = [];
          for (const b of branches) {
            const r = await syncBranch(
              cfg,
              state,
              admin,
              golden,
              b,
              c.name,
              ctx.log,
              Boolean(c.productionFiles),
              record.startedAt ?? Date.now(),
            );
            outcome.branches.push(r);
            ctx.say(`${b}: ${r.ok ? `done (unavailable ${r.swapMs} ms)` : `failed: ${r.error}`}`);
            if (!r.ok) failed.push(`${b}: ${r.error}`);
          }
          if (failed.length)
            throw new KarlstageError(
              `${c.name}: ${failed.length} of ${branches.length} branch sites failed`,
              1,
              failed,
            );
        },
      },
      {
        title: 'prune old dumps',
        preview: [`keep ${cfg.sync.keep} in ${dumpDir}`],
        run: async (ctx) => {
          const names = (await readdir(dumpDir)).filter((f) => /^.+-\d{8}T\d{6}Z\.dump$/.test(f));
          const dated = names.map((f) => ({
            f,
            d: fromStamp(/(\d{8}T\d{6}Z)\.dump$/.exec(f)![1]!),
          }));
          const keep = datesToKeep(
            dated.map((x) => x.d),
            parseKeep(cfg.sync.keep),
          );
          const prune = dated.filter((x) => !keep.has(x.d));
          for (const x of prune) await rm(join(dumpDir, x.f), { recursive: true, force: true });
          if (prune.length) ctx.say(`pruned ${prune.length} old dump(s)`);
        },
      },
    ];
    jobs.push({ name: c.name, steps });
  }
  return jobs;
}

async function syncBranch(
  cfg: Config,
  state: State,
  admin: Dsn,
  golden: string,
  branch: string,
  customer: string,
  log: string,
  withFiles: boolean,
  started: number,
): Promise<BranchSyncResult> {
  const db = stagingDatabaseName(branch, customer);
  const fresh = suffixed(db, '_new');
  const old = suffixed(db, '_old');
  let release: (() => Promise<void>) | undefined;
  try {
    // An update of this branch site runs its own migrate: one at a time.
    release = await acquireLock(cfg.root, branchLock(branch), {
      command: `sync ${customer} into ${branch}`,
      waitSeconds: 600,
    });
    // Everything is prepared under temporary names first: nothing the site serves changes yet.
    let had = false;
    let swapStart = 0;
    try {
      await psql(admin, endSessions([golden]), { step: 'end sessions on the golden copy', log });
      await psql(
        admin,
        `CREATE DATABASE ${quoteIdent(fresh)} TEMPLATE ${quoteIdent(golden)} STRATEGY FILE_COPY`,
        { step: 'copy the golden copy', log },
      );
      if (withFiles) await stageFiles(cfg, branch, customer, log);
      had = await exists(admin, db, log);
      swapStart = Date.now();
      await swapIn(admin, db, { incoming: fresh, outgoing: old, liveExists: had }, 'swap', log);
    } catch (e) {
      await dropDatabase(admin, fresh, log).catch(() => undefined);
      if (withFiles) await putBackFiles(cfg, branch, customer).catch(() => undefined);
      throw e;
    }
    const swapMs = Date.now() - swapStart;
    const site = state.branches[branch]!;
    const migrate = deploymentStep(cfg, 'migrate', branch, () =>
      stepEnv(cfg, site, site.built?.revision),
    );
    try {
      if (withFiles) await swapFiles(cfg, branch, customer);
      if (migrate) await migrate.run({ log, onUndo: () => undefined, say: () => undefined });
    } catch (e) {
      if (!had) throw e; // nothing to go back to: the new copy stays
      await putBack(admin, db, log);
      if (withFiles) await putBackFiles(cfg, branch, customer);
      throw new KarlstageError(`${briefly(e)}; ${branch} keeps yesterday's data`);
    }
    // The commit: once yesterday's copy is dropped, a killed run is not undone any more.
    if (had) await dropDatabase(admin, old, log);
    if (withFiles) await commitFiles(cfg, branch, customer);
    return { branch, customer, ok: true, ...finished(started), swapMs };
  } catch (e) {
    // The summary names the branch site already (its deployment steps say it too).
    const error = briefly(e).replace(new RegExp(`^${branch}: `), '');
    return { branch, customer, ok: false, error, ...finished(started) };
  } finally {
    await release?.();
  }
}

const finished = (started: number) => ({
  at: new Date().toISOString(),
  durationMs: Date.now() - started,
});

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
