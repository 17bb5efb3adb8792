// Covers: src/core/lock.ts
import { spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LockedError } from '../../src/core/errors.js';
import { acquireLock, listLocks, onTakeover, withLocks } from '../../src/core/lock.js';
import { onCleanup, tempDir } from '../helpers/tmp.js';

/** Locks: owned, exclusive, waited for, and taken over only from a holder that cannot be alive. */
async function room() {
  const dir = await tempDir();
  const r = { locks: join(dir, 'locks'), runs: join(dir, 'runs') };
  await mkdir(r.locks, { recursive: true });
  return r;
}
const startOf = (pid: number) => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
};
function sleeper(): number {
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  onCleanup(async () => void child.kill('SIGKILL'));
  return child.pid!;
}
const owner = (pid: number, extra: object = {}) =>
  JSON.stringify({
    pid,
    host: hostname(),
    command: 'someone',
    since: '2026-01-01T00:00:00Z',
    token: 't',
    ...extra,
  });

describe('locks', () => {
  it('are exclusive, name their holder, and are released', async () => {
    const r = await room();
    const release = await acquireLock(r, 'branch-x', { command: 'update x' });
    const held = JSON.parse(await readFile(join(r.locks, 'branch-x.lock'), 'utf8'));
    expect(held).toMatchObject({
      pid: process.pid,
      command: 'update x',
      start: startOf(process.pid),
    });
    await expect(acquireLock(r, 'branch-x', { command: 'second' })).rejects.toThrow(LockedError);
    await expect(acquireLock(r, 'branch-x', { command: 'second' })).rejects.toThrow(
      /holds the branch-x lock: "update x" \(pid \d+ on .*\); try again later or pass --wait SECONDS/,
    );
    await release();
    expect(existsSync(join(r.locks, 'branch-x.lock'))).toBe(false);
  });

  it('are waited for with --wait, and taken in one order by withLocks (no deadlock)', async () => {
    const r = await room();
    const release = await acquireLock(r, 'b', { command: 'first' });
    const waiting = acquireLock(r, 'b', { command: 'second', waitSeconds: 30 });
    await release();
    await (
      await waiting
    )();
    const order: string[] = [];
    await Promise.all([
      withLocks(
        r,
        ['b', 'a'],
        { command: 'one', waitSeconds: 30 },
        async () => void order.push('one'),
      ),
      withLocks(
        r,
        ['a', 'b'],
        { command: 'two', waitSeconds: 30 },
        async () => void order.push('two'),
      ),
    ]);
    expect(order.sort()).toEqual(['one', 'two']);
  });

  it.each([
    ['an empty file', () => '', /the lock file is empty or damaged/],
    ['garbage', () => '{{{', /the lock file is empty or damaged/],
    ['a dead pid', () => owner(2 ** 22 - 1), /its holder \(pid \d+\) is gone/],
    [
      'a reused pid (another start time)',
      () => owner(sleeper(), { start: '1' }),
      /now belongs to another program/,
    ],
    [
      'an old lock naming a live program that is not karlstage',
      () => owner(sleeper()),
      /is not karlstage/,
    ],
  ])('a lock holding %s is taken over at once, and said so', async (_what, content, why) => {
    const r = await room();
    await writeFile(join(r.locks, 'x.lock'), content());
    expect((await listLocks(r))[0]).toMatchObject({ name: 'x', dead: expect.stringMatching(why) });
    const said: string[] = [];
    onTakeover((t) => said.push(t));
    try {
      const release = await acquireLock(r, 'x', { command: 'mine' });
      expect(said).toEqual([expect.stringMatching(why)]);
      await release();
    } finally {
      onTakeover(undefined);
    }
  });

  it('a lock of a live holder with its own start time is respected', async () => {
    const r = await room();
    const pid = sleeper();
    await writeFile(join(r.locks, 'x.lock'), owner(pid, { start: startOf(pid) }));
    await expect(acquireLock(r, 'x', { command: 'mine' })).rejects.toThrow(
      new RegExp(`pid ${pid} on`),
    );
    expect((await listLocks(r))[0]!.dead).toBeUndefined();
  });
});
