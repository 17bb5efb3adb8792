import { installRoutes, publishedViews } from '../context/after-change.js';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { dryRun } from '../context/report.js';
import { renderRoutes, routesPlan } from '../publish/routes.js';

/** Render, check, install and reload the web server configuration for the one TLS host. */
export async function routes(opts: GlobalOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, g } = ctx;
  if (g.dryRun) {
    return dryRun(ctx, routesPlan(cfg, await renderRoutes(cfg, await publishedViews(ctx))));
  }
  await installRoutes(ctx);
  out.line(`routes installed in ${cfg.staging.nginxConf} and nginx reloaded`);
  return { ok: true, file: cfg.staging.nginxConf };
}
