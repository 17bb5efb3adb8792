import { siteVcs, storeStep } from '../branches/source.js';
import { builtAtHead, gatherUpdateFacts, updateJob } from '../branches/update.js';
import { checkName } from '../config/names.js';
import { afterChange, tellPeople, withPublishing } from '../context/after-change.js';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { carryOut, dryRun, finishJobs, jobsAsJson, refused } from '../context/report.js';
import { UsageError } from '../core/errors.js';
import type { Plan } from '../core/plan.js';
import { noSuchSite } from '../model/sites.js';
import { readState } from '../model/state.js';

export interface UpdateOptions extends GlobalOptions {
  branches: string[];
  all?: boolean;
  force?: boolean;
  jobs?: number;
}

export async function update(opts: UpdateOptions) {
  const ctx = await commandContext(opts);
  const { cfg, options } = ctx;
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
  const sites = names.map((n) => state.branches[checkName('branch', n)] ?? throwNoSite(n));
  const vcs = await siteVcs(cfg);
  const command = `update ${names.join(' ')}`;
  // Asked once for every site (one ls-remote, or one svn list per folder): a site whose head is
  // what it built is done once it holds its lock, and the store is fetched only if some site moves.
  const heads = opts.force
    ? undefined
    : await vcs.remoteHeads([...new Set(sites.map((s) => s.ref))]);
  const facts = await gatherUpdateFacts(cfg, vcs, sites, { heads });
  // Nothing new upstream, built, nothing interrupted: its job only locks and checks the site.
  const moving = facts.flatMap((f) =>
    builtAtHead(f, opts.force) ? [] : [{ ref: f.site.ref, kind: f.kind }],
  );
  // One fetch into the shared store for every site of this run (git); with nothing new, only a
  // check of the store (a missing or damaged one is repaired before any site uses it).
  const store = storeStep(cfg, vcs, command, { fetch: moving.length > 0, targets: moving });
  const request = { force: opts.force, waitSeconds: options.wait, command };
  const plan: Plan = {
    command,
    concurrency: opts.jobs ?? cfg.staging.jobs,
    ...(store ? { before: { name: 'store', steps: [store] } } : {}),
    jobs: facts.map((f) => updateJob(cfg, vcs, f, request)),
  };
  if (options.dryRun)
    return dryRun(
      ctx,
      await withPublishing(ctx, plan, { routes: false, when: 'when a site was updated' }),
    );
  const results = await carryOut(ctx, plan);
  // The site list and the mail map show what changed; a run that only checked, or was refused
  // (exit 2), changed nothing.
  if (results.some((r) => !r.ok || !r.skipped) && !refused(results)) {
    await afterChange(ctx, { routes: false });
    await tellPeople(ctx, state);
  }
  return finishJobs(ctx, results, 'update', {
    ok: results.every((r) => r.ok),
    jobs: jobsAsJson(results),
  });
}

function throwNoSite(name: string): never {
  throw noSuchSite(name);
}
