import type { Command } from '../core/command.js';
import { briefly, KarlstageError, StepError } from '../core/errors.js';
import type { Step, StepContext } from '../core/plan.js';
import { stagingDatabaseName, twin } from '../db/names.js';
import { acquireLock, branchLock, type Release } from '../model/locks.js';
import { siteCustomers } from '../model/sites.js';
import { readState, type BranchState } from '../model/state.js';
import { deploymentCommand, stepEnv } from '../model/steps.js';
import type { CustomerContext } from './context.js';
import { clearStaged, commitFiles, linkCommand, putBackFiles, swapFiles } from './files.js';
import type { BranchSyncResult } from './outcome.js';

/**
 * One branch site × customer: clone the golden copy under a temporary name,
 * swap it in, migrate; yesterday's copy is dropped only after the migrate
 * worked (the commit), and put back if it failed. Its failure is recorded and
 * does not stop the other branch sites.
 */
export interface BranchContext {
  c: CustomerContext;
  branch: string;
  /** The customer has production files: stage, swap and commit them with the database. */
  withFiles: boolean;
  live: string;
  fresh: string;
  old: string;
  /** What only the run finds out. */
  run: {
    release?: Release;
    /** The site's record, read under its lock (its migrate is told about it). */
    site?: BranchState;
    /** The site had a database before (yesterday's copy, kept until the commit). */
    had: boolean;
    swapMs?: number;
    verdict?: BranchSyncResult['migrate'];
  };
}

export function branchContext(
  c: CustomerContext,
  branch: string,
  withFiles: boolean,
): BranchContext {
  const live = stagingDatabaseName(branch, c.customer.name);
  return {
    c,
    branch,
    withFiles,
    live,
    fresh: twin(live, 'new'),
    old: twin(live, 'old'),
    run: { had: false },
  };
}

/** The clone's session first says whether the site has a database now: one connection fewer. */
export const cloneCommand = (b: BranchContext): Command =>
  b.c.db.lookingUp([b.live], b.c.db.create(b.fresh, b.c.golden, 'copy the golden copy'));

export const swapCommand = (b: BranchContext): Command =>
  b.c.db.swapIn({ live: b.live, incoming: b.fresh, outgoing: b.old }, 'swap');

/** Which customer's fresh copy it migrates: KARLSTAGE_CUSTOMER. */
export const migrateCommand = (b: BranchContext): Command | undefined =>
  deploymentCommand(b.c.cfg, 'migrate', b.branch, () => ({
    ...stepEnv(b.c.cfg, b.run.site!, b.run.site!.built?.revision),
    KARLSTAGE_CUSTOMER: b.c.customer.name,
  }));

export const putBackCommands = (b: BranchContext): Command[] =>
  b.c.db.putBack(b.live, 'when the migrate fails');

/** The commands of one branch site's copy, each made once: the step declares them, its run uses them. */
function copyCommands(b: BranchContext) {
  return {
    clone: cloneCommand(b),
    dropFresh: b.c.db.drop(b.fresh, 'when the copy fails'),
    link: linkCommand(b.c.cfg, b.branch, b.c.customer.name),
    swap: swapCommand(b),
    migrate: migrateCommand(b),
    putBack: putBackCommands(b),
    commit: b.c.db.drop(b.old, 'when there was a copy before'),
  };
}
type CopyCommands = ReturnType<typeof copyCommands>;

export function branchStep(b: BranchContext): Step {
  const { branch, withFiles } = b;
  const cmd = copyCommands(b);
  return {
    title: `${branch}: copy, swap, migrate`,
    commands: [
      cmd.clone,
      cmd.dropFresh,
      ...(withFiles ? [cmd.link] : []),
      cmd.swap,
      ...(cmd.migrate ? [cmd.migrate] : []),
      ...cmd.putBack,
      cmd.commit,
    ],
    effects: [
      `lock ${branch}`,
      ...(withFiles
        ? [`swap the linked files in by rename; yesterday's kept until the commit`]
        : []),
    ],
    run: (ctx) => copyIntoBranch(b, cmd, ctx),
  };
}

const finished = (started: number) => ({
  at: new Date().toISOString(),
  durationMs: Date.now() - started,
});

/** The verdict's words: which step failed, and the last line the program said (its error). */
function errorLine(e: unknown): string {
  const said = e instanceof StepError ? e.outputTail.trim().split('\n').at(-1)?.trim() : '';
  return `${briefly(e)}${said ? `: ${said}` : ''}`.replace(/^[a-z][a-z0-9-]*: /, '');
}

async function copyIntoBranch(b: BranchContext, cmd: CopyCommands, ctx: StepContext) {
  const { branch, c } = b;
  const customer = c.customer.name;
  const started = c.record.startedAt ?? Date.now();
  const done = (r: Omit<BranchSyncResult, 'branch' | 'customer' | 'at' | 'durationMs'>) =>
    c.outcome.branches.push({
      branch,
      customer,
      ...r,
      ...finished(started),
      ...(b.run.verdict ? { migrate: b.run.verdict } : {}),
    });
  try {
    if (!(await lockAndRead(b))) {
      ctx.say(`${branch}: skipped, destroyed (or no longer serving ${customer}) meanwhile`);
      return;
    }
    await stageAndSwap(b, cmd, ctx);
    await migrateOrPutBack(b, cmd, ctx);
    // The commit: once yesterday's copy is dropped, a killed run is not undone any more.
    if (b.run.had) await ctx.exec(cmd.commit);
    if (b.withFiles) await commitFiles(c.cfg, branch, customer);
    done({ ok: true, swapMs: b.run.swapMs });
    ctx.say(`${branch}: done (unavailable ${b.run.swapMs} ms)`);
  } catch (e) {
    // The summary names the branch site already (its deployment commands say it too).
    const error = briefly(e).replace(new RegExp(`^${branch}: `), '');
    done({ ok: false, error });
    ctx.say(`${branch}: failed: ${error}`);
  } finally {
    await b.run.release?.();
  }
}

/**
 * An update of this branch site runs its own migrate: one at a time. Read again under the
 * lock: a site destroyed (or changed) meanwhile gets no data (false).
 */
async function lockAndRead(b: BranchContext): Promise<boolean> {
  const { root } = b.c.cfg;
  const customer = b.c.customer.name;
  b.run.release = await acquireLock(root, branchLock(b.branch), {
    command: `sync ${customer} into ${b.branch}`,
    waitSeconds: 600,
  });
  b.run.site = (await readState(root)).branches[b.branch];
  const served = await siteCustomers(root, b.branch).catch(() => []);
  return Boolean(b.run.site) && served.some((i) => i.name === customer);
}

/** Everything is prepared under temporary names first: nothing the site serves changes until the swap. */
async function stageAndSwap(b: BranchContext, cmd: CopyCommands, ctx: StepContext) {
  const { cfg } = b.c;
  const customer = b.c.customer.name;
  try {
    b.run.had = (await ctx.exec(cmd.clone)).stdout.split('\n').includes(b.live);
    if (b.withFiles) {
      await clearStaged(cfg, b.branch, customer);
      await ctx.exec(cmd.link);
    }
    const swapStart = Date.now();
    await ctx.exec(cmd.swap);
    b.run.swapMs = Date.now() - swapStart;
  } catch (e) {
    await ctx.exec(cmd.dropFresh).catch(() => undefined);
    if (b.withFiles) await putBackFiles(cfg, b.branch, customer).catch(() => undefined);
    throw e;
  }
}

/** The migrate on the new copy; when it fails, yesterday's copy (and files) are put back. */
async function migrateOrPutBack(b: BranchContext, cmd: CopyCommands, ctx: StepContext) {
  const { cfg } = b.c;
  const customer = b.c.customer.name;
  let migrateStart = 0;
  try {
    if (b.withFiles) await swapFiles(cfg, b.branch, customer);
    migrateStart = Date.now();
    if (cmd.migrate) await ctx.exec(cmd.migrate);
    if (cmd.migrate) b.run.verdict = { ok: true, durationMs: Date.now() - migrateStart };
  } catch (e) {
    if (migrateStart && cmd.migrate)
      b.run.verdict = { ok: false, durationMs: Date.now() - migrateStart, error: errorLine(e) };
    if (!b.run.had) throw e; // nothing to go back to: the new copy stays
    for (const back of cmd.putBack) await ctx.exec(back);
    if (b.withFiles) await putBackFiles(cfg, b.branch, customer);
    throw new KarlstageError(`${briefly(e)}; ${b.branch} keeps yesterday's data`);
  }
}
