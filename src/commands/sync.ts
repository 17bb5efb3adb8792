import { configuredCustomer } from '../config/config.js';
import { formatDuration } from '../core/format.js';
import { knownSite } from '../model/sites.js';
import type { Config } from '../config/config.js';
import { UsageError } from '../core/errors.js';
import type { JobResult } from '../core/plan.js';
import { noteActivity } from '../model/activity.js';
import { layout } from '../model/layout.js';
import { LOCKS, withLocks } from '../model/locks.js';
import { checkName } from '../config/names.js';
import { readState, updateState, type BranchState, type State } from '../model/state.js';
import { ProductionGuard } from '../db/guard.js';
import { failedBeforeBranches, recordResults, type SyncOutcome } from '../sync/outcome.js';
import { gatherSyncFacts, syncPlan, syncTargetsOf, type SyncRequest } from '../sync/sync.js';
import { afterChange, withPublishing, tellPeople } from '../context/after-change.js';
import { commandContext, type CommandContext, type GlobalOptions } from '../context/context.js';
import { carryOut, dryRun, finishJobs } from '../context/report.js';

export interface SyncOptions extends GlobalOptions {
  branches: string[];
  customers?: string[];
  nightly?: boolean;
}

/**
 * production → staging data, per customer. With --nightly (cron): every branch
 * site not held, every customer with a production database, a summary at the end.
 */
export async function sync(opts: SyncOptions) {
  const ctx = await commandContext(opts);
  const { cfg, options } = ctx;
  if (opts.nightly && opts.branches.length)
    throw new UsageError(
      '--nightly syncs every branch site: give branch names or --nightly, not both',
    );
  const state = await readState(cfg.root);
  const req = await syncRequest(cfg, state, opts);
  // Who is production and who is staging is asked of the servers before anything (a lock too) is written.
  const guard = await ProductionGuard.establish(cfg, { memory: layout.productions(cfg.root) });
  const facts = await gatherSyncFacts(cfg, state, req, guard);
  await guard.refuseProduction(syncTargetsOf(facts, req.customers));
  // People are told once the lock is let go (below): a slow mail server or webhook never holds
  // up the next sync, a reset, or anyone waiting for the lock.
  let recorded = false;
  const work = async () => {
    if (!options.dryRun) await guard.remember();
    const { jobs, outcome } = syncPlan(cfg, facts, req);
    const plan = { command: req.command, jobs };
    // The dry run shows what publishes the change too (the site list, the mail maps).
    if (options.dryRun) return dryRun(ctx, await withPublishing(ctx, plan, { routes: false }));
    const results = await carryOut(ctx, plan);
    failedBeforeBranches(outcome, results, new Date().toISOString());
    await updateState(cfg.root, (s) =>
      recordResults(s, outcome.branches, {
        copyOf: (customer) => outcome.customers[customer],
        lastSync: true,
      }),
    );
    recorded = true;
    await afterChange(ctx, { routes: false });
    return syncSummary(ctx, req, results, outcome);
  };
  if (options.dryRun) return work();
  try {
    return await withLocks(
      cfg.root,
      [LOCKS.sync],
      { command: req.command, waitSeconds: options.wait },
      work,
    );
  } finally {
    if (recorded) await tellPeople(ctx, state);
  }
}

/** The branch sites and customers a sync is asked for (bad names refused, exit 2). */
async function syncRequest(cfg: Config, state: State, opts: SyncOptions): Promise<SyncRequest> {
  let branches: BranchState[];
  if (opts.branches.length) {
    branches = [];
    for (const n of opts.branches) branches.push(await knownSite(cfg.root, checkName('branch', n)));
  } else branches = Object.values(state.branches).sort((a, b) => a.slot - b.slot);
  // A held branch site keeps its data: skipped unless named explicitly.
  const held = opts.branches.length ? [] : branches.filter((b) => b.hold).map((b) => b.name);
  branches = branches.filter((b) => !held.includes(b.name));

  let customers = cfg.customers;
  if (opts.customers) {
    customers = opts.customers.map((n) => {
      const c = configuredCustomer(cfg, n);
      if (!c.production && !c.productionDump)
        throw new UsageError(
          `[customer:${n}] has no production or production_dump setting: nothing to sync from`,
        );
      return c;
    });
  } else customers = customers.filter((c) => c.production || c.productionDump);
  if (customers.length === 0)
    throw new UsageError(`no customer in ${cfg.file} has a production setting: nothing to sync`);
  const command = opts.nightly ? 'sync --nightly' : `sync ${opts.branches.join(' ')}`.trim();
  return { branches, customers, held, command };
}

/** One line per branch site × customer (and held site); the error that sums up the failures. */
function syncSummary(
  ctx: CommandContext,
  req: SyncRequest,
  results: JobResult[],
  outcome: SyncOutcome,
) {
  const { out } = ctx;
  const result = {
    ok: results.every((r) => r.ok),
    ...outcome,
    customersFailed: results
      .filter((r) => !r.ok)
      .map((r) => ({ name: r.name, error: r.error?.message, details: r.error?.details })),
  };
  const isCustomer = (name: string) => req.customers.some((c) => c.name === name);
  const total = results.filter((r) => isCustomer(r.name)).length;
  return finishJobs(
    ctx,
    results,
    {
      what: 'sync',
      // Per customer and branch site, not per job: what the operator reads in the morning.
      lines: [
        ...req.held.map((h) => `held    ${h}: kept its data (held out of the nightly sync)`),
        ...outcome.branches.map(
          (r) =>
            `${r.ok ? out.c.green('ok') : out.c.red('failed')}      ${r.customer} → ${r.branch}${r.ok ? ` (${formatDuration(r.durationMs)}, unavailable ${r.swapMs} ms)` : `: ${r.error}`}`,
        ),
      ],
      headline: (failed) => {
        const customers = failed.filter((r) => isCustomer(r.name)).length;
        const sites = failed.length - customers;
        return `sync: ${[
          customers && `${customers} of ${total} customer${total > 1 ? 's' : ''} failed`,
          sites && `${sites} branch site${sites > 1 ? 's' : ''} could not be read`,
        ]
          .filter(Boolean)
          .join(', ')}`;
      },
      details: (r) => [
        `${r.name}: ${r.error?.message}`,
        ...(r.error?.details ?? []).map((d) => `  ${d}`),
      ],
    },
    result,
  );
}

/** Hold a branch site out of the nightly sync (someone is testing on its data), or release it. */
export async function hold(
  opts: GlobalOptions & { branch: string; release?: boolean; reason?: string },
) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  const site = await knownSite(cfg.root, checkName('branch', opts.branch));
  const { userInfo } = await import('node:os');
  const plan = {
    command: `hold ${site.name}`,
    jobs: [
      {
        name: site.name,
        steps: [
          {
            title: opts.release ? 'release it' : 'hold it out of the nightly sync',
            effects: [`write ${layout.state(cfg.root)}`],
            run: async () =>
              void (await updateState(cfg.root, (s) => {
                const b = s.branches[site.name];
                if (!b) return;
                if (opts.release) delete b.hold;
                else
                  b.hold = {
                    since: new Date().toISOString(),
                    by: userInfo().username,
                    ...(opts.reason ? { reason: opts.reason } : {}),
                  };
              })),
          },
        ],
      },
    ],
  };
  if (options.dryRun) return dryRun(ctx, plan);
  const results = await carryOut(ctx, plan);
  // Someone tests on it (or stopped doing so): a use of the site, for watch's idle clock.
  await noteActivity(cfg.root, site.name).catch(() => undefined);
  await afterChange(ctx, { routes: false });
  const result = { branch: site.name, held: !opts.release };
  finishJobs(ctx, results, 'hold', result);
  out.line(
    opts.release
      ? `${site.name} takes part in the nightly sync again`
      : `${site.name} is held out of the nightly sync; "karlstage hold ${site.name} --release" ends that`,
  );
  return result;
}
