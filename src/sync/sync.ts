import { existsSync } from 'node:fs';
import { mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Config, CustomerConfig } from '../config/config.js';
import { later, type Command } from '../core/command.js';
import { parseDsn } from '../core/dsn.js';
import { briefly, KarlstageError, StepError } from '../core/errors.js';
import type { Job, Step, StepContext } from '../core/plan.js';
import type { ProductionGuard } from '../db/guard.js';
import { scanCommand, scanProblem, scanResult } from '../db/scan.js';
import { dumpsOf, freeBytes, mb } from './disk.js';
import {
  goldenName,
  legacyGoldenName,
  stagingDatabaseName,
  syncTargets,
  twin,
} from '../db/names.js';
import { productionEnv } from '../db/pg.js';
import { StagingServer } from '../db/staging.js';
import { siteCustomers, siteProblem } from '../model/sites.js';
import { layout } from '../model/layout.js';
import { acquireLock, branchLock } from '../model/locks.js';
import { readState, type BranchState, type DataRecord, type State } from '../model/state.js';
import { deploymentCommand, stepEnv } from '../model/steps.js';
import { dumpName, newestMatch, pruneDumps } from './backups.js';
import {
  clearStaged,
  commitFiles,
  linkCommand,
  mirrorCommand,
  putBackFiles,
  swapFiles,
} from './files.js';

/**
 * The nightly sync, per customer so the cost does not grow with the branches:
 * dump production once (read-only session) into dumps/, restore it into a new
 * golden database, sanitize it, swap it in by rename; then per branch site,
 * clone the golden copy (CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY) under
 * a temporary name, swap it in by rename, and run the migrate step. Until a
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
  /** The branch's migrate on this night's copy: the verdict "migrates on production data". */
  migrate?: { ok: boolean; durationMs: number; error?: string };
}

/** The verdict state.json keeps for a branch × customer: its migrate on the copy of `dataOf`. */
export function migrateRecord(
  at: string,
  migrate: NonNullable<BranchSyncResult['migrate']>,
  dataOf: string | null,
): NonNullable<DataRecord['migrate']> {
  return {
    at,
    dataOf,
    result: migrate.ok ? 'ok' : 'failed',
    durationMs: migrate.durationMs,
    ...(migrate.error ? { error: migrate.error } : {}),
  };
}

export interface CustomerSync {
  /** The branch sites serving the customer: the ones this sync writes. */
  branches: string[];
  startedAt?: number;
  dump?: string;
  asOf?: string;
  /** How many must_not_contain patterns the new copy was checked for (and found clean). */
  checkedPatterns?: number;
}

export interface SyncOutcome {
  customers: Record<string, CustomerSync>;
  branches: BranchSyncResult[];
  held: string[];
}

export interface SyncRequest {
  branches: BranchState[];
  customers: CustomerConfig[];
  held: string[];
  command: string;
}

/** Which branch sites serve a customer (their instances.ini). */
async function servedBy(cfg: Config, branches: BranchState[], customer: string): Promise<string[]> {
  const out: string[] = [];
  for (const b of branches) {
    const served = (await siteCustomers(cfg.root, b.name).catch(() => [])).map((i) => i.name);
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

const finished = (started: number) => ({
  at: new Date().toISOString(),
  durationMs: Date.now() - started,
});

/**
 * Repair what a killed run left. The rule: a sync of a database commits by
 * dropping its old twin (NAME__old), so an old twin found here means that sync
 * did not finish (killed mid-swap or mid-migrate): yesterday's copy is put
 * back, with its files. A new twin (NAME__new) or file folder is unfinished
 * work: removed. A golden copy of the naming before "__" is renamed once.
 */
function cleanUpStep(
  cfg: Config,
  db: StagingServer,
  state: State,
  customer: string,
  branches: string[],
  dumpDir: string,
  started: () => void,
): Step {
  const golden = goldenName(customer);
  const legacy = legacyGoldenName(customer);
  const lives = [golden, ...branches.map((b) => stagingDatabaseName(b, customer))];
  const look = db.lookUp([legacy, ...lives.flatMap((l) => [l, twin(l, 'new'), twin(l, 'old')])]);
  const adopt = db.rename(
    legacy,
    golden,
    `rename ${legacy} to ${golden}`,
    `when ${legacy} is there`,
  );
  const repairs = lives.map((live) => ({
    live,
    back: db.putBack(live, `when ${twin(live, 'old')} is there`),
    drop: db.drop(twin(live, 'new'), `when only ${twin(live, 'new')} is there`),
  }));
  return {
    title: 'clean up what an interrupted run left',
    commands: [look, adopt, ...repairs.flatMap((r) => [...r.back, r.drop])],
    effects: [
      `put back or remove each branch site's staged files (…${cfg.deployment.blobs}/${customer}.karlstage-old/-new)`,
      `remove ${dumpDir}/*.partial`,
    ],
    run: async (ctx) => {
      started();
      await mkdir(dumpDir, { recursive: true });
      const said: string[] = [];
      const names = new Set((await ctx.exec(look)).stdout.split('\n').filter(Boolean));
      if (names.has(legacy) && !names.has(golden) && !state.branches.golden) {
        await ctx.exec(adopt);
        said.push(`${legacy} → ${golden}`);
      }
      for (const r of repairs) {
        if (names.has(twin(r.live, 'old'))) {
          for (const c of r.back) await ctx.exec(c);
          said.push(`${twin(r.live, 'old')} → ${r.live}`);
        } else if (names.has(twin(r.live, 'new'))) {
          await ctx.exec(r.drop);
          said.push(twin(r.live, 'new'));
        }
      }
      for (const b of branches) {
        const uncommitted = names.has(twin(stagingDatabaseName(b, customer), 'old'));
        said.push(
          ...(uncommitted
            ? await putBackFiles(cfg, b, customer)
            : await commitFiles(cfg, b, customer)),
        );
      }
      for (const f of await readdir(dumpDir).catch(() => [] as string[]))
        if (f.endsWith('.partial')) {
          await rm(join(dumpDir, f), { recursive: true, force: true });
          said.push(f);
        }
      if (said.length) ctx.say(`cleaned up: ${said.join(', ')}`);
    },
  };
}

export async function syncJobs(
  cfg: Config,
  state: State,
  req: SyncRequest,
  guard: ProductionGuard,
  outcome: SyncOutcome,
): Promise<Job[]> {
  const jobsN = String(cfg.sync.jobs);
  const timeoutMs = cfg.deployment.timeout * 1000;
  const db = new StagingServer(cfg, guard);
  const jobs: Job[] = [];
  // A site that cannot say which customers it serves is a failure of that site, never skipped silently.
  for (const b of req.branches) {
    const broken = await siteProblem(cfg.root, b.name);
    if (broken)
      jobs.push({
        name: b.name,
        steps: [
          {
            title: 'read which customers it serves',
            effects: [`read ${layout.instancesIni(cfg.root, b.name)}`],
            run: async () => {
              throw new KarlstageError(
                `${broken.message}; ${b.name}'s data was not synced`,
                1,
                broken.details,
              );
            },
          },
        ],
      });
  }
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
    const cleanUp = cleanUpStep(cfg, db, state, c.name, branches, dumpDir, () => {
      record.startedAt = Date.now();
    });
    const unknown = guard.unknown(c.name);
    if (unknown) {
      // Nothing of this customer's is written on a guess; the other customers go on. Repairs
      // (putting back yesterday's copy) still run when its identity is known from the last time.
      jobs.push({
        name: c.name,
        steps: [
          ...(guard.canRepair(c.name) ? [cleanUp] : []),
          {
            title: "make sure the staging server is not this customer's production",
            effects: [unknown],
            run: async () => {
              throw new KarlstageError(unknown);
            },
          },
        ],
      });
      continue;
    }

    const pgDump: Command = {
      program: 'pg_dump',
      args: [
        '--format=directory',
        // Measured by bench/sync.mjs on 324 MB of incompressible data: default level
        // 34.6 s / 342 MB, -Z1 13.3 s / 351 MB, -Z0 3.8 s / 600 MB. Level 1: fast, and
        // nearly as small (the dumps are kept as snapshots, so size counts too).
        '--compress=1',
        `--jobs=${jobsN}`,
        '--no-owner',
        '--no-privileges',
        later('--file=DUMP.partial', () => `--file=${dumpPath}.partial`),
      ],
      step: 'dump production',
      env: () => productionEnv(production),
      timeoutMs,
    };
    const createGolden = db.create(goldenNew, undefined, 'create the new golden copy');
    const restore: Command = {
      program: 'pg_restore',
      args: [
        `--jobs=${jobsN}`,
        '--no-owner',
        '--no-privileges',
        '--exit-on-error',
        `--dbname=${goldenNew}`,
        later('DUMP', () => dumpPath),
      ],
      step: 'restore',
      env: () => db.envFor(goldenNew),
      timeoutMs,
    };
    const sanitize = c.sanitize
      ? db.runFile(goldenNew, c.sanitize, 'sanitize', timeoutMs)
      : undefined;
    const scan = c.mustNotContain.length
      ? scanCommand(
          () => db.envFor(goldenNew),
          c.mustNotContain,
          'check the sanitized copy',
          timeoutMs,
        )
      : undefined;
    const dropGoldenNew = db.drop(goldenNew, 'when a later step fails');
    // One session: the swap, then yesterday's golden copy dropped.
    const swapGolden = db.together(
      [db.swapIn(golden, goldenNew, goldenOld, 'swap'), db.drop(goldenOld)],
      'swap the golden copy',
    );
    const mirror = c.productionFiles ? mirrorCommand(cfg, c.name, c.productionFiles) : undefined;

    const steps: Step[] = [
      cleanUp,
      c.productionDump
        ? {
            title: 'take the newest backup',
            effects: [`the newest file matching ${c.productionDump}`],
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
            commands: [pgDump],
            effects: [
              `rename ${dumpDir}/DUMP.partial to DUMP (${c.name}-STAMP.dump) when complete`,
            ],
            run: async (ctx) => {
              // Tonight's dump is about as big as the last one: if that cannot fit, stop now.
              const [last] = await dumpsOf(cfg, c.name);
              const free = await freeBytes(dumpDir);
              if (last && free < last.newestBytes)
                throw new KarlstageError(
                  `not enough room for ${c.name}'s dump in ${dumpDir}: about ${mb(last.newestBytes)} needed (the last dump), ${mb(free)} free; make room (fewer dumps kept: [sync] keep) — nothing was touched`,
                );
              taken = new Date();
              dump = dumpName(dumpDir, c.name, taken);
              dumpPath = join(dumpDir, dump);
              ctx.onUndo(() => rm(`${dumpPath}.partial`, { recursive: true, force: true }));
              await ctx.exec(pgDump);
              await rename(`${dumpPath}.partial`, dumpPath);
            },
          },
      {
        title: 'restore into a new golden copy',
        commands: [
          createGolden,
          restore,
          ...(sanitize ? [sanitize] : []),
          ...(scan ? [scan] : []),
          dropGoldenNew,
        ],
        run: async (ctx) => {
          ctx.onUndo(async () => void (await ctx.exec(dropGoldenNew).catch(() => undefined)));
          await ctx.exec(createGolden);
          await ctx.exec(restore);
          if (sanitize) {
            ctx.say(`sanitize with ${c.sanitize}`);
            await ctx.exec(sanitize);
          }
          if (scan) {
            // Before the swap: a copy that still holds real data never reaches a branch site.
            const found = scanResult((await ctx.exec(scan)).stdout, c.mustNotContain);
            const problem = scanProblem(found);
            if (problem) throw new KarlstageError(problem);
            if (found.skipped.length) ctx.say(`not scanned: ${found.skipped.join(', ')}`);
            record.checkedPatterns = c.mustNotContain.length;
            ctx.say(`sanitized, checked for ${c.mustNotContain.length} pattern(s)`);
          }
        },
      },
      {
        title: 'swap in the new golden copy',
        commands: [swapGolden],
        run: async (ctx) => {
          await ctx.exec(swapGolden);
          Object.assign(record, { dump, asOf: taken.toISOString() });
        },
      },
      ...(mirror
        ? [
            {
              title: 'copy the files (blobs)',
              commands: [mirror],
              run: async (ctx: StepContext) => {
                await mkdir(join(cfg.sync.files, c.name), { recursive: true });
                await ctx.exec(mirror);
              },
            },
          ]
        : []),
      ...branches.map((b) =>
        branchStep(cfg, db, {
          golden,
          branch: b,
          customer: c.name,
          withFiles: Boolean(mirror),
          started: () => record.startedAt ?? Date.now(),
          done: (r) => outcome.branches.push(r),
        }),
      ),
      {
        title: 'prune old dumps',
        effects: [`keep ${cfg.sync.keep} in ${dumpDir}`],
        run: async (ctx) => {
          const pruned = await pruneDumps(dumpDir, cfg.sync.keep);
          if (pruned.length) ctx.say(`pruned ${pruned.length} old dump(s)`);
          // The customer's job fails when any of its branch sites did (each is in the summary).
          const failed = outcome.branches.filter((r) => r.customer === c.name && !r.ok);
          if (failed.length)
            throw new KarlstageError(
              `${c.name}: ${failed.length} of ${branches.length} branch sites failed`,
              1,
              failed.map((r) => `${r.branch}: ${r.error}`),
            );
        },
      },
    ];
    jobs.push({ name: c.name, steps });
  }
  return jobs;
}

/** The verdict's words: which step failed, and the last line the program said (its error). */
function errorLine(e: unknown): string {
  const said = e instanceof StepError ? e.outputTail.trim().split('\n').at(-1)?.trim() : '';
  return `${briefly(e)}${said ? `: ${said}` : ''}`.replace(/^[a-z][a-z0-9-]*: /, '');
}

interface BranchSyncRequest {
  golden: string;
  branch: string;
  customer: string;
  /** The customer has production files: stage, swap and commit them with the database. */
  withFiles: boolean;
  /** When the customer's sync started (its dump), for the duration shown. */
  started: () => number;
  done: (result: BranchSyncResult) => void;
}

/**
 * One branch site × customer: clone the golden copy under a temporary name,
 * swap it in, migrate; yesterday's copy is dropped only after the migrate
 * worked (the commit), and put back if it failed. Its failure is recorded and
 * does not stop the other branch sites.
 */
function branchStep(cfg: Config, db: StagingServer, req: BranchSyncRequest): Step {
  const { golden, branch, customer, withFiles } = req;
  const live = stagingDatabaseName(branch, customer);
  const fresh = twin(live, 'new');
  const old = twin(live, 'old');
  let site: BranchState | undefined;
  // The clone's session first says whether the site has a database now: one connection fewer.
  const clone = db.lookingUp([live], db.create(fresh, golden, 'copy the golden copy'));
  const dropFresh = db.drop(fresh, 'when the copy fails');
  const link = linkCommand(cfg, branch, customer);
  const swap = db.swapIn(live, fresh, old, 'swap');
  // Which customer's fresh copy it migrates: KARLSTAGE_CUSTOMER.
  const migrate = deploymentCommand(cfg, 'migrate', branch, () => ({
    ...stepEnv(cfg, site!, site!.built?.revision),
    KARLSTAGE_CUSTOMER: customer,
  }));
  const putBack = db.putBack(live, 'when the migrate fails');
  const commit = db.drop(old, 'when there was a copy before');
  return {
    title: `${branch}: copy, swap, migrate`,
    commands: [
      clone,
      dropFresh,
      ...(withFiles ? [link] : []),
      swap,
      ...(migrate ? [migrate] : []),
      ...putBack,
      commit,
    ],
    effects: [
      `lock ${branch}`,
      ...(withFiles
        ? [`swap the linked files in by rename; yesterday's kept until the commit`]
        : []),
    ],
    run: async (ctx) => {
      const started = req.started();
      let release: (() => Promise<void>) | undefined;
      let verdict: BranchSyncResult['migrate'];
      try {
        // An update of this branch site runs its own migrate: one at a time.
        release = await acquireLock(cfg.root, branchLock(branch), {
          command: `sync ${customer} into ${branch}`,
          waitSeconds: 600,
        });
        // Read again under the lock: a site destroyed (or changed) meanwhile gets no data.
        site = (await readState(cfg.root)).branches[branch];
        const served = await siteCustomers(cfg.root, branch).catch(() => []);
        if (!site || !served.some((i) => i.name === customer)) {
          ctx.say(`${branch}: skipped, destroyed (or no longer serving ${customer}) meanwhile`);
          return;
        }
        // Everything is prepared under temporary names first: nothing the site serves changes yet.
        let had = false;
        let swapStart = 0;
        try {
          had = (await ctx.exec(clone)).stdout.split('\n').includes(live);
          if (withFiles) {
            await clearStaged(cfg, branch, customer);
            await ctx.exec(link);
          }
          swapStart = Date.now();
          await ctx.exec(swap);
        } catch (e) {
          await ctx.exec(dropFresh).catch(() => undefined);
          if (withFiles) await putBackFiles(cfg, branch, customer).catch(() => undefined);
          throw e;
        }
        const swapMs = Date.now() - swapStart;
        let migrateStart = 0;
        try {
          if (withFiles) await swapFiles(cfg, branch, customer);
          migrateStart = Date.now();
          if (migrate) await ctx.exec(migrate);
          if (migrate) verdict = { ok: true, durationMs: Date.now() - migrateStart };
        } catch (e) {
          if (migrateStart && migrate)
            verdict = { ok: false, durationMs: Date.now() - migrateStart, error: errorLine(e) };
          if (!had) throw e; // nothing to go back to: the new copy stays
          for (const c of putBack) await ctx.exec(c);
          if (withFiles) await putBackFiles(cfg, branch, customer);
          throw new KarlstageError(`${briefly(e)}; ${branch} keeps yesterday's data`);
        }
        // The commit: once yesterday's copy is dropped, a killed run is not undone any more.
        if (had) await ctx.exec(commit);
        if (withFiles) await commitFiles(cfg, branch, customer);
        req.done({
          branch,
          customer,
          ok: true,
          ...finished(started),
          swapMs,
          ...(verdict ? { migrate: verdict } : {}),
        });
        ctx.say(`${branch}: done (unavailable ${swapMs} ms)`);
      } catch (e) {
        // The summary names the branch site already (its deployment steps say it too).
        const error = briefly(e).replace(new RegExp(`^${branch}: `), '');
        req.done({
          branch,
          customer,
          ok: false,
          error,
          ...finished(started),
          ...(verdict ? { migrate: verdict } : {}),
        });
        ctx.say(`${branch}: failed: ${error}`);
      } finally {
        await release?.();
      }
    },
  };
}

export interface ResetRequest {
  branch: BranchState;
  customers: CustomerConfig[];
}

/**
 * "reset": a branch site gets each customer's golden copy again (last night's
 * sanitized copy; production is not read), through the nightly sync's own
 * clean-up, staged clone, swap, migrate and put-back-on-failure, files included.
 */
export function resetJobs(
  cfg: Config,
  state: State,
  req: ResetRequest,
  guard: ProductionGuard,
  outcome: SyncOutcome,
): Job[] {
  const db = new StagingServer(cfg, guard);
  return req.customers.map((c) => {
    const branch = req.branch.name;
    const record: CustomerSync = (outcome.customers[c.name] = { branches: [branch] });
    const cleanUp = cleanUpStep(
      cfg,
      db,
      state,
      c.name,
      [branch],
      join(cfg.sync.dumps, c.name),
      () => {
        record.startedAt = Date.now();
      },
    );
    return {
      name: c.name,
      steps: [
        cleanUp,
        branchStep(cfg, db, {
          golden: goldenName(c.name),
          branch,
          customer: c.name,
          // The files come from last night's mirror, when the customer has one.
          withFiles: Boolean(c.productionFiles) && existsSync(join(cfg.sync.files, c.name)),
          started: () => record.startedAt ?? Date.now(),
          done: (r) => outcome.branches.push(r),
        }),
        {
          title: 'check the result',
          run: async () => {
            const r = outcome.branches.find((x) => x.customer === c.name);
            if (r && !r.ok) throw new KarlstageError(`${branch}: ${r.error}`);
          },
        },
      ],
    };
  });
}

/** Which golden copies exist (a reset needs one per customer). */
export function goldenLookup(cfg: Config, guard: ProductionGuard, customers: string[]): Command {
  return new StagingServer(cfg, guard).lookUp(
    customers.map(goldenName),
    'look up the golden copies',
  );
}
