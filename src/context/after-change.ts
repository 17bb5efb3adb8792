import { EXIT, KarlstageError, messageOf } from '../core/errors.js';
import { executePlan } from '../core/plan.js';
import { layout } from '../model/layout.js';
import { LOCKS, withLocks } from '../model/locks.js';
import { readState, type State } from '../model/state.js';
import { eventsBetween, notify } from '../publish/notify.js';
import { branchViews, type BranchView } from '../model/views.js';
import { refreshMail } from '../publish/mail.js';
import { renderRoutes, routesPlan } from '../publish/routes.js';
import { refreshSiteList } from '../publish/site-list.js';
import type { CommandContext } from './context.js';

/**
 * The views of every branch site, for a command that publishes them (routes, site
 * list, crontab): a broken site is said in its one line, since it is published with
 * no customer.
 */
export async function publishedViews(ctx: CommandContext): Promise<BranchView[]> {
  const views = await branchViews(ctx.cfg, await readState(ctx.cfg.root));
  for (const v of views)
    if (v.customersProblem) ctx.out.warn(`${v.site.name}: ${v.customersProblem}`);
  return views;
}

/**
 * Render, check (nginx -t), install and reload the routes, under the routes
 * lock, from the views given (or read now, with the site list they serve at /).
 */
export async function installRoutes(
  ctx: CommandContext,
  opts: { views?: BranchView[]; command?: string } = {},
): Promise<void> {
  const { cfg, out, g } = ctx;
  const command = opts.command ?? 'routes';
  await withLocks(cfg.root, [LOCKS.routes], { command, waitSeconds: g.wait ?? 60 }, async () => {
    const views = opts.views ?? (await publishedViews(ctx));
    // Rendered and planned first: routes that would be refused (a locked host without users, a
    // path nginx cannot take) change nothing, the site list included.
    const text = await renderRoutes(cfg, views);
    const plan = routesPlan(
      cfg,
      text,
      command,
      views.map((v) => v.site.name),
    );
    if (!opts.views) await refreshSiteList(cfg, views); // the routes serve it at "/"
    const [r] = await executePlan(plan, {
      out,
      logs: layout.logs(cfg.root),
    });
    if (r && !r.ok && r.error) throw r.error;
  });
}

/**
 * After a change to the branch sites: the state and every instances.ini are
 * read once, and the site list, the mail transport map and (with [staging]
 * routes = auto) the routes are brought up to date from that one reading. A
 * site list or mail map that cannot be written is a warning; routes that
 * cannot be installed fail the command — unless the change itself failed, whose
 * error stays the last word (the routes' trouble is then a warning).
 */
export async function afterChange(
  ctx: CommandContext,
  opts: { routes: boolean; changeFailed?: boolean },
): Promise<void> {
  const { cfg, out, g } = ctx;
  if (g.dryRun) return;
  const views = await branchViews(cfg, await readState(cfg.root));
  await refreshSiteList(cfg, views).catch((e: Error) =>
    out.warn(`could not refresh the site list: ${e.message}`),
  );
  // A created or destroyed site can start or end a customer's staged mail route.
  await refreshMail(cfg, views).catch((e: Error) =>
    out.warn(
      `could not bring the mail routes up to date: ${e.message}; run "karlstage mail --install"`,
    ),
  );
  if (!opts.routes || cfg.staging.routes !== 'auto') return;
  try {
    await installRoutes(ctx, { views, command: 'routes (after a change)' });
  } catch (e) {
    const why = `the routes were not updated: ${messageOf(e)}; fix that, then run "karlstage routes"`;
    if (opts.changeFailed) return out.warn(why);
    throw new KarlstageError(
      `the change is made, but ${why}`,
      EXIT.failure,
      e instanceof KarlstageError ? e.details : [],
    );
  }
}

/**
 * After an update, poll or sync: tell the people of [notify] what changed since
 * `before` (failures, new builds, recoveries). Never fails the command: a
 * delivery that did not get through is a warning, logged and shown by status.
 */
export async function tellPeople(ctx: CommandContext, before: State): Promise<void> {
  const { cfg, out, g } = ctx;
  if (g.dryRun || (!cfg.notify.webhook && cfg.notify.mail.length === 0)) return;
  try {
    const events = await eventsBetween(cfg, before, await readState(cfg.root));
    for (const r of await notify(cfg, events))
      if (!r.ok) out.warn(`the ${r.channel} notification was not delivered: ${r.error}`);
  } catch (e) {
    out.warn(`notifications: ${messageOf(e)}`);
  }
}
