import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import writeFileAtomic from 'write-file-atomic';
import { readInstances, setInstanceKeys } from '../instances/instances-file.js';
import type { Config } from '../config/config.js';
import { KarlstageError, LockedError, UsageError } from '../core/errors.js';
import { layout } from '../core/layout.js';
import { acquireLock, type Release } from '../core/lock.js';
import type { Job, Step } from '../core/plan.js';
import { readState, updateState, type BranchState } from '../core/state.js';
import { clearPending, markPending, readPending } from './pending.js';
import { deploymentStep, stepEnv } from './steps.js';
import { describeBuild, sourceVcs, type Vcs } from './vcs.js';

export interface UpdateRequest {
  /** Rebuild even when the revision is already built; update over local changes. */
  force?: boolean;
  /** switch: the ref to move to before updating. */
  switchTo?: string;
  /** Seconds to wait for this branch's lock. */
  waitSeconds?: number;
  /** poll --build: a branch whose update is already running is skipped, not waited on. */
  skipIfLocked?: boolean;
  command: string;
}

export const branchLock = (branch: string) => `branch-${branch}`;

/** Read a branch site's record, or say clearly that there is none. */
export async function knownBranch(root: string, branch: string): Promise<BranchState> {
  const b = (await readState(root)).branches[branch];
  if (!b)
    throw new UsageError(`there is no branch site "${branch}": "karlstage status" lists them`);
  if (!existsSync(layout.branch(root, branch)))
    throw new KarlstageError(
      `${layout.branch(root, branch)} is missing: destroy "${branch}" and create it again`,
    );
  await readInstances(layout.instancesIni(root, branch)); // missing or malformed: a usage error, before anything runs
  return b;
}

/**
 * Every staging instance must keep mail_white_list (a copy of production data
 * must never mail real people); put it back where someone removed it, and
 * change nothing else in the file.
 */
async function ensureMailSafety(root: string, branch: string): Promise<string[]> {
  const file = layout.instancesIni(root, branch);
  const instances = await readInstances(file);
  const unsafe = instances.filter((i) => !i.values.mail_white_list).map((i) => i.name);
  if (unsafe.length === 0) return [];
  let text = await readFile(file, 'utf8');
  for (const name of unsafe)
    text = setInstanceKeys(text, name, { mail_white_list: layout.allowList(root) });
  await writeFileAtomic(file, text, { mode: 0o600 });
  return unsafe;
}

/**
 * One branch site's update (or switch): VCS update, then build, migrate and
 * restart, skipped when that revision is already built. The state changes only
 * at the end: the last good revision stays recorded when a step fails.
 */
export function updateJob(cfg: Config, known: BranchState, probe: Vcs, req: UpdateRequest): Job {
  const branch = known.name;
  const { root } = cfg;
  const dir = layout.branch(root, branch);
  const sourceDir = `${dir}/${cfg.source.path}`;
  let release: Release | undefined;
  let site: BranchState | undefined;
  let revision: string | undefined;
  let note: string | undefined;
  let skipped = false;
  let vcsChanged = false;
  let about: Awaited<ReturnType<typeof describeBuild>> = {};
  const ref = () => req.switchTo ?? site?.ref ?? '';

  const steps: Step[] = [
    {
      title: 'lock and check',
      preview: [
        `lock ${branch} (${layout.locks(root)}/${branchLock(branch)}.lock)`,
        `check ${sourceDir} for local changes; put back a missing mail_white_list in etc/instances.ini`,
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
        site = await knownBranch(root, branch);
        const leftover = await readPending(root, branch);
        await markPending(root, branch, 'update');
        if (leftover) {
          ctx.say(`repairing after an interrupted ${leftover.op} (pid ${leftover.pid})`);
          await (await sourceVcs(cfg, ctx.log)).repair(sourceDir);
        }
        const fixed = await ensureMailSafety(root, branch);
        if (fixed.length)
          ctx.say(`restored mail_white_list for ${fixed.join(', ')} in etc/instances.ini`);
        const vcs = await sourceVcs(cfg, ctx.log);
        if (await vcs.isDirty(sourceDir)) {
          if (!req.force)
            throw new KarlstageError(
              `${sourceDir} has local changes: commit or revert them, or pass --force to discard them`,
            );
          ctx.say('discarding local changes (--force)');
          await vcs.discardChanges(sourceDir);
        }
      },
    },
    {
      title: req.switchTo ? `switch to ${req.switchTo}` : 'update the source',
      preview: probe.preview(
        req.switchTo ? 'switch' : 'update',
        req.switchTo ?? known.ref,
        sourceDir,
      ),
      run: async (ctx) => {
        const vcs = await sourceVcs(cfg, ctx.log);
        if (req.switchTo) {
          revision = await vcs.switchTo(sourceDir, req.switchTo);
        } else {
          const outcome = await vcs.update(sourceDir, ref());
          revision = outcome.revision;
          note = outcome.note;
          if (note) ctx.say(note);
        }
        vcsChanged = true;
        if (
          !req.force &&
          !req.switchTo &&
          site?.built?.revision === revision &&
          site.built.ref === ref()
        ) {
          skipped = true;
          return { skipRest: `already built at ${revision}` };
        }
        about = await describeBuild(vcs, sourceDir, ref(), cfg.source.default);
      },
    },
  ];
  // Runs after the lock step, which reads the site's record.
  const env = () => stepEnv(cfg, site!, revision);
  for (const key of ['build', 'migrate'] as const) {
    const step = deploymentStep(cfg, key, branch, env);
    if (step) steps.push(step);
  }
  const restart =
    deploymentStep(cfg, 'restart', branch, env) ?? deploymentStep(cfg, 'start', branch, env);
  if (restart) steps.push(restart);

  return {
    name: branch,
    steps,
    finally: async (result) => {
      try {
        if (!release) return; // never got the lock: nothing of ours to record
        const now = new Date().toISOString();
        await updateState(root, (s) => {
          const b = s.branches[branch];
          if (!b) return;
          if (vcsChanged && req.switchTo) b.ref = req.switchTo;
          if (revision) b.revision = revision;
          if (result.ok && !skipped && revision)
            b.built = { revision, ref: b.ref, at: now, ...about };
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
        await clearPending(root, branch);
      } finally {
        await release?.();
      }
    },
  };
}
