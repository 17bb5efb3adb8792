import { siteActionJob } from '../branches/lifecycle.js';
import { afterChange } from '../context/after-change.js';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { messageOf } from '../core/errors.js';
import { executePlan } from '../core/plan.js';
import { layout } from '../model/layout.js';
import { wantOf } from '../model/site-state.js';
import { serveWake, type Starter } from '../publish/wake-service.js';

/**
 * `karlstage wake-service`: runs until stopped (watch and the @reboot line start it, as the
 * [cron] user). Each wake is the same start as `karlstage start`, under the site's lock;
 * afterwards the site list shows the new state.
 */
export async function wakeService(opts: GlobalOptions): Promise<{ stopped: true }> {
  const ctx = await commandContext({ ...opts, quiet: true });
  const start: Starter = async (cfg, site, user) => {
    const command = `wake ${site.name}`;
    const job = siteActionJob(cfg, site, wantOf(site) === 'running' ? 'restart' : 'start', {
      command,
      by: `a visitor (${user})`,
      waitSeconds: 600,
      // Under its lock: it may have been started (an update) or stopped meanwhile.
      unless: (now, answers) =>
        answers
          ? 'it answers'
          : wantOf(now) === 'stopped'
            ? 'stopped by the operator meanwhile'
            : undefined,
    });
    try {
      const [r] = await executePlan(
        { command, jobs: [job] },
        { out: ctx.out, logs: layout.logs(cfg.root) },
      );
      await afterChange({ ...ctx, cfg }, { routes: false }).catch(() => undefined);
      return r?.ok ? { ok: true } : { ok: false, error: r?.error?.message ?? 'the start failed' };
    } catch (e) {
      return { ok: false, error: messageOf(e) };
    }
  };
  await serveWake(ctx.cfg.file, start);
  return { stopped: true };
}
