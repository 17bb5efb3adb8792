import { appendFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { printable } from './printable.js';
import { redact } from './redact.js';

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

/** A line for a run's log: masked, and with no control character raw (logs are read in terminals). */
export async function logLine(log: string | undefined, text: string): Promise<void> {
  if (log)
    await appendFile(log, printable(redact(text), { layout: true }) + '\n').catch(() => undefined);
}

let tracer: ((text: string) => void) | undefined;

/** With --verbose: each program's command line (masked) as it starts, and how it ended. */
export function traceCommands(fn: (text: string) => void): void {
  tracer = fn;
}

/** Say a line to the --verbose trace, if one is on. */
export function trace(text: string): void {
  tracer?.(text);
}
