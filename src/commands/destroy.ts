import { planDestroy } from '../branches/destroy.js';
import { checkName } from '../config/names.js';
import { afterChange, withPublishing } from '../context/after-change.js';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { carryOut, dryRun, finishJobs, jobsAsJson, refused } from '../context/report.js';
import { UsageError } from '../core/errors.js';
import { branchLock, LOCKS, withLocks } from '../model/locks.js';
import { knownSite } from '../model/sites.js';
import type { BranchState } from '../model/state.js';

export interface DestroyOptions extends GlobalOptions {
  branch: string;
  yes?: boolean;
  /** Asked under the locks: a reason not to destroy it after all (prune: held or updated meanwhile). */
  unless?: (site: BranchState) => string | undefined;
}

export async function destroy(opts: DestroyOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  const branch = checkName('branch', opts.branch);
  await knownSite(cfg.root, branch);
  if (!opts.yes && !options.dryRun)
    throw new UsageError(`destroy removes ${branch}'s folder and its data: pass --yes to confirm`);
  if (options.dryRun) {
    const plan = await planDestroy(cfg, await knownSite(cfg.root, branch));
    return dryRun(ctx, await withPublishing(ctx, plan, { routes: true }));
  }
  return withLocks(
    cfg.root,
    [LOCKS.layout, branchLock(branch)],
    { command: `destroy ${branch}`, waitSeconds: options.wait },
    async () => {
      // Read again under the locks: the plan is made from what is there now.
      const now = await knownSite(cfg.root, branch);
      const keep = opts.unless?.(now);
      if (keep) {
        out.line(`kept    ${branch}: ${keep}`);
        return { ok: true, kept: keep, jobs: [] };
      }
      const results = await carryOut(ctx, await planDestroy(cfg, now));
      const ok = results.every((r) => r.ok);
      if (!refused(results)) await afterChange(ctx, { routes: true, changeFailed: !ok });
      const result = { ok, jobs: jobsAsJson(results) };
      finishJobs(ctx, results, 'destroy', result);
      out.line(`destroyed ${branch}`);
      return result;
    },
  );
}
