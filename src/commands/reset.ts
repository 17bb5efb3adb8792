import { configuredCustomer } from '../config/config.js';
import { checkName } from '../config/names.js';
import { afterChange, withPublishing } from '../context/after-change.js';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { carryOut, dryRun, finishJobs, refused } from '../context/report.js';
import { exec } from '../core/command.js';
import { UsageError } from '../core/errors.js';
import { ProductionGuard } from '../db/guard.js';
import { goldenName, syncTargets } from '../db/names.js';
import { noteActivity } from '../model/activity.js';
import { layout } from '../model/layout.js';
import { LOCKS, withLocks } from '../model/locks.js';
import { knownSite, siteCustomers } from '../model/sites.js';
import { readState, updateState } from '../model/state.js';
import { goldenOf, recordResults } from '../sync/outcome.js';
import type { SyncFacts } from '../sync/context.js';
import { goldenLookup, mirroredFiles, resetPlan } from '../sync/sync.js';

export interface ResetOptions extends GlobalOptions {
  branch: string;
  customers?: string[];
}

/**
 * Fresh data for one branch site now, from each customer's golden copy (last
 * night's sanitized copy): the tester who wrecked the data gets it back without
 * waiting for the night, and production is not read. A held site is reset
 * because it is named.
 */
export async function reset(opts: ResetOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  const site = await knownSite(cfg.root, checkName('branch', opts.branch));
  const served = (await siteCustomers(cfg.root, site.name)).map((i) => i.name);
  const names = opts.customers ?? served;
  const customers = names.map((n) => {
    const c = configuredCustomer(cfg, n);
    if (!served.includes(n))
      throw new UsageError(`${site.name} does not serve ${n} (see its etc/instances.ini)`);
    return c;
  });
  if (customers.length === 0)
    throw new UsageError(`${site.name} serves no customer: nothing to reset`);

  const command = `reset ${site.name}`;
  const guard = await ProductionGuard.establish(cfg, { memory: layout.productions(cfg.root) });
  await guard.refuseProduction(customers.flatMap((c) => syncTargets(c.name, [site.name])));
  const work = async () => {
    // Refused before anything is written: a reset needs last night's copy.
    const found = (
      await exec(
        goldenLookup(
          cfg,
          guard,
          customers.map((c) => c.name),
        ),
      )
    ).stdout
      .split('\n')
      .filter(Boolean);
    const missing = customers.filter((c) => !found.includes(goldenName(c.name)));
    if (missing.length)
      throw new UsageError(
        `there is no golden copy of ${missing.map((c) => c.name).join(', ')} yet: run "karlstage sync ${site.name}" (or wait for the nightly sync) first`,
      );
    const state = await readState(cfg.root);
    const facts: SyncFacts = {
      broken: [],
      served: Object.fromEntries(customers.map((c) => [c.name, [site.name]])),
      goldenIsASite: Boolean(state.branches.golden),
      guard,
      mirrored: mirroredFiles(cfg, customers),
    };
    const { jobs, outcome } = resetPlan(cfg, facts, { branch: site, customers });
    const plan = { command, jobs };
    // The dry run shows what publishes the change too (the site list, the mail maps).
    if (options.dryRun) return dryRun(ctx, await withPublishing(ctx, plan, { routes: false }));
    const results = await carryOut(ctx, plan);
    // Refused (the guard's check, exit 2): nothing was written, and nothing is recorded.
    if (refused(results))
      return finishJobs(ctx, results, 'reset', { branch: site.name, ...outcome });
    // The data it holds now is the golden copy's: as old as the newest copy any site took from it.
    await updateState(cfg.root, (s) =>
      recordResults(s, outcome.branches, {
        copyOf: (customer, before) => goldenOf(state, customer) ?? before,
        lastSync: false,
      }),
    );
    await noteActivity(cfg.root, site.name).catch(() => undefined);
    await afterChange(ctx, { routes: false });
    for (const r of outcome.branches.filter((x) => x.ok))
      out.line(`${site.name} has ${r.customer}'s golden copy again (unavailable ${r.swapMs} ms)`);
    return finishJobs(ctx, results, 'reset', { branch: site.name, ...outcome });
  };
  if (options.dryRun) return work();
  return withLocks(cfg.root, [LOCKS.sync], { command, waitSeconds: options.wait }, work);
}
