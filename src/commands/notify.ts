import { commandContext, type GlobalOptions } from '../context/context.js';
import { KarlstageError, UsageError } from '../core/errors.js';
import { notify } from '../publish/notify.js';

/** "notify --test": one test message through every configured channel; says what got through. */
export async function notifyTest(opts: GlobalOptions & { test?: boolean }) {
  const { cfg, out } = await commandContext(opts);
  if (!opts.test) throw new UsageError('notify sends a test message: pass --test');
  if (!cfg.notify.webhook && cfg.notify.mail.length === 0)
    throw new UsageError(`${cfg.file}: set [notify] webhook or mail first`);
  const records = await notify(cfg, [{ kind: 'test' }]);
  for (const r of records)
    out.line(
      `${r.ok ? out.c.green('ok') : out.c.red('failed')}      ${r.channel}${r.ok ? '' : `: ${r.error}`}`,
    );
  const failed = records.filter((r) => !r.ok);
  if (failed.length) {
    const e = new KarlstageError(
      `notify: ${failed.map((r) => r.channel).join(' and ')} not delivered`,
    );
    e.result = { deliveries: records };
    throw e;
  }
  return { deliveries: records };
}
