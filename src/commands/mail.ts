import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import writeFileAtomic from 'write-file-atomic';
import { parseConfig } from '../config/config.js';
import { checkName } from '../config/names.js';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { carryOut, dryRun, finishJobs } from '../context/report.js';
import { UsageError } from '../core/errors.js';
import { setSectionKeys } from '../core/ini-edit.js';
import { readInstances } from '../model/instances.js';
import { layout } from '../model/layout.js';
import { LOCKS, withLocks } from '../model/locks.js';
import { writeAllowList } from '../model/mail-safety.js';
import { knownSite } from '../model/sites.js';
import { readState } from '../model/state.js';
import { branchViews } from '../model/views.js';
import { installCrontab, renderCrontab } from '../publish/crontab.js';
import { transportFile, writeTransport } from '../publish/mail.js';
import { refreshSiteList } from '../publish/site-list.js';

export interface MailOptions extends GlobalOptions {
  customer: string;
  branch: string;
}

/**
 * Move a customer's staged mail-in to another branch site, in one step: the
 * mail_branch key in karlstage.ini (nothing else in the file changes), the
 * transport map (and its postmap database), the installed cron lines, the site list.
 */
export async function mail(opts: MailOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, g } = ctx;
  const customer = checkName('customer', opts.customer);
  const branch = checkName('branch', opts.branch);
  const c = cfg.customers.find((x) => x.name === customer);
  if (!c) throw new UsageError(`there is no [customer:${customer}] in ${cfg.file}`);
  if (!cfg.staging.mailDomain)
    throw new UsageError(
      `${cfg.file}: set [staging] mail_domain first: staged mail for ${customer} goes to ${customer}.MAIL_DOMAIN`,
    );
  await knownSite(cfg.root, branch);
  const served = (await readInstances(layout.instancesIni(cfg.root, branch))).map((i) => i.name);
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
            effects: [
              `write ${cfg.file} ([customer:${customer}] mail_branch = ${branch}; nothing else changes)`,
              `write ${layout.allowList(cfg.root)}`,
              `write ${transportFile(cfg.root)} (and its postmap database)`,
              ...(cronInstalled ? [`write ${next.cron.file}`] : []),
              `write ${layout.sites(cfg.root)}/`,
            ],
            run: async () => {
              await writeFileAtomic(cfg.file, text);
              await writeAllowList(next);
              const { file, postmapped } = await writeTransport(next, views);
              if (!postmapped)
                out.warn(
                  `postfix's postmap is not installed: ${file} was written but not compiled`,
                );
              if (cronInstalled) await installCrontab(next, await renderCrontab(next, views));
              await refreshSiteList(next, views);
            },
          },
        ],
      },
    ],
  };
  if (g.dryRun) return dryRun(ctx, plan);
  return withLocks(
    cfg.root,
    [LOCKS.mail],
    { command: plan.command, waitSeconds: g.wait ?? 30 },
    async () => {
      finishJobs(ctx, await carryOut(ctx, plan), 'mail', result);
      out.line(
        `staged mail for ${customer} (*@${result.domain}) now goes to ${branch} (was ${c.mailBranch})`,
      );
      return result;
    },
  );
}
