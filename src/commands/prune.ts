import { commandContext, type GlobalOptions } from '../context/context.js';
import { EXIT, KarlstageError, LockedError, messageOf } from '../core/errors.js';
import type { Config } from '../config/config.js';
import { readState, type BranchState } from '../model/state.js';
import { branchViews, staleness } from '../model/views.js';
import { destroy } from './destroy.js';

export interface PruneOptions extends GlobalOptions {
  yes?: boolean;
}

/**
 * The stale branch sites (ref gone upstream, or not updated for [staging]
 * stale_after days): shown, and with --yes destroyed. A held site and a
 * customer's mail branch are never removed, and it says so. Without --yes
 * nothing is removed, ever (cron may run it for the report).
 */
export async function prune(opts: PruneOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  const views = (await branchViews(cfg, await readState(cfg.root))).filter((v) => v.stale);
  const kept: { branch: string; why: string }[] = [];
  const stale: { branch: string; why: string }[] = [];
  for (const v of views) {
    const keep = keepReason(cfg, v.site);
    if (keep) kept.push({ branch: v.site.name, why: `${keep}: kept` });
    else stale.push({ branch: v.site.name, why: v.stale! });
  }
  for (const k of kept)
    out.line(
      `kept    ${k.branch}: stale (${views.find((v) => v.site.name === k.branch)!.stale}), but ${k.why}`,
    );
  if (stale.length === 0) {
    out.line('nothing to prune: no stale branch site that may be removed');
    return { removed: [], stale: [], kept };
  }
  if (!opts.yes || options.dryRun) {
    for (const s of stale) out.line(`stale   ${s.branch}: ${s.why}`);
    if (!opts.yes)
      out.line(
        `"karlstage prune --yes" removes ${stale.length === 1 ? 'it' : `these ${stale.length}`}`,
      );
    // --yes --dry-run: what each removal would do, as destroy's dry run shows it.
    const plans = [];
    if (opts.yes) for (const s of stale) plans.push(await destroy({ ...opts, branch: s.branch }));
    return { removed: [], stale, kept, ...(opts.yes ? { plans } : {}) };
  }
  const removed: string[] = [];
  const failed: { branch: string; error: string; locked: boolean }[] = [];
  for (const s of stale) {
    try {
      const r = await destroy({
        ...opts,
        branch: s.branch,
        yes: true,
        // Looked at again under its lock: held or updated meanwhile, it stays.
        unless: (site) => keepReason(cfg, site),
      });
      if ('kept' in r) kept.push({ branch: s.branch, why: `${r.kept}: kept` });
      else removed.push(s.branch);
    } catch (e) {
      // One site being updated (or failing to go) does not stop the others.
      failed.push({ branch: s.branch, error: messageOf(e), locked: e instanceof LockedError });
    }
  }
  const result = { removed, stale, kept, failed };
  if (failed.length) {
    const err = new KarlstageError(
      `prune: ${failed.length} of ${stale.length} stale site(s) not removed`,
      failed.every((f) => f.locked) ? EXIT.locked : EXIT.failure,
      failed.map((f) => `${f.branch}: ${f.error}`),
    );
    err.result = result;
    throw err;
  }
  return result;
}

/** Why a stale site stays: held, a customer's mail branch, or (looked at again) no longer stale. */
function keepReason(cfg: Config, site: BranchState): string | undefined {
  if (site.hold) return `held by ${site.hold.by}`;
  const mailOf = cfg.customers.filter((c) => c.mailBranch === site.name).map((c) => c.name);
  if (mailOf.length) return `${mailOf.join(', ')}'s mail branch`;
  return staleness(cfg, site) ? undefined : 'no longer stale';
}
