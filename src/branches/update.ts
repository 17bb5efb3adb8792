import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Config } from '../config/config.js';
import { asFailure, EXIT, LockedError, type UsageError } from '../core/errors.js';
import type { Job, Step } from '../core/plan.js';
import { layout } from '../model/layout.js';
import { acquireLock, branchLock, type Release } from '../model/locks.js';
import { ensureMailSafety } from '../model/mail-safety.js';
import { clearPending, markPending, readPending } from '../model/pending.js';
import { localChanges, localCommits, siteProblem } from '../model/sites.js';
import { readState, updateState, type BranchState } from '../model/state.js';
import { noteActivity } from '../model/activity.js';
import { wantOf } from '../model/site-state.js';
import { deploymentCommand, deploymentStep, startAndWait, stepEnv } from '../model/steps.js';
import { afterStart } from './lifecycle.js';
import { LostCommitError, type BuildFacts, type RefKind, type Vcs } from '../vcs/vcs.js';

export interface UpdateRequest {
  /** Rebuild even when the revision is already built; update over local changes. */
  force?: boolean;
  /** switch: the ref to move to, and what it is (read upstream when the plan was made). */
  switchTo?: { ref: string; kind: RefKind };
  /** Seconds to wait for this branch's lock. */
  waitSeconds?: number;
  /** poll --build: a branch whose update is already running is skipped, not waited on. */
  skipIfLocked?: boolean;
  /**
   * The upstream head of the site's ref, asked when the plan was made. When it is
   * the revision already built (and nothing was interrupted), the job ends once it
   * holds the lock: no VCS command runs in the site.
   */
  upstreamHead?: string;
  command: string;
}

/** What a site's ref is: recorded when it was chosen; asked upstream for sites recorded before that. */
export async function refKindOf(vcs: Vcs, site: BranchState): Promise<RefKind> {
  return site.refKind ?? (await vcs.checkRef(site.ref));
}

/**
 * One branch site's update (or switch): VCS update, then build, migrate and
 * restart, skipped when that revision is already built — unless an earlier
 * change of this site was interrupted, which is always finished. The state
 * changes only at the end: the last good revision stays recorded when a step
 * fails, and a result that cannot be recorded fails the job (the pending
 * marker stays, so the next run redoes it).
 */
export function updateJob(
  cfg: Config,
  known: BranchState,
  vcs: Vcs,
  kind: RefKind,
  req: UpdateRequest,
): Job {
  const branch = known.name;
  const { root } = cfg;
  const dir = layout.branch(root, branch);
  const sourceDir = `${dir}/${cfg.source.path}`;
  const ref = req.switchTo?.ref ?? known.ref;
  const refKind = req.switchTo?.kind ?? kind;
  let release: Release | undefined;
  let site: BranchState = known;
  let revision: string | undefined;
  let note: string | undefined;
  let skipped = false;
  let checkedOnly = false;
  let moved = false;
  let interrupted = false;
  /** Its source checkout was removed by hand: checked out again, and built. */
  let sourceGone = false;
  let about: BuildFacts = {};

  const dirty = vcs.isDirty(sourceDir);
  const discard = vcs.discardChanges(sourceDir);
  const local = vcs.localCommits(sourceDir, branch);
  const repair = vcs.repair(sourceDir);
  const move = req.switchTo
    ? (() => {
        const p = vcs.switchTo(sourceDir, ref, refKind, branch);
        return {
          ...p,
          run: async (run: Parameters<typeof p.run>[0]) => ({ revision: await p.run(run) }),
        };
      })()
    : vcs.update(sourceDir, ref, refKind, branch);
  const describe = vcs.describeBuild(sourceDir, ref, cfg.source.default);
  const checkout = vcs.checkout(ref, refKind, sourceDir, branch);
  const when = (w: string) => (c: (typeof dirty.commands)[number]) => ({ ...c, when: w });

  const steps: Step[] = [
    {
      title: 'lock and check',
      commands: [
        ...repair.commands.map(when('when an earlier run was interrupted')),
        ...dirty.commands,
        ...discard.commands.map(when('when there are local changes and --force is given')),
        ...local.commands,
      ],
      effects: [
        `lock ${branch} (${layout.locks(root)}/${branchLock(branch)}.lock)`,
        ...(repair.effects?.map((e) => `${e} [when an earlier run was interrupted]`) ?? []),
        `put back a missing mail_white_list in ${layout.instancesIni(root, branch)}`,
      ],
      run: async (ctx) => {
        try {
          release = await acquireLock(root, branchLock(branch), {
            command: req.command,
            waitSeconds: req.waitSeconds,
          });
        } catch (e) {
          if (req.skipIfLocked && e instanceof LockedError)
            return { skipRest: `skipped, already being updated (${e.message})` };
          throw e;
        }
        // Read again under the lock: another run may have changed it since the plan was made.
        const now = (await readState(root)).branches[branch];
        const broken = now ? await siteProblem(root, branch) : undefined;
        if (!now || broken) {
          await release();
          release = undefined; // nothing of ours to record
          throw broken ?? new LockedError(`${branch} was destroyed meanwhile`);
        }
        site = now;
        sourceGone = !existsSync(sourceDir);
        const leftover = await readPending(root, branch);
        const built = site.built?.ref === ref && site.built.revision;
        // Upstream has nothing new for a site built at its head: nothing runs in it, nothing is
        // recorded (its last update stays the last one that did something).
        if (
          built &&
          built === req.upstreamHead &&
          site.revision === built &&
          !req.force &&
          !req.switchTo &&
          !leftover &&
          !sourceGone
        ) {
          const fixed = await ensureMailSafety(root, branch);
          if (fixed.length)
            ctx.say(`restored mail_white_list for ${fixed.join(', ')} in etc/instances.ini`);
          skipped = true;
          checkedOnly = true;
          return { skipRest: `already built at ${built} (nothing new upstream)` };
        }
        if (sourceGone) {
          // Nothing of it is left to keep or repair: the next step checks it out again.
          await markPending(root, branch, req.switchTo ? 'switch' : 'update');
          const fixed = await ensureMailSafety(root, branch);
          if (fixed.length)
            ctx.say(`restored mail_white_list for ${fixed.join(', ')} in etc/instances.ini`);
          ctx.say(`${sourceDir} is missing (removed by hand?): checking out ${ref}`);
          return;
        }
        if (leftover) {
          // Our own half-done work is put right first: a refusal after this is a failure (exit 1).
          await markPending(root, branch, req.switchTo ? 'switch' : 'update');
          interrupted = true;
          ctx.say(
            leftover.damaged
              ? `finishing an interrupted change (${leftover.damaged})`
              : `finishing an interrupted ${leftover.op} (pid ${leftover.pid}, ${leftover.started})`,
          );
          await repair.run(ctx.exec);
        }
        // What refuses the update (exit 2) is asked before anything is written.
        const refuse = (e: UsageError) => (interrupted ? asFailure(e) : e);
        // A commit gone for good (git: not upstream, and the shared store lost it) cannot be
        // asked about local changes; --force moves the site on all the same.
        let lost = false;
        const isDirty = await dirty.run(ctx.exec).catch((e: unknown) => {
          if (!(req.force && e instanceof LostCommitError)) throw e;
          ctx.say(`${e.message.split(':')[0]}: moving it on (--force)`);
          lost = true;
          return false;
        });
        if (isDirty && !req.force) throw refuse(localChanges(sourceDir));
        const commits = lost ? 0 : await local.run(ctx.exec);
        if (commits > 0 && !req.force) throw refuse(localCommits(sourceDir, commits));
        if (!leftover) await markPending(root, branch, req.switchTo ? 'switch' : 'update');
        const fixed = await ensureMailSafety(root, branch);
        if (fixed.length)
          ctx.say(`restored mail_white_list for ${fixed.join(', ')} in etc/instances.ini`);
        if (isDirty) {
          ctx.say('discarding local changes (--force)');
          await discard.run(ctx.exec);
        }
        if (commits > 0)
          ctx.say(
            `dropping ${commits} local commit${commits > 1 ? 's' : ''} (--force; the site keeps them under refs/karlstage/dropped/)`,
          );
      },
    },
    {
      title: req.switchTo ? `switch to ${ref}` : 'update the source',
      commands: [
        ...checkout.commands.map(when('when the source checkout is missing')),
        ...move.commands,
        ...describe.commands.map(when('when it is not built yet')),
      ],
      effects: move.effects,
      run: async (ctx) => {
        if (sourceGone) {
          await mkdir(dirname(sourceDir), { recursive: true });
          revision = await checkout.run(ctx.exec);
          ctx.say(`checked out ${ref} at ${revision}`);
          moved = true;
          about = await describe.run(ctx.exec);
          return;
        }
        const outcome = await move.run(ctx.exec);
        revision = outcome.revision;
        note = 'note' in outcome ? (outcome.note as string | undefined) : undefined;
        if (note) ctx.say(note);
        moved = true;
        const built = site.built?.revision === revision && site.built.ref === ref;
        if (built && !req.force && !req.switchTo && !interrupted) {
          skipped = true;
          return { skipRest: `already built at ${revision}` };
        }
        about = await describe.run(ctx.exec);
      },
    },
  ];
  const env = () => stepEnv(cfg, site, revision);
  for (const key of ['build', 'migrate'] as const) {
    const step = deploymentStep(cfg, key, branch, env);
    if (step) steps.push(step);
  }
  // A site asleep or stopped by the operator is not started by an update: asleep, it wakes with
  // the new build on the first visit; stopped, it stays stopped until "karlstage start".
  const restart =
    deploymentCommand(cfg, 'restart', branch, env) ?? deploymentCommand(cfg, 'start', branch, env);
  let restarted: { ms?: number } | undefined;
  if (restart)
    steps.push({
      title: 'restart',
      commands: [{ ...restart, when: 'when the site should be running (not asleep or stopped)' }],
      run: async (ctx) => {
        const want = wantOf(site);
        if (want !== 'running')
          return ctx.say(
            want === 'sleeping'
              ? 'asleep: it wakes with the new build on the first visit'
              : 'stopped by the operator: not started ("karlstage start" starts it)',
          );
        restarted = {};
        restarted.ms = await startAndWait(cfg, site.port, () => ctx.exec(restart));
      },
    });

  return {
    name: branch,
    steps,
    finally: async (result) => {
      if (!release) return; // never got the lock: nothing of ours to record
      // Checked only, or refused before anything was written (exit 2): nothing to record.
      if (checkedOnly || result.error?.exitCode === EXIT.usage) return await release();
      try {
        const now = new Date().toISOString();
        // Also writes the site's marker when its ref, hold or dates changed.
        await updateState(root, (s) => {
          const b = s.branches[branch];
          if (!b) return;
          if (moved && req.switchTo) Object.assign(b, { ref, refKind });
          else if (!b.refKind) b.refKind = refKind;
          if (revision) b.revision = revision;
          if (result.ok && !skipped && revision)
            b.built = { revision, ref: b.ref, at: now, ...about };
          if (restarted) {
            const failed = restarted.ms === undefined;
            b.run = afterStart(b.run, {
              at: now,
              by: req.command.split(' ')[0] ?? 'update',
              ms: restarted.ms ?? 0,
              ...(failed ? { error: result.error?.message ?? 'the restart failed' } : {}),
            });
          }
          b.lastUpdate = {
            at: now,
            result: result.ok ? 'ok' : 'failed',
            revision,
            durationMs: result.durationMs,
            ...(result.error ? { error: result.error.message } : {}),
            ...(note || result.skipped
              ? { note: [note, result.skipped].filter(Boolean).join('; ') }
              : {}),
          };
        });
        // Only once the result is recorded: a marker left here makes the next run redo the work.
        await clearPending(root, branch);
        // An update or a switch counts as a use of the site (watch's idle clock).
        if (moved) await noteActivity(root, branch).catch(() => undefined);
      } finally {
        await release();
      }
    },
  };
}
