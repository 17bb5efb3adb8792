import { userInfo } from 'node:os';
import { siteActionJob, type SiteAction } from '../branches/lifecycle.js';
import { checkName } from '../config/names.js';
import { afterChange, tellPeople, withPublishing } from '../context/after-change.js';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { carryOut, dryRun, finishJobs, jobsAsJson } from '../context/report.js';
import { UsageError } from '../core/errors.js';
import type { Plan } from '../core/plan.js';
import { noSuchSite } from '../model/sites.js';
import { readState } from '../model/state.js';

export interface RunControlOptions extends GlobalOptions {
  branches: string[];
  all?: boolean;
  jobs?: number;
}

const DONE: Record<SiteAction, string> = {
  start: 'started',
  stop: 'stopped (it stays stopped until "karlstage start")',
  restart: 'restarted',
  sleep: 'asleep (the first logged-in visitor wakes it)',
};

/**
 * `start`, `stop`, `restart` and `sleep`: the deployment's steps under each site's lock. A site
 * stopped this way stays stopped: nothing restarts or wakes it until `start`.
 */
export async function runControl(action: SiteAction, opts: RunControlOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  const state = await readState(cfg.root);
  if (opts.all && opts.branches.length)
    throw new UsageError('give branch names or --all, not both');
  const names = opts.all ? Object.keys(state.branches).sort() : opts.branches;
  if (names.length === 0)
    throw new UsageError(
      opts.all
        ? 'there are no branch sites yet'
        : `name the branch sites to ${action}, or pass --all`,
    );
  const sites = names.map((n) => state.branches[checkName('branch', n)] ?? throwNoSite(n));
  const command = `${action} ${names.join(' ')}`;
  const plan: Plan = {
    command,
    concurrency: opts.jobs ?? cfg.staging.jobs,
    jobs: sites.map((site) =>
      siteActionJob(cfg, site, action, {
        command,
        by: userInfo().username,
        waitSeconds: options.wait,
      }),
    ),
  };
  if (options.dryRun) return dryRun(ctx, await withPublishing(ctx, plan, { routes: false }));
  const results = await carryOut(ctx, plan);
  // The site list shows each site's state; people hear of a recovery.
  await afterChange(ctx, { routes: false });
  await tellPeople(ctx, state);
  const result = { ok: results.every((r) => r.ok), jobs: jobsAsJson(results) };
  finishJobs(ctx, results, action, result);
  // Several jobs were each given a line by finishJobs already.
  if (results.length === 1)
    for (const r of results) out.line(`${r.name}: ${r.skipped ?? DONE[action]}`);
  return result;
}

function throwNoSite(name: string): never {
  throw noSuchSite(name);
}
