// Covers: src/core/logs.ts
import { existsSync } from 'node:fs';
import { mkdir, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { ROTATE_CRON_LOG_BYTES, tidyLogs } from '../../src/core/logs.js';
import { tempDir } from '../helpers/tmp.js';

it('removes run logs older than 30 days and rotates a cron.log past 10 MB', async () => {
  const root = await tempDir();
  const logs = join(root, '.karlstage', 'logs');
  await mkdir(logs, { recursive: true });
  const old = join(logs, '2026-09-01T02-00-00-000Z-sync-123.log');
  const recent = join(logs, '2026-11-20T02-00-00-000Z-sync-456.log');
  for (const f of [old, recent]) await writeFile(f, 'run\n');
  const daysAgo = (n: number) => new Date(Date.now() - n * 86_400_000);
  await utimes(old, daysAgo(31), daysAgo(31));
  await utimes(recent, daysAgo(3), daysAgo(3));
  await writeFile(join(logs, 'cron.log.1'), 'the generation before\n');
  await writeFile(join(logs, 'cron.log'), '');
  await truncate(join(logs, 'cron.log'), ROTATE_CRON_LOG_BYTES - 1);

  expect(await tidyLogs(logs)).toEqual(['2026-09-01T02-00-00-000Z-sync-123.log']);
  expect(existsSync(old)).toBe(false);
  expect(existsSync(recent)).toBe(true);
  expect(existsSync(join(logs, 'cron.log'))).toBe(true); // not past the limit yet

  await truncate(join(logs, 'cron.log'), ROTATE_CRON_LOG_BYTES + 1);
  await tidyLogs(logs);
  expect(existsSync(join(logs, 'cron.log'))).toBe(false); // the next cron line's >> starts a new one
  expect((await stat(join(logs, 'cron.log.1'))).size).toBe(ROTATE_CRON_LOG_BYTES + 1);
});
