import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Config } from '../config/config.js';
import type { Command } from '../core/command.js';
import { asFailure, EXIT, LockedError, type UsageError } from '../core/errors.js';
import type { Job, JobResult, Step, StepContext } from '../core/plan.js';
import { layout } from '../model/layout.js';
import { acquireLock, branchLock, type Release } from '../model/locks.js';
import { ensureMailSafety } from '../model/mail-safety.js';
import {
  clearPending,
  listPending,
  markPending,
  readPending,
  type Pending,
} from '../model/pending.js';
import { localChanges, localCommits, siteProblem, sourceProblem } from '../model/sites.js';
import { readState, updateState, type BranchState } from '../model/state.js';
import { noteActivity } from '../model/activity.js';
import { wantOf } from '../model/site-state.js';
import { deploymentCommand, startAndWait, stepEnv, type DeploymentKey } from '../model/steps.js';
import { afterStart } from './lifecycle.js';
import {
  LostCommitError,
  type BuildFacts,
  type Procedure,
  type RefKind,
  type UpdateOutcome,
  type Vcs,
} from '../vcs/vcs.js';

/**
 * One branch site's update (or switch), in three parts: the facts it is planned
 * from are gathered first (gatherUpdateFacts), the plan is a pure function of
 * the configuration and those facts (updateJob: no disk, no network, so it is
 * unit-tested with made-up facts), and the plan's steps carry it out. What only
 * the run finds out (the lock, the revision, what was built) is kept in one
 * per-job object (UpdateRun) that the steps share, never in variables their
 * closures share.
 */
export interface UpdateRequest {
  /** Rebuild even when the revision is already built; update over local changes. */
  force?: boolean;
  /** switch: the ref to move to, and what it is (read upstream when the plan was made). */
  switchTo?: { ref: string; kind: RefKind };
  /** Seconds to wait for this branch's lock. */
  waitSeconds?: number;
  /** poll --build: a branch whose update is already running is skipped, not waited on. */
  skipIfLocked?: boolean;
  command: string;
}

/** What one site's update is planned from. Everything here is read again under the site's lock. */
export interface UpdateFacts {
  /** Its record in state.json. */
  site: BranchState;
  /** What its ref is. */
  kind: RefKind;
  /**
   * The upstream head of its ref. When it is the revision already built (and nothing was
   * interrupted), the job ends once it holds the lock: no VCS command runs in the site.
   * Not asked by `update --force` or `poll --build`.
   */
  upstreamHead?: string;
  /** An earlier change of it was interrupted (its pending marker is there): always finished. */
  interrupted: boolean;
  /** Its source checkout was removed by hand: checked out again, and built. */
  sourceGone: boolean;
}

/** What a site's ref is: recorded when it was chosen; asked upstream for sites recorded before that. */
export async function refKindOf(vcs: Vcs, site: BranchState): Promise<RefKind> {
  return site.refKind ?? (await vcs.checkRef(site.ref));
}

export interface GatherOptions {
  /** The upstream heads of the sites' refs, when they were asked. */
  heads?: Map<string, string | null | Error>;
  /** What the ref is, when the caller knows already (a switch: the ref it moves to). */
  kind?: RefKind;
}

/** The facts of each site's update: read from the staging root (and upstream for a ref kind not recorded). */
export async function gatherUpdateFacts(
  cfg: Config,
  vcs: Vcs,
  sites: BranchState[],
  opts: GatherOptions = {},
): Promise<UpdateFacts[]> {
  const pending = await listPending(cfg.root);
  const kinds = await Promise.all(sites.map((site) => opts.kind ?? refKindOf(vcs, site)));
  return sites.map((site, i) => {
    const head = opts.heads?.get(site.ref);
    return {
      site,
      kind: kinds[i]!,
      ...(typeof head === 'string' ? { upstreamHead: head } : {}),
      interrupted: Boolean(pending[site.name]),
      sourceGone: sourceProblem(cfg.root, site.name, cfg.source.path) !== undefined,
    };
  });
}

/** Built at upstream's head and nothing interrupted: an update (without --force) has nothing to fetch. */
export function builtAtHead(f: UpdateFacts, force?: boolean): boolean {
  const built = f.site.built;
  return (
    !force &&
    built?.ref === f.site.ref &&
    built.revision === f.upstreamHead &&
    f.site.revision === built.revision &&
    !f.interrupted
  );
}

/**
 * What the facts say the job will do: `check` (built at upstream's head: it locks, checks and
 * ends), `build` (everything runs), or `maybe` (it builds when the update brings a revision
 * not built yet). The preview marks each command that runs only sometimes accordingly.
 */
export type UpdateExpectation = 'check' | 'build' | 'maybe';

export function expectationOf(f: UpdateFacts, req: UpdateRequest): UpdateExpectation {
  if (req.force || req.switchTo || f.interrupted || f.sourceGone) return 'build';
  if (builtAtHead(f)) return 'check';
  const built = f.site.built;
  const moves = f.upstreamHead !== undefined && f.upstreamHead !== built?.revision;
  return !built || built.ref !== f.site.ref || moves ? 'build' : 'maybe';
}

/** The `[when …]` marks of an update's preview. */
export const WHEN = {
  interrupted: 'when an earlier run was interrupted',
  forced: 'when there are local changes and --force is given',
  gone: 'when the source checkout is missing',
  there: 'when the source checkout is there',
  notBuilt: 'when it is not built yet',
  /** Built at upstream's head when the plan was made: only a change since lets the job go on. */
  changed: 'when the site changed since this plan was made',
  running: 'when the site should be running (not asleep or stopped)',
} as const;

/** What only the run finds out, shared by the job's steps (one object per job). */
export interface UpdateRun {
  /** The site's lock, once held. */
  release?: Release;
  /** Its record as read under the lock. */
  site: BranchState;
  revision?: string;
  /** Something the VCS said the operator should hear ("history rewritten upstream"). */
  note?: string;
  about: BuildFacts;
  /** It ended early: only checked (built at upstream's head), or its new revision was built already. */
  ended?: 'checked' | 'built';
  /** Its source moved (or was checked out again). */
  moved: boolean;
  /** It finishes an interrupted change. */
  interrupted: boolean;
  sourceGone: boolean;
  /** It was restarted (ms: how long until it answered; none when the restart failed). */
  restarted?: { ms?: number };
}

/** The VCS work on the site's checkout, as procedures (their commands declared up front). */
interface SourceWork {
  dirty: Procedure<boolean>;
  discard: Procedure<void>;
  local: Procedure<number>;
  repair: Procedure<void>;
  move: Procedure<UpdateOutcome>;
  describe: Procedure<BuildFacts>;
  checkout: Procedure<string>;
}

/** Everything a step of one site's update is built from and shares while it runs. */
export interface UpdateContext {
  cfg: Config;
  req: UpdateRequest;
  facts: UpdateFacts;
  branch: string;
  sourceDir: string;
  /** The ref it ends on (a switch's new one). */
  ref: string;
  refKind: RefKind;
  expect: UpdateExpectation;
  source: SourceWork;
  run: UpdateRun;
}

/** A command marked as running only `when` (and under its own condition, if it has one). */
const marked =
  (when: string | undefined) =>
  (c: Command): Command =>
    when ? { ...c, when: c.when ? `${when}, and ${c.when.replace(/^when /, '')}` : when } : c;

function sourceWork(cfg: Config, vcs: Vcs, c: Omit<UpdateContext, 'source' | 'run'>): SourceWork {
  const { sourceDir, ref, refKind, branch, req } = c;
  const move: Procedure<UpdateOutcome> = req.switchTo
    ? (() => {
        const p = vcs.switchTo(sourceDir, ref, refKind, branch);
        return { ...p, run: async (exec) => ({ revision: await p.run(exec) }) };
      })()
    : vcs.update(sourceDir, ref, refKind, branch);
  return {
    dirty: vcs.isDirty(sourceDir),
    discard: vcs.discardChanges(sourceDir),
    local: vcs.localCommits(sourceDir, branch),
    repair: vcs.repair(sourceDir),
    move,
    describe: vcs.describeBuild(sourceDir, ref, cfg.source.default),
    checkout: vcs.checkout(ref, refKind, sourceDir, branch),
  };
}

/**
 * One branch site's update (or switch): VCS update, then build, migrate and
 * restart, skipped when that revision is already built — unless an earlier
 * change of this site was interrupted, which is always finished. The state
 * changes only at the end: the last good revision stays recorded when a step
 * fails, and a result that cannot be recorded fails the job (the pending
 * marker stays, so the next run redoes it). A pure function of its arguments.
 */
export function updateJob(cfg: Config, vcs: Vcs, facts: UpdateFacts, req: UpdateRequest): Job {
  const branch = facts.site.name;
  const base = {
    cfg,
    req,
    facts,
    branch,
    sourceDir: `${layout.branch(cfg.root, branch)}/${cfg.source.path}`,
    ref: req.switchTo?.ref ?? facts.site.ref,
    refKind: req.switchTo?.kind ?? facts.kind,
    expect: expectationOf(facts, req),
  };
  const c: UpdateContext = {
    ...base,
    source: sourceWork(cfg, vcs, base),
    run: { site: facts.site, about: {}, moved: false, interrupted: false, sourceGone: false },
  };
  const steps = [
    lockAndCheckStep(c),
    sourceStep(c),
    buildStep(c),
    migrateStep(c),
    restartStep(c),
  ].filter((s): s is Step => s !== undefined);
  return { name: branch, steps, finally: (result) => recordUpdate(c, result) };
}

/** Lock the site, read it again, finish what an earlier run left, and refuse what must be refused. */
export function lockAndCheckStep(c: UpdateContext): Step {
  const { cfg, branch, source, expect, facts } = c;
  // Built at upstream's head, the job ends before these; with no checkout, there is nothing to ask.
  const asked = marked(
    expect === 'check' ? WHEN.changed : facts.sourceGone ? WHEN.there : undefined,
  );
  // An interrupted change is repaired first (a missing checkout has nothing to repair).
  const repairs = facts.interrupted && !facts.sourceGone ? undefined : WHEN.interrupted;
  return {
    title: 'lock and check',
    commands: [
      ...source.repair.commands.map(marked(repairs)),
      ...source.dirty.commands.map(asked),
      ...source.discard.commands.map(marked(WHEN.forced)),
      ...source.local.commands.map(asked),
    ],
    effects: [
      `lock ${branch} (${layout.locks(cfg.root)}/${branchLock(branch)}.lock)`,
      ...(source.repair.effects?.map((e) => (repairs ? `${e} [${repairs}]` : e)) ?? []),
      `put back a missing mail_white_list in ${layout.instancesIni(cfg.root, branch)}`,
    ],
    run: async (ctx) => {
      const locked = await lockSite(c);
      if (locked) return locked;
      const leftover = await readPending(cfg.root, branch);
      if (isBuiltAtHead(c, leftover)) {
        await mailSafety(c, ctx);
        c.run.ended = 'checked';
        return {
          skipRest: `already built at ${c.run.site.built!.revision} (nothing new upstream)`,
        };
      }
      if (c.run.sourceGone) {
        // Nothing of it is left to keep or repair: the next step checks it out again.
        await markPending(cfg.root, branch, c.req.switchTo ? 'switch' : 'update');
        await mailSafety(c, ctx);
        ctx.say(`${c.sourceDir} is missing (removed by hand?): checking out ${c.ref}`);
        return;
      }
      if (leftover) await finishInterrupted(c, ctx, leftover);
      await checkLocalWork(c, ctx, leftover);
    },
  };
}

/** Take the site's lock and read its record again: another run may have changed it since the plan was made. */
async function lockSite(c: UpdateContext): Promise<{ skipRest: string } | undefined> {
  const { root } = c.cfg;
  try {
    c.run.release = await acquireLock(root, branchLock(c.branch), {
      command: c.req.command,
      waitSeconds: c.req.waitSeconds,
    });
  } catch (e) {
    if (c.req.skipIfLocked && e instanceof LockedError)
      return { skipRest: `skipped, already being updated (${e.message})` };
    throw e;
  }
  const now = (await readState(root)).branches[c.branch];
  const broken = now ? await siteProblem(root, c.branch) : undefined;
  if (!now || broken) {
    await c.run.release();
    c.run.release = undefined; // nothing of ours to record
    throw broken ?? new LockedError(`${c.branch} was destroyed meanwhile`);
  }
  c.run.site = now;
  c.run.sourceGone = !existsSync(c.sourceDir);
  return undefined;
}

/**
 * Upstream has nothing new for a site built at its head: nothing runs in it, nothing is
 * recorded (its last update stays the last one that did something). Asked under the lock.
 */
function isBuiltAtHead(c: UpdateContext, leftover: Pending | undefined): boolean {
  const { site } = c.run;
  const built = site.built?.ref === c.ref && site.built.revision;
  return Boolean(
    built &&
    built === c.facts.upstreamHead &&
    site.revision === built &&
    !c.req.force &&
    !c.req.switchTo &&
    !leftover &&
    !c.run.sourceGone,
  );
}

async function mailSafety(c: UpdateContext, ctx: StepContext): Promise<void> {
  const fixed = await ensureMailSafety(c.cfg.root, c.branch);
  if (fixed.length)
    ctx.say(`restored mail_white_list for ${fixed.join(', ')} in etc/instances.ini`);
}

/** Our own half-done work is put right first: a refusal after this is a failure (exit 1). */
async function finishInterrupted(c: UpdateContext, ctx: StepContext, leftover: Pending) {
  await markPending(c.cfg.root, c.branch, c.req.switchTo ? 'switch' : 'update');
  c.run.interrupted = true;
  ctx.say(
    leftover.damaged
      ? `finishing an interrupted change (${leftover.damaged})`
      : `finishing an interrupted ${leftover.op} (pid ${leftover.pid}, ${leftover.started})`,
  );
  await c.source.repair.run(ctx.exec);
}

/** Local changes and commits refuse the update (exit 2, asked before anything is written), or go with --force. */
async function checkLocalWork(c: UpdateContext, ctx: StepContext, leftover: Pending | undefined) {
  const { req, source, sourceDir } = c;
  const refuse = (e: UsageError) => (c.run.interrupted ? asFailure(e) : e);
  // A commit gone for good (git: not upstream, and the shared store lost it) cannot be
  // asked about local changes; --force moves the site on all the same.
  let lost = false;
  const isDirty = await source.dirty.run(ctx.exec).catch((e: unknown) => {
    if (!(req.force && e instanceof LostCommitError)) throw e;
    ctx.say(`${e.message.split(':')[0]}: moving it on (--force)`);
    lost = true;
    return false;
  });
  if (isDirty && !req.force) throw refuse(localChanges(sourceDir));
  const commits = lost ? 0 : await source.local.run(ctx.exec);
  if (commits > 0 && !req.force) throw refuse(localCommits(sourceDir, commits));
  if (!leftover) await markPending(c.cfg.root, c.branch, req.switchTo ? 'switch' : 'update');
  await mailSafety(c, ctx);
  if (isDirty) {
    ctx.say('discarding local changes (--force)');
    await source.discard.run(ctx.exec);
  }
  if (commits > 0)
    ctx.say(
      `dropping ${commits} local commit${commits > 1 ? 's' : ''} (--force; the site keeps them under refs/karlstage/dropped/)`,
    );
}

/** Update (or switch) the source, or check it out again when it was removed; ends the job when its revision is built already. */
export function sourceStep(c: UpdateContext): Step {
  const { source, facts, expect, ref, req } = c;
  const moves = facts.sourceGone ? WHEN.there : expect === 'check' ? WHEN.changed : undefined;
  return {
    title: req.switchTo ? `switch to ${ref}` : 'update the source',
    // Two alternatives, never both: the one the facts expect is shown first, the other marked.
    commands: [
      ...(facts.sourceGone
        ? [...source.checkout.commands, ...source.move.commands.map(marked(moves))]
        : [
            ...source.move.commands.map(marked(moves)),
            ...source.checkout.commands.map(marked(WHEN.gone)),
          ]),
      ...source.describe.commands.map(marked(buildMark(c))),
    ],
    effects: source.move.effects,
    run: async (ctx) => {
      const { run } = c;
      if (run.sourceGone) {
        await mkdir(dirname(c.sourceDir), { recursive: true });
        run.revision = await source.checkout.run(ctx.exec);
        ctx.say(`checked out ${ref} at ${run.revision}`);
        run.moved = true;
        run.about = await source.describe.run(ctx.exec);
        return;
      }
      const outcome = await source.move.run(ctx.exec);
      run.revision = outcome.revision;
      run.note = outcome.note;
      if (run.note) ctx.say(run.note);
      run.moved = true;
      const built = run.site.built?.revision === run.revision && run.site.built.ref === ref;
      if (built && !req.force && !req.switchTo && !run.interrupted) {
        run.ended = 'built';
        return { skipRest: `already built at ${run.revision}` };
      }
      run.about = await source.describe.run(ctx.exec);
    },
  };
}

/** The mark of what runs only when the update brings a revision not built yet. */
const buildMark = (c: UpdateContext) =>
  c.expect === 'check' ? WHEN.changed : c.expect === 'maybe' ? WHEN.notBuilt : undefined;

/** A deployment command of the site, told the revision it runs for (known once the source moved). */
function deploymentCommandOf(c: UpdateContext, key: DeploymentKey): Command | undefined {
  return deploymentCommand(c.cfg, key, c.branch, () => stepEnv(c.cfg, c.run.site, c.run.revision));
}

function deploymentStepOf(c: UpdateContext, key: 'build' | 'migrate'): Step | undefined {
  const command = deploymentCommandOf(c, key);
  if (!command) return undefined;
  return {
    title: key,
    commands: [marked(buildMark(c))(command)],
    run: async (ctx) => void (await ctx.exec(command)),
  };
}

export const buildStep = (c: UpdateContext) => deploymentStepOf(c, 'build');
export const migrateStep = (c: UpdateContext) => deploymentStepOf(c, 'migrate');

/**
 * A site asleep or stopped by the operator is not started by an update: asleep, it wakes with
 * the new build on the first visit; stopped, it stays stopped until "karlstage start".
 */
export function restartStep(c: UpdateContext): Step | undefined {
  const restart = deploymentCommandOf(c, 'restart') ?? deploymentCommandOf(c, 'start');
  if (!restart) return undefined;
  const built = buildMark(c);
  return {
    title: 'restart',
    commands: [marked(built)({ ...restart, when: WHEN.running })],
    run: async (ctx) => {
      const want = wantOf(c.run.site);
      if (want !== 'running')
        return ctx.say(
          want === 'sleeping'
            ? 'asleep: it wakes with the new build on the first visit'
            : 'stopped by the operator: not started ("karlstage start" starts it)',
        );
      c.run.restarted = {};
      c.run.restarted.ms = await startAndWait(c.cfg, c.run.site.port, () => ctx.exec(restart));
    },
  };
}

/** The site's record after the job (a pure change of the record read under the state's lock). */
export function updatedRecord(
  b: BranchState,
  c: Pick<UpdateContext, 'req' | 'ref' | 'refKind' | 'run'>,
  result: JobResult,
  now: string,
) {
  const { run, req, ref, refKind } = c;
  if (run.moved && req.switchTo) Object.assign(b, { ref, refKind });
  else if (!b.refKind) b.refKind = refKind;
  if (run.revision) b.revision = run.revision;
  if (result.ok && !run.ended && run.revision)
    b.built = { revision: run.revision, ref: b.ref, at: now, ...run.about };
  if (run.restarted) {
    const failed = run.restarted.ms === undefined;
    b.run = afterStart(b.run, {
      at: now,
      by: req.command.split(' ')[0] ?? 'update',
      ms: run.restarted.ms ?? 0,
      ...(failed ? { error: result.error?.message ?? 'the restart failed' } : {}),
    });
  }
  b.lastUpdate = {
    at: now,
    result: result.ok ? 'ok' : 'failed',
    revision: run.revision,
    durationMs: result.durationMs,
    ...(result.error ? { error: result.error.message } : {}),
    ...(run.note || result.skipped
      ? { note: [run.note, result.skipped].filter(Boolean).join('; ') }
      : {}),
  };
}

/** After the job, success or failure: its result recorded, its marker cleared, its lock let go. */
async function recordUpdate(c: UpdateContext, result: JobResult): Promise<void> {
  const { run, branch } = c;
  const { root } = c.cfg;
  if (!run.release) return; // never got the lock: nothing of ours to record
  // Checked only, or refused before anything was written (exit 2): nothing to record.
  if (run.ended === 'checked' || result.error?.exitCode === EXIT.usage) return await run.release();
  try {
    const now = new Date().toISOString();
    // Also writes the site's marker when its ref, hold or dates changed.
    await updateState(root, (s) => {
      const b = s.branches[branch];
      if (b) updatedRecord(b, c, result, now);
    });
    // Only once the result is recorded: a marker left here makes the next run redo the work.
    await clearPending(root, branch);
    // An update or a switch counts as a use of the site (watch's idle clock).
    if (run.moved) await noteActivity(root, branch).catch(() => undefined);
  } finally {
    await run.release();
  }
}
