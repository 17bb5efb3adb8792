import { knownBranch, updateJob } from '../branches/update.js';
import { sourceVcs } from '../branches/vcs.js';
import { UsageError } from '../core/errors.js';
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

export interface UpdateOptions extends GlobalOptions {
  branches: string[];
  all?: boolean;
  force?: boolean;
  jobs?: number;
}

export async function update(opts: UpdateOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, g } = ctx;
  const state = await readState(cfg.root);
  let names = opts.branches;
  if (opts.all) {
    if (names.length) throw new UsageError('give branch names or --all, not both');
    names = Object.keys(state.branches).sort();
    if (names.length === 0)
      throw new UsageError('there are no branch sites yet: "karlstage create BRANCH" makes one');
  } else if (names.length === 0) {
    throw new UsageError('name the branch sites to update, or pass --all');
  }
  const sites = [];
  for (const n of names) {
    checkName('branch', n);
    sites.push(await knownBranch(cfg.root, n));
  }
  const probe = await sourceVcs(cfg);
  const command = `update ${names.join(' ')}`;
  const plan = {
    command,
    concurrency: opts.jobs ?? cfg.staging.jobs,
    jobs: sites.map((site) =>
      updateJob(cfg, site, probe, { force: opts.force, waitSeconds: g.wait, command }),
    ),
  };
  const results = await executePlan(plan, { out, root: cfg.root, dryRun: g.dryRun });
  if (g.dryRun) return results;
  await afterChange(ctx, { routes: false });
  out.result({ ok: results.every((r) => r.ok), jobs: jobsAsJson(results) });
  finishJobs(out, results, 'update');
  return results;
}
