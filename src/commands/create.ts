import { planCreate } from '../branches/create.js';
import { checkName } from '../config/names.js';
import { afterChange, withPublishing } from '../context/after-change.js';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { carryOut, dryRun, finishJobs, jobsAsJson, refused } from '../context/report.js';
import { branchLock, LOCKS, withLocks } from '../model/locks.js';
import { readState } from '../model/state.js';
import { publicBase } from '../model/views.js';

export interface CreateOptions extends GlobalOptions {
  branch: string;
  ref?: string;
  customers?: string[];
}

export async function create(opts: CreateOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  checkName('branch', opts.branch);
  const request = { branch: opts.branch, ref: opts.ref, customers: opts.customers };
  if (options.dryRun)
    return dryRun(ctx, await withPublishing(ctx, await planCreate(cfg, request), { routes: true }));
  // "layout" serialises creates and destroys: slots and ports are handed out under it.
  return withLocks(
    cfg.root,
    [LOCKS.layout, branchLock(opts.branch)],
    { command: `create ${opts.branch}`, waitSeconds: options.wait },
    async () => {
      const results = await carryOut(ctx, await planCreate(cfg, request));
      const ok = results.every((r) => r.ok);
      // Refused (exit 2): nothing was changed, so nothing generated is written either.
      if (!refused(results)) await afterChange(ctx, { routes: true, changeFailed: !ok });
      const site = (await readState(cfg.root)).branches[opts.branch];
      const result = { ok, jobs: jobsAsJson(results), site };
      finishJobs(ctx, results, 'create', result);
      out.line(
        `created ${opts.branch}: ${site?.ref} at ${site?.revision}, app on 127.0.0.1:${site?.port}, ${publicBase(cfg)}/${opts.branch}/`,
      );
      return result;
    },
  );
}
