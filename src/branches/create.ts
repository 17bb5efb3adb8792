import { configuredCustomer } from '../config/config.js';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import type { Config } from '../config/config.js';
import { checkName } from '../config/names.js';
import { UsageError } from '../core/errors.js';
import type { Plan, Step } from '../core/plan.js';
import { portIsFree } from '../core/ports.js';
import { ProductionGuard, type GuardVerdicts } from '../db/guard.js';
import { goldenName, stagingDatabaseName, stagingDsn, withTwins } from '../db/names.js';
import { StagingServer } from '../db/staging.js';
import { renderInstancesIni } from '../instances/write.js';
import { layout } from '../model/layout.js';
import { writeAllowList } from '../model/mail-safety.js';
import { clearPending, markPending, readPending, type Pending } from '../model/pending.js';
import { readState, updateState, type BranchState, type State } from '../model/state.js';
import { noteActivity } from '../model/activity.js';
import {
  deploymentCommand,
  startAndWait,
  stepArgv,
  stepEnv,
  type DeploymentKey,
  type SiteIdentity,
} from '../model/steps.js';
import type { BuildFacts, RefKind, Vcs } from '../vcs/vcs.js';
import { checkSkeleton, skeletonStep } from './skeleton.js';
import { siteVcs, storeStep } from './source.js';

export interface CreateRequest {
  branch: string;
  ref?: string;
  customers?: string[];
}

/** A new site's etc/instances.ini; refused (exit 2, nothing changed) when a value cannot be written. */
export async function renderInstances(
  cfg: Config,
  branch: string,
  customers: string[],
): Promise<string> {
  return renderInstancesIni(
    layout.instancesIni(cfg.root, branch),
    branch,
    customers.map((name) => ({
      name,
      dsn: stagingDsn(cfg.staging.database, branch, name),
      host: cfg.staging.host,
      testersFile: layout.testersFile(cfg.root),
    })),
  );
}

/**
 * The smallest slot not taken whose port nothing listens on: slots (and
 * ports) are reused after destroy, and a port another program took is passed
 * over, not handed to a branch site that then cannot start.
 */
async function freeSlot(cfg: Config, state: State): Promise<number> {
  const used = new Set(Object.values(state.branches).map((b) => b.slot));
  for (let slot = 1; ; slot++)
    if (!used.has(slot) && (await portIsFree(cfg.staging.basePort + slot))) return slot;
}

/** What a create is planned from: gathered (and checked) before the plan is made. */
export interface CreateFacts {
  branch: string;
  ref: string;
  /** What the ref is (asked upstream). */
  kind: RefKind;
  customers: string[];
  /** The slot it gets (its port: base_port + slot). */
  slot: number;
  /** The marker of an interrupted create of this name: what it left is removed first. */
  leftover?: Pending;
  /** Its etc/instances.ini. */
  instancesText: string;
  /** When karlstage makes the staging databases: the production guard's verdicts. */
  guard?: GuardVerdicts;
}

/** Everything a create's steps are built from, and what only the run finds out (`run`). */
export interface CreateContext {
  cfg: Config;
  vcs: Vcs;
  facts: CreateFacts;
  dir: string;
  sourceDir: string;
  site: SiteIdentity;
  command: string;
  run: { revision?: string; about: BuildFacts; startedMs?: number };
}

/** Work out a create: every check that can fail on input runs here, before anything changes. */
export async function planCreate(cfg: Config, req: CreateRequest): Promise<Plan> {
  const vcs = await siteVcs(cfg);
  return createPlan(cfg, vcs, await gatherCreateFacts(cfg, vcs, req));
}

/** The facts of a create, in the order its refusals are checked (the first one is said). */
export async function gatherCreateFacts(
  cfg: Config,
  vcs: Vcs,
  req: CreateRequest,
): Promise<CreateFacts> {
  const branch = checkName('branch', req.branch);
  const { root } = cfg;
  const state = await readState(root);
  if (state.branches[branch])
    throw new UsageError(
      `branch site "${branch}" exists already: use "karlstage switch ${branch} REF" to change its code`,
    );
  const dir = layout.branch(root, branch);
  const leftover = await readPending(root, branch);
  if (!leftover && existsSync(dir))
    throw new UsageError(
      `${dir} exists but is not a karlstage branch site: move it away or choose another name`,
    );
  const customers = req.customers ?? cfg.customers.map((c) => c.name);
  if (customers.length === 0)
    throw new UsageError(
      'no customers: add a [customer:NAME] section to karlstage.ini or pass --customers a,b',
    );
  for (const c of customers)
    configuredCustomer(cfg, c, 'add its section first, or leave it out of --customers');
  const ref = req.ref ?? cfg.source.default;
  vcs.validateRef(ref);
  for (const key of ['build', 'start', 'stop'] as const) stepArgv(cfg, key, dir);
  checkSkeleton(cfg, branch);
  // A read: also in --dry-run, so a ref that is not there fails before anything exists.
  const kind = await vcs.checkRef(ref);
  const slot = await freeSlot(cfg, state);
  const instancesText = await renderInstances(cfg, branch, customers);
  const guard = cfg.staging.manageDatabases
    ? await databaseGuard(cfg, branch, customers)
    : undefined;
  return {
    branch,
    ref,
    kind,
    customers,
    slot,
    ...(leftover ? { leftover } : {}),
    instancesText,
    ...(guard ? { guard } : {}),
  };
}

/** Asked of the servers before anything exists: a read, so --dry-run asks too. */
async function databaseGuard(cfg: Config, branch: string, customers: string[]) {
  const guard = await ProductionGuard.establish(cfg, { memory: layout.productions(cfg.root) });
  const made = customers.filter((c) => !guard.unknown(c));
  const names = made.map((c) => stagingDatabaseName(branch, c));
  await guard.refuseProduction([...withTwins(names), ...made.map(goldenName)]);
  return guard;
}

/** A create's plan: a pure function of the configuration and its facts. */
export function createPlan(cfg: Config, vcs: Vcs, facts: CreateFacts): Plan {
  const { branch, slot } = facts;
  const dir = layout.branch(cfg.root, branch);
  const c: CreateContext = {
    cfg,
    vcs,
    facts,
    dir,
    sourceDir: join(dir, cfg.source.path),
    site: { name: branch, slot, port: cfg.staging.basePort + slot },
    command: `create ${branch}`,
    run: { about: {} },
  };
  // git: one fetch into the shared store, before anything of the site exists; a commit id is
  // looked up there (it cannot be asked of the server without fetching).
  // Both only read (the store is a cache of upstream): a ref refused here changed nothing.
  const store = storeStep(cfg, vcs, c.command, {
    fetch: true,
    targets: [{ ref: facts.ref, kind: facts.kind }],
  });
  const steps = [
    leftoverStep(c),
    store && { ...store, readOnly: true },
    locateStep(c),
    copySkeletonStep(c),
    checkoutStep(c),
    instancesStep(c),
    databasesStep(c),
    siteBuildStep(c),
    startStep(c),
    recordSiteStep(c),
  ].filter((s): s is Step => Boolean(s));
  return {
    command: c.command,
    jobs: [{ name: branch, steps, finally: () => clearPending(cfg.root, branch) }],
  };
}

/** The site's deployment command `key`, told the revision once it is checked out. */
const siteCommand = (c: CreateContext, key: DeploymentKey) =>
  deploymentCommand(c.cfg, key, c.facts.branch, () => stepEnv(c.cfg, c.site, c.run.revision));

export function leftoverStep(c: CreateContext): Step | undefined {
  const { leftover } = c.facts;
  if (!leftover) return undefined;
  const stop = siteCommand(c, 'stop');
  return {
    title: 'remove what an interrupted create left',
    commands: stop ? [{ ...stop, when: 'when the folder is there' }] : [],
    effects: [
      `remove ${c.dir}/ (${leftover.damaged ?? `left by pid ${leftover.pid} at ${leftover.started}`})`,
    ],
    run: async (ctx) => {
      if (stop && existsSync(c.dir)) await ctx.exec(stop).catch(() => undefined);
      await rm(c.dir, { recursive: true, force: true });
    },
  };
}

export function locateStep(c: CreateContext): Step | undefined {
  const { ref, kind } = c.facts;
  const locate = c.vcs.locate(ref, kind);
  if (!locate) return undefined;
  return {
    title: `find ${ref}`,
    commands: locate.commands,
    readOnly: true,
    run: (ctx) => locate.run(ctx.exec),
  };
}

export function copySkeletonStep(c: CreateContext): Step {
  const { cfg, dir } = c;
  const skeleton = skeletonStep(cfg, dir);
  return {
    ...skeleton,
    run: async (ctx) => {
      await markPending(cfg.root, c.facts.branch, 'create');
      ctx.onUndo(() => rm(dir, { recursive: true, force: true }));
      await skeleton.run(ctx);
      if (existsSync(c.sourceDir))
        throw new UsageError(
          `the skeleton already has ${cfg.source.path}: remove it there, karlstage checks the source out itself`,
        );
    },
  };
}

export function checkoutStep(c: CreateContext): Step {
  const { ref, kind, branch } = c.facts;
  const checkout = c.vcs.checkout(ref, kind, c.sourceDir, branch);
  const describe = c.vcs.describeBuild(c.sourceDir, ref, c.cfg.source.default);
  return {
    title: `check out ${ref}`,
    commands: [...checkout.commands, ...describe.commands],
    run: async (ctx) => {
      await mkdir(dirname(c.sourceDir), { recursive: true });
      c.run.revision = await checkout.run(ctx.exec);
      c.run.about = await describe.run(ctx.exec);
      ctx.say(`checked out ${ref} at ${c.run.revision}`);
    },
  };
}

export function instancesStep(c: CreateContext): Step {
  const { cfg } = c;
  const file = layout.instancesIni(cfg.root, c.facts.branch);
  return {
    title: 'write etc/instances.ini',
    effects: [
      `write ${file} (customers: ${c.facts.customers.join(', ')})`,
      `write ${layout.testersFile(cfg.root)}`,
    ],
    run: async () => {
      await mkdir(dirname(file), { recursive: true });
      await writeFileAtomic(file, c.facts.instancesText, { mode: 0o600 });
      await writeAllowList(cfg);
    },
  };
}

/** A customer whose production cannot be asked gets no database on a guess: the sync makes it later. */
export function databasesStep(c: CreateContext): Step | undefined {
  const { guard, customers, branch } = c.facts;
  if (!guard) return undefined;
  const unknown = customers.flatMap((name) => {
    const why = guard.unknown(name);
    return why
      ? [`no database for ${name} yet: ${why}; the nightly sync makes it once that server answers`]
      : [];
  });
  const made = customers.filter((name) => !guard.unknown(name));
  const db = new StagingServer(c.cfg, guard);
  const make = db.siteDatabases(branch, made);
  const undo = db.dropWithTwins(made.map((name) => stagingDatabaseName(branch, name)));
  return {
    title: 'create the staging databases',
    commands: [...make.commands, ...undo.map((u) => ({ ...u, when: 'when a later step fails' }))],
    effects: unknown,
    run: async (ctx) => {
      await guard.remember();
      ctx.onUndo(async () => {
        for (const u of undo) await ctx.exec(u);
      });
      await make.run(ctx.exec);
      for (const line of unknown) ctx.warn(line);
    },
  };
}

export function siteBuildStep(c: CreateContext): Step | undefined {
  const build = siteCommand(c, 'build');
  if (!build) return undefined;
  return { title: 'build', commands: [build], run: async (ctx) => void (await ctx.exec(build)) };
}

export function startStep(c: CreateContext): Step | undefined {
  const start = siteCommand(c, 'start');
  const stop = siteCommand(c, 'stop');
  if (!start) return undefined;
  return {
    title: 'start',
    commands: [start, ...(stop ? [{ ...stop, when: 'when a later step fails' }] : [])],
    run: async (ctx) => {
      if (stop) ctx.onUndo(async () => void (await ctx.exec(stop)));
      // Started means answering on its port, within [deployment] start_timeout.
      c.run.startedMs = await startAndWait(c.cfg, c.site.port, () => ctx.exec(start));
    },
  };
}

/** The new site's record, as the create found it out. */
export function newSiteRecord(
  c: Pick<CreateContext, 'cfg' | 'facts' | 'site' | 'run'>,
  now: string,
): BranchState {
  const { ref, kind, branch, slot } = c.facts;
  const { revision, about, startedMs } = c.run;
  return {
    name: branch,
    slot,
    port: c.site.port,
    vcs: c.cfg.source.vcs,
    ref,
    refKind: kind,
    createdAt: now,
    revision,
    built: revision ? { revision, ref, at: now, ...about } : undefined,
    run: {
      want: 'running',
      since: now,
      by: 'create',
      ...(startedMs !== undefined
        ? { lastStart: { at: now, ok: true, ms: startedMs, by: 'create' } }
        : {}),
    },
  };
}

export function recordSiteStep(c: CreateContext): Step {
  const { root } = c.cfg;
  const { branch } = c.facts;
  return {
    title: 'record the branch site',
    effects: [
      `write ${layout.state(root)} (slot ${c.facts.slot}, port ${c.site.port})`,
      `write ${layout.siteMarker(root, branch)}`,
    ],
    run: async () => {
      const now = new Date().toISOString();
      // state.json's update writes the site's marker too (.karlstage-site.json).
      await updateState(root, (s) => {
        s.branches[branch] = newSiteRecord(c, now);
      });
      await noteActivity(root, branch);
    },
  };
}
