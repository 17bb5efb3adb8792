import { mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Config, CustomerConfig } from '../config/config.js';
import { parseDsn } from '../core/dsn.js';
import { briefly, KarlstageError } from '../core/errors.js';
import { layout } from '../core/layout.js';
import { acquireLock } from '../core/lock.js';
import type { Job, Step, StepContext } from '../core/plan.js';
import { commitFiles, mirrorFiles, putBackFiles, stageFiles, swapFiles } from './files.js';
import { run } from '../core/runner.js';
import type { BranchState, State } from '../core/state.js';
import {
  goldenName,
  legacyGoldenName,
  stagingDatabaseName,
  syncTargets,
  twin,
} from '../db/names.js';
import type { ProductionGuard } from '../db/guard.js';
import { StagingServer } from '../db/staging.js';
import { readInstances } from '../instances/instances-file.js';
import { branchLock } from '../branches/update.js';
import { deploymentStep, stepEnv } from '../branches/steps.js';
import { productionEnv } from '../db/pg.js';
import { datesToKeep, parseKeep } from './retention.js';

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

/**
 * Repair what a killed run left. The rule: a sync of a database commits by
 * dropping its old twin (NAME__old), so an old twin found here means that sync did
 * not finish (killed mid-swap or mid-migrate): yesterday's copy is put back,
 * with its files. A new twin (NAME__new) or file folder is unfinished work: removed.
 */
async function cleanUp(
  cfg: Config,
  db: StagingServer,
  state: State,
  customer: string,
  branches: string[],
  dumpDir: string,
): Promise<string[]> {
  const said: string[] = [];
  let names = await db.names();
  const golden = goldenName(customer);
  // Golden copies made before the "__" naming: renamed once (a branch site named "golden" keeps its own).
  const legacy = legacyGoldenName(customer);
  if (names.has(legacy) && !names.has(golden) && !state.branches.golden) {
    await db.rename(legacy, golden, `rename ${legacy} to ${golden}`);
    said.push(`${legacy} → ${golden}`);
    names = await db.names();
  }
  for (const live of [golden, ...branches.map((b) => stagingDatabaseName(b, customer))]) {
    const old = twin(live, 'old');
    const fresh = twin(live, 'new');
    if (names.has(old)) {
      await db.putBack(live);
      said.push(`${old} → ${live}`);
    } else if (names.has(fresh)) {
      await db.drop(fresh);
      said.push(fresh);
    }
  }
  for (const b of branches) {
    const uncommitted = names.has(twin(stagingDatabaseName(b, customer), 'old'));
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

/** Every database the sync may write: the production guard checks them all before anything runs. */
export async function syncTargetsOf(cfg: Config, req: SyncRequest): Promise<string[]> {
  const targets: string[] = [];
  for (const c of req.customers)
    targets.push(
      ...syncTargets(c.name, await servedBy(cfg, req.branches, c.name)),
      legacyGoldenName(c.name),
    );
  return targets;
}

export async function syncJobs(
  cfg: Config,
  state: State,
  req: SyncRequest,
  guard: ProductionGuard,
  outcome: SyncOutcome,
): Promise<Job[]> {
  const jobsN = String(cfg.sync.jobs);
  const jobs: Job[] = [];
  for (const c of req.customers) {
    const production = c.production ? parseDsn(c.production) : {};
    const branches = await servedBy(cfg, req.branches, c.name);
    const dumpDir = join(cfg.sync.dumps, c.name);
    const golden = goldenName(c.name);
    const goldenNew = twin(golden, 'new');
    const goldenOld = twin(golden, 'old');
    let dump = '';
    let dumpPath = '';
    let taken = new Date();
    const record: CustomerSync = (outcome.customers[c.name] = { branches });
    const stagingDb = (log: string) => new StagingServer(cfg, guard, log);
    const cleanUpStep: Step = {
      title: 'clean up what an interrupted run left',
      preview: [
        `put back any *__old database (a sync that did not finish) with its files; drop leftover *__new databases and files; remove ${dumpDir}/*.partial`,
      ],
      run: async (ctx) => {
        record.startedAt = Date.now();
        await mkdir(dumpDir, { recursive: true });
        const left = await cleanUp(cfg, stagingDb(ctx.log), state, c.name, branches, dumpDir);
        if (left.length) ctx.say(`cleaned up: ${left.join(', ')}`);
      },
    };
    const unknown = guard.unknown(c.name);
    if (unknown) {
      // Nothing of this customer's is written on a guess; the other customers go on. Repairs
      // (putting back yesterday's copy) still run when its identity is known from the last time.
      jobs.push({
        name: c.name,
        steps: [
          ...(guard.canRepair(c.name) ? [cleanUpStep] : []),
          {
            title: "make sure the staging server is not this customer's production",
            preview: [unknown],
            run: async () => {
              throw new KarlstageError(unknown);
            },
          },
        ],
      });
      continue;
    }
    const steps: Step[] = [
      cleanUpStep,
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
          const db = stagingDb(ctx.log);
          ctx.onUndo(() => db.drop(goldenNew).catch(() => undefined));
          await db.create(goldenNew, undefined, 'create the new golden copy');
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
              env: db.envFor(goldenNew),
            },
          );
          if (c.sanitize) {
            ctx.say(`sanitize with ${c.sanitize}`);
            await db.runFile(goldenNew, c.sanitize, 'sanitize', cfg.deployment.timeout * 1000);
          }
        },
      },
      {
        title: 'swap in the new golden copy',
        preview: [
          `ALTER DATABASE ${golden} RENAME TO ${goldenOld}; ALTER DATABASE ${goldenNew} RENAME TO ${golden}; DROP DATABASE ${goldenOld}`,
        ],
        run: async (ctx) => {
          const db = stagingDb(ctx.log);
          const had = await db.exists(golden);
          await db.swapIn(
            golden,
            { incoming: goldenNew, outgoing: goldenOld, liveExists: had },
            'swap the golden copy',
          );
          if (had) await db.drop(goldenOld);
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
            `${b}: CREATE DATABASE ${twin(stagingDatabaseName(b, c.name), 'new')} TEMPLATE ${golden} STRATEGY FILE_COPY; swap by rename; migrate (if it fails, yesterday's copy goes back); drop yesterday's copy`,
        ),
        run: async (ctx) => {
          const failed: string[] = [];
          for (const b of branches) {
            const r = await syncBranch(cfg, state, {
              db: stagingDb(ctx.log),
              golden,
              branch: b,
              customer: c.name,
              log: ctx.log,
              withFiles: Boolean(c.productionFiles),
              started: record.startedAt ?? Date.now(),
            });
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

interface BranchSyncRequest {
  db: StagingServer;
  golden: string;
  branch: string;
  customer: string;
  log: string;
  /** The customer has production files: stage, swap and commit them with the database. */
  withFiles: boolean;
  /** When the customer's sync started (its dump), for the duration shown. */
  started: number;
}

/**
 * One branch site × customer: clone the golden copy under a temporary name,
 * swap it in, migrate; yesterday's copy is dropped only after the migrate
 * worked (the commit), and put back if it failed.
 */
async function syncBranch(
  cfg: Config,
  state: State,
  { db, golden, branch, customer, log, withFiles, started }: BranchSyncRequest,
): Promise<BranchSyncResult> {
  const live = stagingDatabaseName(branch, customer);
  const fresh = twin(live, 'new');
  const old = twin(live, 'old');
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
      await db.create(fresh, golden, 'copy the golden copy');
      if (withFiles) await stageFiles(cfg, branch, customer, log);
      had = await db.exists(live);
      swapStart = Date.now();
      await db.swapIn(live, { incoming: fresh, outgoing: old, liveExists: had }, 'swap');
    } catch (e) {
      await db.drop(fresh).catch(() => undefined);
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
      if (migrate)
        await migrate.run({
          log,
          onUndo: () => undefined,
          say: () => undefined,
          warn: () => undefined,
        });
    } catch (e) {
      if (!had) throw e; // nothing to go back to: the new copy stays
      await db.putBack(live);
      if (withFiles) await putBackFiles(cfg, branch, customer);
      throw new KarlstageError(`${briefly(e)}; ${branch} keeps yesterday's data`);
    }
    // The commit: once yesterday's copy is dropped, a killed run is not undone any more.
    if (had) await db.drop(old);
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
