import { siteVcs, storeStep } from '../branches/source.js';
import { gatherUpdateFacts, updateJob } from '../branches/update.js';
import { checkName } from '../config/names.js';
import { afterChange, withPublishing } from '../context/after-change.js';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { carryOut, dryRun, finishJobs, jobsAsJson, refused } from '../context/report.js';
import type { Plan, Step, StepContext } from '../core/plan.js';
import { layout } from '../model/layout.js';
import { knownSite, localChanges, siteProblem } from '../model/sites.js';
import { direct } from '../vcs/vcs.js';

export interface SwitchOptions extends GlobalOptions {
  branch: string;
  ref: string;
  force?: boolean;
}

export async function switchBranch(opts: SwitchOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  const site = await knownSite(cfg.root, checkName('branch', opts.branch));
  const broken = await siteProblem(cfg.root, site.name);
  if (broken) throw broken;
  const vcs = await siteVcs(cfg);
  vcs.validateRef(opts.ref);
  const kind = await vcs.checkRef(opts.ref); // a read: also in --dry-run
  // Local changes refuse the switch before anything runs (checked again under the lock, after
  // the shared store is checked: a git that cannot answer yet is asked again there).
  const sourceDir = `${layout.branch(cfg.root, site.name)}/${cfg.source.path}`;
  const dirty = opts.force
    ? false
    : await vcs
        .isDirty(sourceDir)
        .run(direct())
        .catch(() => false);
  if (dirty) throw localChanges(sourceDir);
  const command = `switch ${opts.branch} ${opts.ref}`;
  const store = storeStep(cfg, vcs, command, { fetch: true, targets: [{ ref: opts.ref, kind }] });
  // A commit id is looked up in the store before the site is touched: one that is not there
  // refuses the switch (exit 2) with nothing changed.
  const locate = vcs.locate(opts.ref, kind);
  const before: Step[] = [
    ...(store ? [{ ...store, readOnly: true }] : []),
    ...(locate
      ? [
          {
            title: `find ${opts.ref}`,
            commands: locate.commands,
            readOnly: true,
            run: (c: StepContext) => locate.run(c.exec),
          },
        ]
      : []),
  ];
  const plan: Plan = {
    command,
    ...(before.length ? { before: { name: 'store', steps: before } } : {}),
    jobs: (await gatherUpdateFacts(cfg, vcs, [site], { kind })).map((f) =>
      updateJob(cfg, vcs, f, {
        switchTo: { ref: opts.ref, kind },
        force: opts.force,
        waitSeconds: options.wait,
        command,
      }),
    ),
  };
  if (options.dryRun) return dryRun(ctx, await withPublishing(ctx, plan, { routes: true }));
  const results = await carryOut(ctx, plan);
  const ok = results.every((r) => r.ok);
  if (!refused(results)) await afterChange(ctx, { routes: true, changeFailed: !ok });
  const result = { ok, from: site.ref, to: opts.ref, jobs: jobsAsJson(results) };
  finishJobs(ctx, results, 'switch', result);
  out.line(`switched ${opts.branch} from ${site.ref} to ${opts.ref}`);
  return result;
}
