import { readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';

const DAY = 86_400_000;
export const KEEP_RUN_LOGS_DAYS = 30;
export const ROTATE_CRON_LOG_BYTES = 10 * 1024 * 1024;

/**
 * Logs must not fill the disk of a server that polls every five minutes for
 * years: run logs older than 30 days are removed, and cron.log past 10 MB
 * becomes cron.log.1 (one older generation kept). The cron line appends with
 * `>>`, so the shell of the next run simply starts a new cron.log.
 */
export async function tidyLogs(dir: string, now = Date.now()): Promise<string[]> {
  const removed: string[] = [];
  for (const f of await readdir(dir).catch(() => [] as string[])) {
    const path = join(dir, f);
    const st = await stat(path).catch(() => undefined);
    if (!st?.isFile()) continue;
    // Appended to for years by cron's lines and the wake service: rotated, never removed.
    if (f === 'cron.log' || f === 'wake.log') {
      if (st.size > ROTATE_CRON_LOG_BYTES) await rename(path, `${path}.1`);
    } else if (f.endsWith('.log') && now - st.mtimeMs > KEEP_RUN_LOGS_DAYS * DAY) {
      await rm(path, { force: true });
      removed.push(f);
    }
  }
  return removed;
}
