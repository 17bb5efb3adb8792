import { planDestroy } from '../branches/destroy.js';
import { branchLock } from '../branches/update.js';
import { UsageError } from '../core/errors.js';
import { withLocks } from '../core/lock.js';
import { checkName } from '../config/names.js';
import { executePlan } from '../core/plan.js';
import { readState } from '../core/state.js';
import {
  afterChange,
  commandContext,
  finishJobs,
  jobsAsJson,
  type GlobalOptions,
} from './context.js';

export interface DestroyOptions extends GlobalOptions {
  branch: string;
  yes?: boolean;
}

export async function destroy(opts: DestroyOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, g } = ctx;
  checkName('branch', opts.branch);
  if (!(await readState(cfg.root)).branches[opts.branch])
    throw new UsageError(`there is no branch site "${opts.branch}": "karlstage status" lists them`);
  if (!opts.yes && !g.dryRun)
    throw new UsageError(
      `destroy removes ${opts.branch}'s folder and its data: pass --yes to confirm`,
    );
  const work = async () => {
    const site = (await readState(cfg.root)).branches[opts.branch];
    if (!site) throw new UsageError(`there is no branch site "${opts.branch}"`);
    const results = await executePlan(await planDestroy(cfg, site), {
      out,
      root: cfg.root,
      dryRun: g.dryRun,
    });
    if (g.dryRun) return results;
    await afterChange(ctx, { routes: true });
    out.result({ ok: results.every((r) => r.ok), jobs: jobsAsJson(results) });
    finishJobs(out, results, 'destroy');
    out.line(`destroyed ${opts.branch}`);
    return results;
  };
  if (g.dryRun) return work();
  return withLocks(
    cfg.root,
    ['layout', branchLock(opts.branch)],
    { command: `destroy ${opts.branch}`, waitSeconds: g.wait },
    work,
  );
}
