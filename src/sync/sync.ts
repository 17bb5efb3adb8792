import { mkdir, rename, rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Config, CustomerConfig } from '../config/config.js';
import { later, type Command } from '../core/command.js';
import { parseDsn } from '../core/dsn.js';
import { KarlstageError } from '../core/errors.js';
import type { Job, Step } from '../core/plan.js';
import type { GuardVerdicts, ProductionGuard } from '../db/guard.js';
import { scanCommand, scanProblem, scanResult } from '../db/scan.js';
import { dumpsOf, freeBytes, mb } from './disk.js';
import { goldenName, legacyGoldenName, syncTargets, twin } from '../db/names.js';
import { productionEnv } from '../db/pg.js';
import { StagingServer } from '../db/staging.js';
import { siteCustomers, siteProblem } from '../model/sites.js';
import { layout } from '../model/layout.js';
import type { BranchState, State } from '../model/state.js';
import { dumpName, newestMatch, pruneDumps } from './backups.js';
import { branchContext, branchStep } from './branch-copy.js';
import { cleanUpStep } from './clean-up.js';
import { customerContext, type CustomerContext, type SyncFacts } from './context.js';
import { mirrorCommand } from './files.js';
import type { SyncOutcome } from './outcome.js';

/**
 * The nightly sync, per customer so the cost does not grow with the branches:
 * dump production once (read-only session) into dumps/, restore it into a new
 * golden database, sanitize it, swap it in by rename; then per branch site,
 * clone the golden copy (CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY) under
 * a temporary name, swap it in by rename, and run the migrate step. Until a
 * swap, every site keeps serving yesterday's data; a failure leaves it as it was.
 *
 * In three parts: its facts are gathered first (gatherSyncFacts), its plan is a
 * pure function of the configuration and those facts (syncPlan, resetPlan), and
 * the plan's steps carry it out, each customer's sharing one context object.
 */
export interface SyncRequest {
  branches: BranchState[];
  customers: CustomerConfig[];
  held: string[];
  command: string;
}

/** A plan's jobs, and the outcome they fill in as they run. */
export interface SyncPlan {
  jobs: Job[];
  outcome: SyncOutcome;
}

/** Which customers each branch site serves (a site that cannot say is broken), and what the guard said. */
export async function gatherSyncFacts(
  cfg: Config,
  state: State,
  req: Pick<SyncRequest, 'branches' | 'customers'>,
  guard: GuardVerdicts,
): Promise<SyncFacts> {
  const broken: SyncFacts['broken'] = [];
  const servedBy = new Map<string, string[]>();
  for (const b of req.branches) {
    const problem = await siteProblem(cfg.root, b.name);
    if (problem) broken.push({ branch: b.name, problem });
    servedBy.set(
      b.name,
      (await siteCustomers(cfg.root, b.name).catch(() => [])).map((i) => i.name),
    );
  }
  const served: SyncFacts['served'] = {};
  for (const c of req.customers)
    served[c.name] = req.branches
      .filter((b) => servedBy.get(b.name)?.includes(c.name))
      .map((b) => b.name);
  // The dumps kept are measured now (du), not in the dump step: a fact, read before the plan.
  const lastDumpBytes: Record<string, number> = {};
  for (const d of await dumpsOf(cfg))
    if (req.customers.some((c) => c.name === d.customer)) lastDumpBytes[d.customer] = d.newestBytes;
  return { broken, served, goldenIsASite: Boolean(state.branches.golden), guard, lastDumpBytes };
}

/** Every database the sync may write: the production guard checks them all before anything runs. */
export function syncTargetsOf(facts: SyncFacts, customers: CustomerConfig[]): string[] {
  return customers.flatMap((c) => [
    ...syncTargets(c.name, facts.served[c.name] ?? []),
    legacyGoldenName(c.name),
  ]);
}

/** The nightly (or a named) sync's plan: a pure function of the configuration and its facts. */
export function syncPlan(cfg: Config, facts: SyncFacts, req: SyncRequest): SyncPlan {
  const outcome: SyncOutcome = { customers: {}, branches: [], held: req.held };
  const db = new StagingServer(cfg, facts.guard);
  const jobs = [
    // A site that cannot say which customers it serves is a failure of that site, never skipped silently.
    ...facts.broken.map(({ branch, problem }) => brokenSiteJob(cfg, branch, problem)),
    ...req.customers.map((customer) =>
      customerJob(
        customerContext({
          cfg,
          db,
          customer,
          facts,
          branches: facts.served[customer.name] ?? [],
          outcome,
        }),
      ),
    ),
  ];
  return { jobs, outcome };
}

function brokenSiteJob(cfg: Config, branch: string, broken: KarlstageError): Job {
  return {
    name: branch,
    steps: [
      {
        title: 'read which customers it serves',
        effects: [`read ${layout.instancesIni(cfg.root, branch)}`],
        run: async () => {
          throw new KarlstageError(
            `${broken.message}; ${branch}'s data was not synced`,
            1,
            broken.details,
          );
        },
      },
    ],
  };
}

/** One customer's sync: its golden copy made again, then each branch site's copy. */
function customerJob(c: CustomerContext): Job {
  const name = c.customer.name;
  const unknown = c.facts.guard.unknown(name);
  if (unknown)
    // Nothing of this customer's is written on a guess; the other customers go on. Repairs
    // (putting back yesterday's copy) still run when its identity is known from the last time.
    return {
      name,
      steps: [
        ...(c.facts.guard.canRepair(name) ? [cleanUpStep(c)] : []),
        {
          title: "make sure the staging server is not this customer's production",
          effects: [unknown],
          run: async () => {
            throw new KarlstageError(unknown);
          },
        },
      ],
    };
  const files = filesStep(c);
  return {
    name,
    steps: [
      cleanUpStep(c),
      c.customer.productionDump ? backupStep(c) : dumpStep(c),
      restoreStep(c),
      swapGoldenStep(c),
      ...(files ? [files] : []),
      ...c.branches.map((b) => branchStep(branchContext(c, b, Boolean(files)))),
      pruneStep(c),
    ],
  };
}

/** pg_dump of production, read-only, into DUMP.partial (renamed when complete). */
export function dumpCommand(c: CustomerContext): Command {
  const { cfg } = c;
  const production = c.customer.production ? parseDsn(c.customer.production) : {};
  return {
    program: 'pg_dump',
    args: [
      '--format=directory',
      // Measured by bench/sync.mjs on 324 MB of incompressible data: default level
      // 34.6 s / 342 MB, -Z1 13.3 s / 351 MB, -Z0 3.8 s / 600 MB. Level 1: fast, and
      // nearly as small (the dumps are kept as snapshots, so size counts too).
      '--compress=1',
      `--jobs=${cfg.sync.jobs}`,
      '--no-owner',
      '--no-privileges',
      later('--file=DUMP.partial', () => `--file=${c.dump.path}.partial`),
    ],
    step: 'dump production',
    env: () => productionEnv(production),
    timeoutMs: cfg.deployment.timeout * 1000,
  };
}

export function dumpStep(c: CustomerContext): Step {
  const pgDump = dumpCommand(c);
  const { dumpDir } = c;
  const name = c.customer.name;
  return {
    title: 'dump production (read-only)',
    commands: [pgDump],
    effects: [`rename ${dumpDir}/DUMP.partial to DUMP (${name}-STAMP.dump) when complete`],
    run: async (ctx) => {
      // Tonight's dump is about as big as the last one: if that cannot fit, stop now.
      const last = c.facts.lastDumpBytes?.[name];
      const free = await freeBytes(dumpDir);
      if (last && free < last)
        throw new KarlstageError(
          `not enough room for ${name}'s dump in ${dumpDir}: about ${mb(last)} needed (the last dump), ${mb(free)} free; make room (fewer dumps kept: [sync] keep) — nothing was touched`,
        );
      const taken = new Date();
      const dump = dumpName(dumpDir, name, taken);
      c.dump = { name: dump, path: join(dumpDir, dump), taken };
      const partial = `${c.dump.path}.partial`;
      ctx.onUndo(() => rm(partial, { recursive: true, force: true }));
      await ctx.exec(pgDump);
      await rename(partial, c.dump.path);
    },
  };
}

/** production_dump: the newest backup file is restored instead of dumping production. */
export function backupStep(c: CustomerContext): Step {
  const pattern = c.customer.productionDump!;
  return {
    title: 'take the newest backup',
    effects: [`the newest file matching ${pattern}`],
    run: async (ctx) => {
      const newest = await newestMatch(pattern);
      if (!newest) throw new KarlstageError(`${c.customer.name}: no backup matches ${pattern}`);
      c.dump = { name: basename(newest.path), path: newest.path, taken: newest.mtime };
      ctx.say(`restoring ${c.dump.name} of ${newest.mtime.toISOString()}`);
    },
  };
}

const goldenNewOf = (c: CustomerContext) => twin(c.golden, 'new');
const timeoutOf = (c: CustomerContext) => c.cfg.deployment.timeout * 1000;

export function restoreCommand(c: CustomerContext): Command {
  const goldenNew = goldenNewOf(c);
  return {
    program: 'pg_restore',
    args: [
      `--jobs=${c.cfg.sync.jobs}`,
      '--no-owner',
      '--no-privileges',
      '--exit-on-error',
      `--dbname=${goldenNew}`,
      later('DUMP', () => c.dump.path),
    ],
    step: 'restore',
    env: () => c.db.envFor(goldenNew),
    timeoutMs: timeoutOf(c),
  };
}

export const sanitizeCommand = (c: CustomerContext): Command | undefined =>
  c.customer.sanitize
    ? c.db.runFile(goldenNewOf(c), c.customer.sanitize, 'sanitize', timeoutOf(c))
    : undefined;

export const scanCommandOf = (c: CustomerContext): Command | undefined =>
  c.customer.mustNotContain.length
    ? scanCommand(
        () => c.db.envFor(goldenNewOf(c)),
        c.customer.mustNotContain,
        'check the sanitized copy',
        timeoutOf(c),
      )
    : undefined;

/** Restore, sanitize and scan into a new golden copy (dropped when any of it fails). */
export function restoreStep(c: CustomerContext): Step {
  const { db, customer } = c;
  const createGolden = db.create(goldenNewOf(c), undefined, 'create the new golden copy');
  const restore = restoreCommand(c);
  const sanitize = sanitizeCommand(c);
  const scan = scanCommandOf(c);
  const dropGoldenNew = db.drop(goldenNewOf(c), 'when a later step fails');
  return {
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
        ctx.say(`sanitize with ${customer.sanitize}`);
        await ctx.exec(sanitize);
      }
      if (scan) {
        // Before the swap: a copy that still holds real data never reaches a branch site.
        const found = scanResult((await ctx.exec(scan)).stdout, customer.mustNotContain);
        const problem = scanProblem(found);
        if (problem) throw new KarlstageError(problem);
        if (found.skipped.length) ctx.say(`not scanned: ${found.skipped.join(', ')}`);
        c.record.checkedPatterns = customer.mustNotContain.length;
        ctx.say(`sanitized, checked for ${customer.mustNotContain.length} pattern(s)`);
      }
    },
  };
}

/** One session: the swap, then yesterday's golden copy dropped. */
export function swapGoldenStep(c: CustomerContext): Step {
  const { db, golden } = c;
  const swapGolden = db.together(
    [
      db.swapIn({ live: golden, incoming: goldenNewOf(c), outgoing: twin(golden, 'old') }, 'swap'),
      db.drop(twin(golden, 'old')),
    ],
    'swap the golden copy',
  );
  return {
    title: 'swap in the new golden copy',
    commands: [swapGolden],
    run: async (ctx) => {
      await ctx.exec(swapGolden);
      Object.assign(c.record, {
        dump: c.dump.name,
        asOf: (c.dump.taken ?? new Date()).toISOString(),
      });
    },
  };
}

/** The customer's production files (blobs), mirrored once for every branch site. */
export function filesStep(c: CustomerContext): Step | undefined {
  const { cfg, customer } = c;
  if (!customer.productionFiles) return undefined;
  const mirror = mirrorCommand(cfg, customer.name, customer.productionFiles);
  return {
    title: 'copy the files (blobs)',
    commands: [mirror],
    run: async (ctx) => {
      await mkdir(join(cfg.sync.files, customer.name), { recursive: true });
      await ctx.exec(mirror);
    },
  };
}

export function pruneStep(c: CustomerContext): Step {
  const { cfg, dumpDir } = c;
  const name = c.customer.name;
  return {
    title: 'prune old dumps',
    effects: [`keep ${cfg.sync.keep} in ${dumpDir}`],
    run: async (ctx) => {
      const pruned = await pruneDumps(dumpDir, cfg.sync.keep);
      if (pruned.length) ctx.say(`pruned ${pruned.length} old dump(s)`);
      // The customer's job fails when any of its branch sites did (each is in the summary).
      const failed = c.outcome.branches.filter((r) => r.customer === name && !r.ok);
      if (failed.length)
        throw new KarlstageError(
          `${name}: ${failed.length} of ${c.branches.length} branch sites failed`,
          1,
          failed.map((r) => `${r.branch}: ${r.error}`),
        );
    },
  };
}

export interface ResetRequest {
  branch: BranchState;
  customers: CustomerConfig[];
}

/** Whether last night's sync mirrored each customer's files (a reset links them when it did). */
export function mirroredFiles(cfg: Config, customers: CustomerConfig[]): string[] {
  return customers
    .filter((c) => c.productionFiles && existsSync(join(cfg.sync.files, c.name)))
    .map((c) => c.name);
}

/**
 * "reset": a branch site gets each customer's golden copy again (last night's
 * sanitized copy; production is not read), through the nightly sync's own
 * clean-up, staged clone, swap, migrate and put-back-on-failure, files included.
 * A pure function of the configuration and its facts.
 */
export function resetPlan(cfg: Config, facts: SyncFacts, req: ResetRequest): SyncPlan {
  const outcome: SyncOutcome = { customers: {}, branches: [], held: [] };
  const db = new StagingServer(cfg, facts.guard);
  const branch = req.branch.name;
  const jobs = req.customers.map((customer): Job => {
    const c = customerContext({ cfg, db, customer, facts, branches: [branch], outcome });
    // The files come from last night's mirror, when the customer has one.
    const withFiles = facts.mirrored?.includes(customer.name) ?? false;
    return {
      name: customer.name,
      steps: [
        cleanUpStep(c),
        branchStep(branchContext(c, branch, withFiles)),
        {
          title: 'check the result',
          run: async () => {
            const r = outcome.branches.find((x) => x.customer === customer.name);
            if (r && !r.ok) throw new KarlstageError(`${branch}: ${r.error}`);
          },
        },
      ],
    };
  });
  return { jobs, outcome };
}

/** Which golden copies exist (a reset needs one per customer). */
export function goldenLookup(cfg: Config, guard: ProductionGuard, customers: string[]): Command {
  return new StagingServer(cfg, guard).lookUp(
    customers.map(goldenName),
    'look up the golden copies',
  );
}
