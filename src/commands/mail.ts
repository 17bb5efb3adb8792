import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import writeFileAtomic from 'write-file-atomic';
import { parseConfig } from '../config/config.js';
import { UsageError } from '../core/errors.js';
import { setSectionKeys } from '../core/ini-edit.js';
import { withLocks } from '../core/lock.js';
import { checkName } from '../config/names.js';
import { readState } from '../core/state.js';
import { readInstances } from '../instances/instances-file.js';
import { layout } from '../core/layout.js';
import { refreshSiteList } from '../web/site-list.js';
import { writeAllowList, writeTransport } from '../web/mail.js';
import { commandContext, type GlobalOptions } from './context.js';
import { renderCrontab } from './cron.js';

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
  const { cfg, out, g } = await commandContext(opts);
  const customer = checkName('customer', opts.customer);
  const branch = checkName('branch', opts.branch);
  const c = cfg.customers.find((x) => x.name === customer);
  if (!c) throw new UsageError(`there is no [customer:${customer}] in ${cfg.file}`);
  if (!cfg.staging.mailDomain)
    throw new UsageError(
      `${cfg.file}: set [staging] mail_domain first: staged mail for ${customer} goes to ${customer}.MAIL_DOMAIN`,
    );
  const state = await readState(cfg.root);
  if (!state.branches[branch])
    throw new UsageError(`there is no branch site "${branch}": "karlstage status" lists them`);
  const served = (await readInstances(layout.instancesIni(cfg.root, branch))).map((i) => i.name);
  if (!served.includes(customer))
    throw new UsageError(
      `${branch} does not serve ${customer} (see its etc/instances.ini): choose a branch site that does`,
    );

  const text = setSectionKeys(await readFile(cfg.file, 'utf8'), `customer:${customer}`, {
    mail_branch: branch,
  });
  const next = parseConfig(text, cfg.file);
  if (g.dryRun) {
    out.line(
      `Dry run: would set [customer:${customer}] mail_branch = ${branch} in ${cfg.file}, and rewrite the transport map${existsSync(cfg.cron.file) ? `, ${cfg.cron.file}` : ''} and the site list`,
    );
    return { customer, from: c.mailBranch, to: branch };
  }
  return withLocks(
    cfg.root,
    ['mail'],
    { command: `mail ${customer} ${branch}`, waitSeconds: g.wait ?? 30 },
    async () => {
      await writeFileAtomic(cfg.file, text);
      await writeAllowList(next);
      const { file, postmapped } = await writeTransport(next, state);
      if (!postmapped)
        out.warn(`postfix's postmap is not installed: ${file} was written but not compiled`);
      if (existsSync(next.cron.file))
        await writeFileAtomic(next.cron.file, await renderCrontab(next), { mode: 0o644 });
      await refreshSiteList(next);
      const result = {
        customer,
        from: c.mailBranch,
        to: branch,
        domain: `${customer}.${cfg.staging.mailDomain}`,
      };
      out.result(result);
      out.line(
        `staged mail for ${customer} (*@${result.domain}) now goes to ${branch} (was ${c.mailBranch})`,
      );
      return result;
    },
  );
}
