import type { Command } from '../core/command.js';
import { EXIT, KarlstageError, messageOf } from '../core/errors.js';
import { executePlan, type Plan, type Step } from '../core/plan.js';
import { layout } from '../model/layout.js';
import { LOCKS, withLocks } from '../model/locks.js';
import { readState, type State } from '../model/state.js';
import { eventsBetween, notify } from '../publish/notify.js';
import { branchViews, type BranchView } from '../model/views.js';
import type { AccessUser } from '../publish/access.js';
import { mailRefresh } from '../publish/mail.js';
import {
  renderRoutes,
  routeFacts,
  routesPlan,
  routesSteps,
  routesText,
} from '../publish/routes.js';
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
  const { cfg, out, options } = ctx;
  const command = opts.command ?? 'routes';
  await withLocks(
    cfg.root,
    [LOCKS.routes],
    { command, waitSeconds: options.wait ?? 60 },
    async () => {
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
    },
  );
}

/** What a change publishes: with `routes`, the routes too (when [staging] routes = auto). */
export interface Publishing {
  routes: boolean;
  /** The staged mail's maps (postfix told): true unless said. */
  mail?: boolean;
  /** The sites as they are now; else read when the first step runs. */
  views?: BranchView[];
  /** The users the routes let in, as they will be (access): else read now. */
  users?: AccessUser[];
  /** It runs only sometimes ("when a site was updated"): said of each of its commands. */
  when?: string;
}

/** The job that publishes a change, as the dry run shows it after the command's own jobs. */
export const PUBLISH = 'publish';

/**
 * What a change publishes, as declared steps: the site list, the staged mail's maps (postmap,
 * postfix told) and, with `routes` and [staging] routes = auto, the routes. A site list or mail
 * map that cannot be written is a warning; routes that cannot be installed fail the job. The
 * sites are read when the first step runs; what the routes are made of besides them (nginx -V,
 * the users) is read now.
 */
export async function publishSteps(ctx: CommandContext, opts: Publishing): Promise<Step[]> {
  const { cfg } = ctx;
  let views = opts.views;
  const current = async () => (views ??= await branchViews(cfg, await readState(cfg.root)));
  const mail = opts.mail === false ? undefined : await mailRefresh(cfg);
  const routes = opts.routes && cfg.staging.routes === 'auto';
  const facts = routes
    ? await routeFacts(cfg, opts.users).catch((e: unknown) => e as Error)
    : undefined;
  return [
    {
      title: 'write the site list',
      effects: [`write ${layout.sites(cfg.root)}/`],
      run: async (s) => {
        await refreshSiteList(cfg, await current()).catch((e: Error) =>
          s.warn(`could not refresh the site list: ${e.message}`),
        );
      },
    },
    // A created or destroyed site can start or end a customer's staged mail route.
    ...(mail
      ? [
          {
            title: 'bring the staged mail routes up to date',
            commands: mail.commands,
            effects: mail.effects,
            run: async (s) => {
              await mail
                .run(await current(), s.exec)
                .catch((e: Error) =>
                  s.warn(
                    `could not bring the mail routes up to date: ${e.message}; run "karlstage mail --install"`,
                  ),
                );
            },
          } satisfies Step,
        ]
      : []),
    ...(routes
      ? routesSteps(cfg, async () => {
          if (facts instanceof Error) throw facts;
          const now = await current();
          return {
            text: await routesText(cfg, now, facts!),
            branches: now.map((v) => v.site.name),
          };
        })
      : []),
  ];
}

/** The plan a dry run shows: the command's own jobs, then what publishes the change. */
export async function withPublishing(
  ctx: CommandContext,
  plan: Plan,
  opts: Publishing,
): Promise<Plan> {
  const sometimes = (c: Command): Command => ({
    ...c,
    when: [opts.when, c.when].filter(Boolean).join(', and '),
  });
  const steps = (await publishSteps(ctx, opts)).map((s) =>
    opts.when && s.commands ? { ...s, commands: s.commands.map(sometimes) } : s,
  );
  return { ...plan, jobs: [...plan.jobs, { name: PUBLISH, steps }] };
}

/**
 * After a change to the branch sites: the state and every instances.ini are
 * read once, and the site list, the mail transport map and (with [staging]
 * routes = auto) the routes are brought up to date from that one reading, by
 * the steps of publishSteps (the dry run showed them). A site list or mail map
 * that cannot be written is a warning; routes that cannot be installed fail the
 * command — unless the change itself failed, whose error stays the last word
 * (the routes' trouble is then a warning).
 */
export async function afterChange(
  ctx: CommandContext,
  opts: { routes: boolean; changeFailed?: boolean },
): Promise<void> {
  const { cfg, out, options } = ctx;
  if (options.dryRun) return;
  const views = await branchViews(cfg, await readState(cfg.root));
  const routes = opts.routes && cfg.staging.routes === 'auto';
  const publish = async () => {
    const steps = await publishSteps(ctx, { routes, views });
    const [r] = await executePlan(
      { command: PUBLISH, jobs: [{ name: PUBLISH, steps }] },
      { out, logs: layout.logs(cfg.root) },
    );
    if (r && !r.ok && r.error) throw r.error;
  };
  if (!routes) return publish();
  try {
    await withLocks(
      cfg.root,
      [LOCKS.routes],
      { command: 'routes (after a change)', waitSeconds: options.wait ?? 60 },
      publish,
    );
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
  const { cfg, out, options } = ctx;
  if (options.dryRun || (!cfg.notify.webhook && cfg.notify.mail.length === 0)) return;
  try {
    const events = await eventsBetween(cfg, before, await readState(cfg.root));
    for (const r of await notify(cfg, events))
      if (!r.ok) out.warn(`the ${r.channel} notification was not delivered: ${r.error}`);
  } catch (e) {
    out.warn(`notifications: ${messageOf(e)}`);
  }
}
