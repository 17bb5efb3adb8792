import { mkdir } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import type { Config } from '../config/config.js';
import { UsageError } from '../core/errors.js';
import { splitCommand } from '../core/command-line.js';
import { renderTemplate } from '../core/templates.js';
import { layout } from '../model/layout.js';
import type { BranchView } from '../model/views.js';
import { mailRoutes, ourPrograms, type Programs } from './mail.js';

/**
 * The crontab lines of a staging server: poll --build, the nightly sync, and
 * mail-in for each customer in its mail branch only. Absolute paths; progress
 * to .karlstage/logs/cron.log, only a failure's summary to cron's mail.
 */

/** A path as one word of a crontab command line (run by /bin/sh; "%" means newline to cron). */
function cronWord(path: string): string {
  if (/[%\n\r]/.test(path))
    throw new UsageError(`${path}: a path with "%" or a line break cannot go into a crontab`);
  return /^[\w@+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

export async function renderCrontab(cfg: Config, views: BranchView[]): Promise<string> {
  return crontabText(cfg, views, ourPrograms());
}

/** The lines as a function of the configuration, the sites and the programs cron starts. */
export async function crontabText(
  cfg: Config,
  views: BranchView[],
  programs: Programs,
): Promise<string> {
  const log = cronWord(join(layout.logs(cfg.root), 'cron.log'));
  const mailin = cfg.deployment.mailin
    ? mailRoutes(cfg, views).map((r) => ({
        // `cd BRANCH && MAILIN CUSTOMER`, in the customer's mail branch.
        line: `${cfg.cron.mailin} ${cfg.cron.user} cd ${cronWord(join(cfg.root, r.branch))} && ${[...splitCommand(cfg.deployment.mailin!, '[deployment] mailin'), r.customer].map(cronWord).join(' ')} >> ${log} 2>&1`,
      }))
    : [];
  return renderTemplate('crontab', {
    config: cronWord(cfg.file),
    log,
    node: cronWord(programs.node),
    karlstage: cronWord(programs.karlstage),
    mailin,
    poll: cfg.cron.poll,
    sync: cfg.cron.sync,
    watch: cfg.cron.watch,
    user: cfg.cron.user,
    sync_available: true,
  });
}

/** Write the lines to [cron] file atomically, readable by cron (which ignores group- or world-writable files). */
export async function installCrontab(cfg: Config, text: string): Promise<void> {
  await mkdir(layout.logs(cfg.root), { recursive: true });
  await mkdir(dirname(cfg.cron.file), { recursive: true });
  await writeFileAtomic(cfg.cron.file, text, { mode: 0o644 });
}
