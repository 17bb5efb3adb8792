import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach } from 'vitest';

// nginx and postmap live in /usr/sbin, which a non-login PATH may lack.
for (const dir of ['/usr/sbin', '/sbin'])
  if (!(process.env.PATH ?? '').split(':').includes(dir))
    process.env.PATH = `${process.env.PATH}:${dir}`;

const cleanups: (() => Promise<void>)[] = [];

/** Run after the current test, newest first (registered by the helpers that make things). */
export function onCleanup(fn: () => Promise<void>): void {
  cleanups.push(fn);
}

afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!().catch(() => undefined);
});

export async function tempDir(prefix = 'ks-test-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  return dir;
}
