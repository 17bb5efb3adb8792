import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../core/files.js';
import { parseConfig, configuredCustomer } from '../config/config.js';
import { checkName } from '../config/names.js';
import { commandContext, type CommandContext, type GlobalOptions } from '../context/context.js';
import { carryOut, dryRun, finishJobs } from '../context/report.js';
import { asFailure, isKarlstageError, UsageError } from '../core/errors.js';
import { table } from '../core/format.js';
import type { StepContext } from '../core/plan.js';
import { setSectionKeys } from '../core/ini-edit.js';
import { layout } from '../model/layout.js';
import { LOCKS, withLocks } from '../model/locks.js';
import { writeAllowList } from '../model/mail-safety.js';
import { knownSite, siteCustomers } from '../model/sites.js';
import { readState } from '../model/state.js';
import { branchViews } from '../model/views.js';
import { installCrontab, renderCrontab } from '../publish/crontab.js';
import {
  installPlan,
  maildirUsers,
  mailOutTo,
  mailRefresh,
  mailRoutes,
  maildirOf,
  postfixInstalled,
  renderPostfix,
  renderTransport,
  transportFile,
} from '../publish/mail.js';
import { messagesOf } from '../model/maildir.js';
import { join } from 'node:path';
import { refreshSiteList } from '../publish/site-list.js';

export interface MailOptions extends GlobalOptions {
  customer?: string;
  branch?: string;
  install?: boolean;
  caught?: boolean;
}

/** "mail": what postfix would be given; "mail --install"; "mail --caught"; "mail CUSTOMER BRANCH". */
export async function mail(opts: MailOptions) {
  const modes = [opts.install, opts.caught, opts.customer !== undefined].filter(Boolean).length;
  if (modes > 1 || (opts.customer !== undefined) !== (opts.branch !== undefined))
    throw new UsageError(
      'give CUSTOMER BRANCH, or --install, or --caught, or nothing (to see the postfix configuration)',
    );
  if (opts.install) return installMail(opts);
  if (opts.caught) return listCaught(opts);
  if (opts.customer !== undefined) return moveMail(opts, opts.customer, opts.branch!);
  return showMail(opts);
}

async function installMail(opts: MailOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  const views = await branchViews(cfg, await readState(cfg.root));
  const plan = installPlan(cfg, views, 'mail --install');
  if (options.dryRun) return dryRun(ctx, plan);
  return underMailLock(ctx, plan.command, async () => {
    const routes = mailRoutes(cfg, views);
    const result = {
      postfix: cfg.mail.postfix,
      listen: cfg.mail.listen,
      routes,
      testers: cfg.staging.testers,
    };
    finishJobs(ctx, await carryOut(ctx, plan), 'mail', result);
    out.line(
      `postfix (${cfg.mail.postfix}) takes mail on ${cfg.mail.listen.address ?? '*'}:${cfg.mail.listen.port}`,
    );
    for (const r of routes) out.line(`  *@${r.domain} -> ${maildirOf(cfg, r.branch, r.customer)}`);
    out.line(
      `  mail-out goes only to ${mailOutTo(cfg).join(', ') || '(no one: [staging] testers and [notify] mail are empty)'}; the rest is caught: karlstage mail --caught`,
    );
    return result;
  });
}

async function showMail(opts: MailOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out } = ctx;
  const views = await branchViews(cfg, await readState(cfg.root));
  const { main, master } = await renderPostfix(cfg);
  const transport = renderTransport(cfg, mailRoutes(cfg, views));
  const installed = await postfixInstalled(cfg);
  const current =
    installed &&
    (await readFile(join(cfg.mail.postfix, 'main.cf'), 'utf8')) === main &&
    (await readFile(join(cfg.mail.postfix, 'master.cf'), 'utf8')) === master;
  out.line(
    `# ${cfg.mail.postfix}: ${current ? 'installed, up to date' : installed ? 'installed, out of date: karlstage mail --install' : 'not installed: karlstage mail --install'}`,
  );
  for (const [name, text] of [
    [join(cfg.mail.postfix, 'main.cf'), main],
    [join(cfg.mail.postfix, 'master.cf'), master],
    [transportFile(cfg.root), transport],
  ] as const)
    out.line(`\n# ---- ${name}\n${text.trimEnd()}`);
  return { postfix: cfg.mail.postfix, installed, current, main, master, transport };
}

async function listCaught(opts: MailOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out } = ctx;
  const PostalMime = (await import('postal-mime')).default;
  const caught = [];
  for (const m of await messagesOf(layout.caught(cfg.root))) {
    const parsed = await PostalMime.parse(await m.text());
    const header = (name: string) =>
      parsed.headers.find((h) => h.key === name.toLowerCase())?.value.trim();
    caught.push({
      date: (parsed.date ? new Date(parsed.date) : m.mtime).toISOString(),
      branch: header('X-Karlstage-Branch') ?? '-',
      from: parsed.from?.address ?? header('Return-Path')?.replace(/^<|>$/g, '') ?? '-',
      recipient: header('X-Original-To') ?? '-',
      subject: parsed.subject ?? '',
      file: m.file,
    });
  }
  if (caught.length === 0) out.line(`nothing caught (${layout.caught(cfg.root)} is empty)`);
  else
    for (const l of table(
      ['DATE', 'BRANCH', 'TO', 'SUBJECT'],
      caught.map((c) => [c.date.replace('T', ' ').slice(0, 19), c.branch, c.recipient, c.subject]),
    ))
      out.line(l);
  return { caught };
}

/**
 * Move a customer's staged mail-in to another branch site, in one step: the
 * mail_branch key in karlstage.ini (nothing else in the file changes), the
 * transport map (and its postmap database), the installed cron lines, the site list.
 */
async function moveMail(opts: MailOptions, customerName: string, branchName: string) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  const customer = checkName('customer', customerName);
  const branch = checkName('branch', branchName);
  const c = configuredCustomer(cfg, customer);
  if (!cfg.staging.mailDomain)
    throw new UsageError(
      `${cfg.file}: set [staging] mail_domain first: staged mail for ${customer} goes to ${customer}.MAIL_DOMAIN`,
    );
  await knownSite(cfg.root, branch);
  const served = (await siteCustomers(cfg.root, branch)).map((i) => i.name);
  if (!served.includes(customer))
    throw new UsageError(
      `${branch} does not serve ${customer} (see its etc/instances.ini): choose a branch site that does`,
    );

  const text = setSectionKeys(await readFile(cfg.file, 'utf8'), `customer:${customer}`, {
    mail_branch: branch,
  });
  const next = parseConfig(text, cfg.file);
  const views = await branchViews(next, await readState(cfg.root));
  const cronInstalled = existsSync(next.cron.file);
  // What could refuse the move is asked before anything is written (exit 2: nothing changed).
  const cronText = cronInstalled ? await renderCrontab(next, views) : undefined;
  if (await postfixInstalled(next)) await maildirUsers(next);
  const refresh = await mailRefresh(next);
  const result = {
    customer,
    from: c.mailBranch,
    to: branch,
    domain: `${customer}.${cfg.staging.mailDomain}`,
  };
  const plan = {
    command: `mail ${customer} ${branch}`,
    jobs: [
      {
        name: customer,
        steps: [
          {
            title: `move ${customer}'s staged mail to ${branch}`,
            commands: refresh?.commands ?? [],
            effects: [
              `write ${cfg.file} ([customer:${customer}] mail_branch = ${branch}; nothing else changes)`,
              `write ${layout.testersFile(cfg.root)}`,
              `write ${transportFile(cfg.root)} (and its postmap database)`,
              ...(cronInstalled ? [`write ${next.cron.file}`] : []),
              `write ${layout.sites(cfg.root)}/`,
            ],
            run: async (step: StepContext) => {
              await writeFileAtomic(cfg.file, text);
              try {
                await writeAllowList(next);
                const written = await refresh?.run(views, step.exec);
                if (written && !written.postmapped)
                  out.warn(
                    `postfix's postmap is not installed: ${written.file} was written but not compiled`,
                  );
                if (cronText !== undefined) await installCrontab(next, cronText);
                await refreshSiteList(next, views);
              } catch (e) {
                // karlstage.ini is changed already: anything refused from here is a failure.
                throw isKarlstageError(e) ? asFailure(e) : e;
              }
            },
          },
        ],
      },
    ],
  };
  if (options.dryRun) return dryRun(ctx, plan);
  return underMailLock(ctx, plan.command, async () => {
    finishJobs(ctx, await carryOut(ctx, plan), 'mail', result);
    out.line(
      `staged mail for ${customer} (*@${result.domain}) now goes to ${branch} (was ${c.mailBranch})`,
    );
    return result;
  });
}

/** What changes postfix's maps and configuration runs under the mail lock (waiting 30 s). */
function underMailLock<T>(ctx: CommandContext, command: string, fn: () => Promise<T>): Promise<T> {
  const { cfg, options } = ctx;
  return withLocks(cfg.root, [LOCKS.mail], { command, waitSeconds: options.wait ?? 30 }, fn);
}
