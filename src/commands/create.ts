import { planCreate } from '../branches/create.js';
import { branchLock } from '../branches/update.js';
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

export interface CreateOptions extends GlobalOptions {
  branch: string;
  ref?: string;
  customers?: string[];
}

export async function create(opts: CreateOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, g } = ctx;
  checkName('branch', opts.branch);
  const work = async () => {
    const plan = await planCreate(cfg, {
      branch: opts.branch,
      ref: opts.ref,
      customers: opts.customers,
    });
    const results = await executePlan(plan, { out, root: cfg.root, dryRun: g.dryRun });
    if (g.dryRun) return undefined;
    await afterChange(ctx, { routes: true });
    const site = (await readState(cfg.root)).branches[opts.branch];
    out.result({ ok: results.every((r) => r.ok), jobs: jobsAsJson(results), site });
    finishJobs(out, results, 'create');
    out.line(
      `created ${opts.branch}: ${site?.ref} at ${site?.revision}, app on 127.0.0.1:${site?.port}, https://${cfg.staging.host}/${opts.branch}/`,
    );
    return site;
  };
  if (g.dryRun) return work();
  // "layout" serialises creates and destroys: slots and ports are handed out under it.
  return withLocks(
    cfg.root,
    ['layout', branchLock(opts.branch)],
    { command: `create ${opts.branch}`, waitSeconds: g.wait },
    work,
  );
}
