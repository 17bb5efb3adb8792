import { commandContext, type GlobalOptions } from '../context/context.js';
import { carryOut, dryRun, finishJobs } from '../context/report.js';
import { publishedViews } from '../context/after-change.js';
import { installCrontab, renderCrontab } from '../publish/crontab.js';

export interface CronOptions extends GlobalOptions {
  install?: boolean;
}

/** Print the crontab lines of this staging server; --install writes them to [cron] file. */
export async function cron(opts: CronOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, options } = ctx;
  const text = await renderCrontab(cfg, await publishedViews(ctx));
  if (!opts.install) {
    out.text(text);
    return { text };
  }
  const plan = {
    command: 'cron --install',
    jobs: [
      {
        name: 'cron',
        steps: [
          {
            title: `install the crontab lines`,
            effects: [`write ${cfg.cron.file} (mode 0644):`, ...text.trimEnd().split('\n')],
            run: () => installCrontab(cfg, text),
          },
        ],
      },
    ],
  };
  if (options.dryRun) return dryRun(ctx, plan);
  const result = { file: cfg.cron.file, text };
  finishJobs(ctx, await carryOut(ctx, plan), 'cron', result);
  out.line(`wrote ${cfg.cron.file}`);
  return result;
}
