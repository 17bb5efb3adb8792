import { knownBranch, updateJob } from '../branches/update.js';
import { sourceVcs } from '../branches/vcs.js';
import { UsageError } from '../core/errors.js';
import { layout } from '../core/layout.js';
import { checkName } from '../config/names.js';
import { executePlan } from '../core/plan.js';
import {
  afterChange,
  commandContext,
  finishJobs,
  jobsAsJson,
  type GlobalOptions,
} from './context.js';

export interface SwitchOptions extends GlobalOptions {
  branch: string;
  ref: string;
  force?: boolean;
}

export async function switchBranch(opts: SwitchOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, g } = ctx;
  checkName('branch', opts.branch);
  const site = await knownBranch(cfg.root, opts.branch);
  const vcs = await sourceVcs(cfg);
  vcs.validateRef(opts.ref);
  await vcs.checkRef(opts.ref);
  const sourceDir = `${layout.branch(cfg.root, opts.branch)}/${cfg.source.path}`;
  if (!opts.force && (await vcs.isDirty(sourceDir)))
    throw new UsageError(
      `${sourceDir} has local changes: commit or revert them, or pass --force to discard them`,
    );
  const command = `switch ${opts.branch} ${opts.ref}`;
  const plan = {
    command,
    jobs: [
      updateJob(cfg, site, vcs, { switchTo: opts.ref, force: true, waitSeconds: g.wait, command }),
    ],
  };
  const results = await executePlan(plan, { out, root: cfg.root, dryRun: g.dryRun });
  if (g.dryRun) return results;
  await afterChange(ctx, { routes: true });
  out.result({
    ok: results.every((r) => r.ok),
    from: site.ref,
    to: opts.ref,
    jobs: jobsAsJson(results),
  });
  finishJobs(out, results, 'switch');
  out.line(`switched ${opts.branch} from ${site.ref} to ${opts.ref}`);
  return results;
}
