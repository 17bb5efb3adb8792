import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { Config } from '../config/config.js';
import { layout } from '../core/layout.js';
import { run } from '../core/runner.js';
import type { State } from '../core/state.js';
import { branchViews } from './site-data.js';

/**
 * Staged mail: for each customer, only its mail branch receives mail for
 * CUSTOMER.mail_domain (a postfix transport map: `osf.DOMAIN karlstage:branch1`,
 * delivered by the `karlstage` transport in master.cf) and runs mail-in (a cron
 * line). Every staging instance's mail_white_list points at the allow-list, so
 * a copy of production data never mails real people.
 */
export interface MailRoute {
  customer: string;
  branch: string;
  domain: string;
}

export const transportFile = (root: string) => join(layout.meta(root), 'mail', 'transport');

/** The mail routes that are live: the mail branch exists and serves the customer. */
export async function mailRoutes(cfg: Config, state: State): Promise<MailRoute[]> {
  if (!cfg.staging.mailDomain) return [];
  const views = await branchViews(cfg, state);
  return cfg.customers.flatMap((c) => {
    const view = views.find((v) => v.site.name === c.mailBranch);
    return view && view.customers.includes(c.name)
      ? [
          {
            customer: c.name,
            branch: view.site.name,
            domain: `${c.name}.${cfg.staging.mailDomain}`,
          },
        ]
      : [];
  });
}

export function renderTransport(routes: MailRoute[]): string {
  const lines = [
    '# karlstage: staged mail-in, one line per customer: its domain and its mail branch.',
    '# Generated; "karlstage mail CUSTOMER BRANCH" moves a customer.',
  ];
  for (const r of routes) lines.push(`${r.domain}\tkarlstage:${r.branch}`);
  return lines.join('\n') + '\n';
}

/** Write the transport map and, where postfix is installed, its postmap database. */
export async function writeTransport(
  cfg: Config,
  state: State,
  log?: string,
): Promise<{ file: string; postmapped: boolean }> {
  const file = transportFile(cfg.root);
  await mkdir(dirname(file), { recursive: true });
  await writeFileAtomic(file, renderTransport(await mailRoutes(cfg, state)), { mode: 0o644 });
  const postmap = ['/usr/sbin/postmap', '/usr/bin/postmap'].find((p) => existsSync(p));
  if (!postmap) return { file, postmapped: false };
  await run(postmap, [`hash:${file}`], { step: 'postmap', timeoutMs: 30_000, log });
  return { file, postmapped: true };
}

/** The allow-list every instance's mail_white_list names: the testers from [staging] mail_allow. */
export async function writeAllowList(cfg: Config): Promise<void> {
  const file = layout.allowList(cfg.root);
  await mkdir(dirname(file), { recursive: true });
  const header =
    '# Generated from [staging] mail_allow in karlstage.ini: the only addresses staging may mail.\n';
  await writeFileAtomic(file, header + cfg.staging.mailAllow.map((a) => `${a}\n`).join(''), {
    mode: 0o644,
  });
}
