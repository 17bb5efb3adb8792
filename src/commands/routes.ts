import { withLocks } from '../core/lock.js';
import { executePlan } from '../core/plan.js';
import { readState } from '../core/state.js';
import { refreshSiteList } from '../web/site-list.js';
import { installSteps, renderRoutes } from '../web/routes.js';
import { commandContext, finishJobs, type CommandContext, type GlobalOptions } from './context.js';

/** Render, check, install and reload the web server configuration for the one TLS host. */
export async function installRoutes(ctx: CommandContext): Promise<void> {
  const { cfg, out, g } = ctx;
  const work = async () => {
    const text = await renderRoutes(cfg, await readState(cfg.root));
    if (!g.dryRun) await refreshSiteList(cfg); // routes serve it at "/"
    const results = await executePlan(
      { command: 'routes', jobs: [{ name: 'routes', steps: installSteps(cfg, () => text) }] },
      { out, root: cfg.root, dryRun: g.dryRun },
    );
    if (!g.dryRun) finishJobs(out, results, 'routes');
  };
  if (g.dryRun) return work();
  return withLocks(cfg.root, ['routes'], { command: 'routes', waitSeconds: g.wait ?? 60 }, work);
}

export async function routes(opts: GlobalOptions): Promise<void> {
  const ctx = await commandContext(opts);
  await installRoutes(ctx);
  ctx.out.result({ ok: true, file: ctx.cfg.staging.nginxConf });
  if (!ctx.g.dryRun)
    ctx.out.line(`routes installed in ${ctx.cfg.staging.nginxConf} and nginx reloaded`);
}
