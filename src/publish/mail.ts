import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { Config } from '../config/config.js';
import { layout } from '../model/layout.js';
import { exec } from '../core/command.js';
import type { BranchView } from '../model/views.js';

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
export function mailRoutes(cfg: Config, views: BranchView[]): MailRoute[] {
  if (!cfg.staging.mailDomain) return [];
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
  views: BranchView[],
  log?: string,
): Promise<{ file: string; postmapped: boolean }> {
  const file = transportFile(cfg.root);
  await mkdir(dirname(file), { recursive: true });
  await writeFileAtomic(file, renderTransport(mailRoutes(cfg, views)), { mode: 0o644 });
  const postmap = ['/usr/sbin/postmap', '/usr/bin/postmap'].find((p) => existsSync(p));
  if (!postmap) return { file, postmapped: false };
  await exec({ program: postmap, args: [`hash:${file}`], step: 'postmap', timeoutMs: 30_000 }, log);
  return { file, postmapped: true };
}
