import { pollBranches } from '../branches/poll.js';
import { siteVcs, storeStep } from '../branches/source.js';
import { checkName } from '../config/names.js';
import { commandContext, type CommandContext, type GlobalOptions } from '../context/context.js';
import type { DryRunResult, jobsAsJson } from '../context/report.js';
import { EXIT, KarlstageError } from '../core/errors.js';
import { tidyLogs } from '../core/logs.js';
import type { JobResult, Plan } from '../core/plan.js';
import { layout } from '../model/layout.js';
import { recordChecked } from '../model/checked.js';
import { listPending } from '../model/pending.js';
import {
  readState,
  updateState,
  type BranchState,
  type PollRecord,
  type State,
} from '../model/state.js';
import { describePoll, shortRevision } from '../model/upstream.js';

export interface PollOptions extends GlobalOptions {
  branches: string[];
  build?: boolean;
  jobs?: number;
}

export interface PollResult {
  branches: ({ name: string; ref: string; built?: string; state: string } & PollRecord)[];
  builds: ReturnType<typeof jobsAsJson>;
  /** With --build --dry-run: the plan of the builds. */
  plan?: DryRunResult;
}

/**
 * Poll often, build rarely: which branch sites are behind upstream, asked
 * without fetching; with --build, update exactly those, through update's own
 * code path. Exit 0 only when every poll and every build succeeded.
 *
 * cron runs this every few minutes and nearly always nothing is new: that path
 * loads only what it needs (bench/poll.mjs); building, publishing and
 * reporting a failure are imported when they happen.
 */
export async function poll(opts: PollOptions): Promise<PollResult> {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  // The cron line of poll appends to cron.log every few minutes: keep it from growing without end.
  if (!options.dryRun) await tidyLogs(layout.logs(cfg.root)).catch(() => undefined);
  const state = await readState(cfg.root);
  let sites: BranchState[];
  if (opts.branches.length) {
    sites = [];
    for (const n of opts.branches) {
      const site = state.branches[checkName('branch', n)];
      if (!site) throw (await import('../model/sites.js')).noSuchSite(n);
      sites.push(site);
    }
  } else {
    sites = Object.values(state.branches).sort((a, b) => a.slot - b.slot);
    if (sites.length === 0) {
      // Not an error: cron may be installed before the first branch site exists.
      out.line('no branch sites to poll yet');
      return { branches: [], builds: [] } satisfies PollResult;
    }
  }

  const records = await pollBranches(cfg, sites);
  // What was found is written to state.json only when it changed; when it was asked, cheaply.
  const found = sites.filter((site) => pollChanged(site.poll, records.get(site.name)));
  if (!options.dryRun) {
    if (found.length)
      await updateState(cfg.root, (s) => {
        for (const site of found) {
          const b = s.branches[site.name];
          if (b) b.poll = records.get(site.name);
        }
      });
    await recordChecked(cfg.root, [...records.keys()], new Date().toISOString());
  }

  const rows = sites.map((site) => {
    const r = records.get(site.name)!;
    return {
      name: site.name,
      ref: site.ref,
      built: site.built?.revision,
      state: describePoll(r),
      ...r,
    };
  });
  for (const r of rows) {
    const site = sites.find((s) => s.name === r.name)!;
    const remote = r.remote === null ? '-' : shortRevision(r.remote, site.vcs);
    const colour = r.error || r.remote === null ? out.c.red : r.behind ? out.c.yellow : out.c.green;
    out.line(
      `${r.name.padEnd(12)} built ${shortRevision(r.built, site.vcs).padEnd(11)} upstream ${remote.padEnd(11)} ${colour(r.state)}${r.error ? `: ${r.error}` : ''}`,
    );
  }

  // Behind upstream, or an update of it was interrupted: finished whatever the revision says.
  const pending = await listPending(cfg.root);
  const behind = sites.filter(
    (s) =>
      records.get(s.name)?.behind ||
      ['update', 'switch', 'unknown'].includes(pending[s.name]?.op ?? ''),
  );
  const { builds, buildsJson, plan } = opts.build
    ? await buildBehind(ctx, state, behind, opts)
    : { builds: [] as JobResult[], buildsJson: [], plan: undefined };
  // The site list shows upstream state: refresh it when that changed or something was built.
  const changed = builds.length > 0 || found.length > 0;
  if (changed) {
    const { afterChange, tellPeople } = await import('../context/after-change.js');
    await afterChange(ctx, { routes: false });
    await tellPeople(ctx, state);
  }
  const result: PollResult = {
    branches: rows,
    builds: buildsJson,
    ...(plan ? { plan } : {}),
  };

  const failures = [
    ...rows.filter((r) => r.error).map((r) => `${r.name}: poll failed: ${r.error}`),
    ...rows
      .filter((r) => r.remote === null && !r.error)
      .map((r) => `${r.name}: ${r.ref} is gone upstream: switch it to another ref or destroy it`),
    ...builds.filter((b) => !b.ok).map((b) => `${b.name}: ${b.error?.message}`),
  ];
  for (const b of builds)
    if (b.ok) out.line(`${out.c.green('built')}   ${b.name}${b.skipped ? `: ${b.skipped}` : ''}`);
  if (failures.length) {
    const { withResult } = await import('../context/report.js');
    throw withResult(
      new KarlstageError(
        `poll: ${failures.length} problem${failures.length > 1 ? 's' : ''}`,
        EXIT.failure,
        failures,
      ),
      result,
    );
  }
  return result;
}

/**
 * poll --build: update the sites that are behind, through update's own plan. Nothing to build:
 * the shared git store is only looked at (no program runs: its files, and a keep ref for each
 * site), and checked and repaired only when something there is amiss.
 */
async function buildBehind(
  ctx: CommandContext,
  state: State,
  behind: BranchState[],
  opts: PollOptions,
): Promise<{ builds: JobResult[]; buildsJson: PollResult['builds']; plan?: DryRunResult }> {
  const { cfg, options } = ctx;
  const storeGone =
    !behind.length &&
    cfg.source.vcs === 'git' &&
    !(await import('../vcs/git-store.js')).storeLooksWhole(
      layout.gitStore(cfg.root),
      Object.values(state.branches)
        .filter((b) => b.vcs === 'git' && b.revision)
        .map((b) => b.name),
    );
  if (!behind.length && !storeGone) return { builds: [], buildsJson: [] };
  const [{ gatherUpdateFacts, updateJob }, report] = await Promise.all([
    import('../branches/update.js'),
    import('../context/report.js'),
  ]);
  const vcs = await siteVcs(cfg);
  const command = behind.length
    ? `poll --build (update ${behind.map((s) => s.name).join(' ')})`
    : 'poll --build (repair the shared git store)';
  const facts = await gatherUpdateFacts(cfg, vcs, behind);
  const store = storeStep(cfg, vcs, command, {
    fetch: behind.length > 0,
    targets: facts.map((f) => ({ ref: f.site.ref, kind: f.kind })),
  });
  const updates: Plan = {
    command,
    concurrency: opts.jobs ?? cfg.staging.jobs,
    ...(store ? { before: { name: 'store', steps: [store] } } : {}),
    jobs: facts.map((f) => updateJob(cfg, vcs, f, { command, skipIfLocked: true })),
  };
  if (options.dryRun) {
    const { withPublishing } = await import('../context/after-change.js');
    const when = 'when a site was built or its upstream moved';
    const plan = report.dryRun(ctx, await withPublishing(ctx, updates, { routes: false, when }));
    return { builds: [], buildsJson: [], plan };
  }
  const builds = await report.carryOut(ctx, updates);
  return { builds, buildsJson: report.jobsAsJson(builds) };
}

/** Whether a poll found something other than the last one did (its time aside). */
function pollChanged(before: PollRecord | undefined, now: PollRecord | undefined): boolean {
  return (
    !before ||
    !now ||
    before.remote !== now.remote ||
    before.behind !== now.behind ||
    before.newCommits !== now.newCommits ||
    before.error !== now.error
  );
}
