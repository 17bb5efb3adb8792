import { installRoutes, publishedViews } from '../context/after-change.js';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { dryRun } from '../context/report.js';
import { renderRoutes, routesPlan } from '../publish/routes.js';

/** Render, check, install and reload the web server configuration for the one TLS host. */
export async function routes(opts: GlobalOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  if (options.dryRun) {
    const views = await publishedViews(ctx);
    const branches = views.map((v) => v.site.name);
    return dryRun(ctx, routesPlan(cfg, await renderRoutes(cfg, views), 'routes', branches));
  }
  await installRoutes(ctx);
  out.line(`routes installed in ${cfg.staging.nginxConf} and nginx reloaded`);
  return { ok: true, file: cfg.staging.nginxConf };
}
