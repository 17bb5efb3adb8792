import { mkdir } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import writeFileAtomic from 'write-file-atomic';
import type { Config } from '../config/config.js';
import { UsageError } from '../core/errors.js';
import { splitCommand } from '../core/runner.js';
import { layout } from '../core/layout.js';
import { renderTemplate } from '../core/templates.js';
import { commandContext, type GlobalOptions } from './context.js';

export interface CronOptions extends GlobalOptions {
  install?: boolean;
}

/** A path as one word of a crontab command line (run by /bin/sh; "%" means newline to cron). */
function cronWord(path: string): string {
  if (/[%\n\r]/.test(path))
    throw new UsageError(`${path}: a path with "%" or a line break cannot go into a crontab`);
  return /^[\w@+=:,./-]+$/.test(path) ? path : `'${path.replace(/'/g, `'\\''`)}'`;
}

/** The crontab lines for this staging server: absolute paths, progress to the log, failures to cron's mail. */
export async function renderCrontab(cfg: Config): Promise<string> {
  const karlstage = resolve(fileURLToPath(new URL('../../bin/karlstage.js', import.meta.url)));
  return renderTemplate('crontab', {
    config: cronWord(cfg.file),
    log: cronWord(join(layout.logs(cfg.root), 'cron.log')),
    node: cronWord(process.execPath),
    karlstage: cronWord(karlstage),
    mailin: await mailinLines(cfg),
    poll: cfg.cron.poll,
    sync: cfg.cron.sync,
    user: cfg.cron.user,
    sync_available: true,
  });
}

/** Mail-in runs for each customer in its mail branch only: `cd BRANCH && MAILIN CUSTOMER`. */
async function mailinLines(cfg: Config): Promise<{ line: string }[]> {
  if (!cfg.deployment.mailin) return [];
  const { mailRoutes } = await import('../web/mail.js');
  const { readState } = await import('../core/state.js');
  const words = splitCommand(cfg.deployment.mailin, '[deployment] mailin');
  const log = cronWord(join(layout.logs(cfg.root), 'cron.log'));
  return (await mailRoutes(cfg, await readState(cfg.root))).map((r) => ({
    line: `${cfg.cron.mailin} ${cfg.cron.user} cd ${cronWord(join(cfg.root, r.branch))} && ${[...words, r.customer].map(cronWord).join(' ')} >> ${log} 2>&1`,
  }));
}

export async function cron(opts: CronOptions): Promise<{ file?: string; text: string }> {
  const { cfg, out, g } = await commandContext(opts);
  const text = await renderCrontab(cfg);
  if (!opts.install) {
    if (out.json) out.result({ text });
    else process.stdout.write(text);
    return { text };
  }
  if (g.dryRun) {
    out.line(`Dry run: would write ${cfg.cron.file}:`);
    out.line(text);
    return { file: cfg.cron.file, text };
  }
  await mkdir(layout.logs(cfg.root), { recursive: true });
  await mkdir(dirname(cfg.cron.file), { recursive: true });
  // cron ignores a cron.d file that is group- or world-writable.
  await writeFileAtomic(cfg.cron.file, text, { mode: 0o644 });
  out.result({ file: cfg.cron.file, text });
  out.line(`wrote ${cfg.cron.file}`);
  return { file: cfg.cron.file, text };
}
