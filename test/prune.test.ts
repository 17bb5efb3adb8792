// Covers: src/commands/prune.ts src/model/views.ts
import { execa } from 'execa';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { acquireLock, branchLock } from '../src/model/locks.js';
import { updateState } from '../src/model/state.js';
import { waitFor } from './helpers/processes.js';
import { gitRepo, svnRepo } from './helpers/repos.js';
import { stagingServer } from './helpers/staging.js';

/**
 * Stale branch sites: a ref gone upstream (git branch deleted, svn branch removed), or nothing
 * happened to it for stale_after days. prune shows them; --yes removes them, never a held site
 * or a mail branch.
 */
describe('stale branch sites and prune', () => {
  it('git: a deleted branch and an old site are stale; prune shows, --yes removes, held and mail branches stay', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo); // osf's mail branch is branch1, another's branch2
    for (const [branch, ref] of [
      ['branch1', 'main'],
      ['branch3', repo.featureRef],
      ['branch4', 'main'],
      ['branch5', 'main'],
    ] as const)
      await create({ ...st.g, branch, ref });
    await execa('git', ['--git-dir', fileURLToPath(repo.url), 'branch', '-D', repo.featureRef]);
    // branch4 and branch5 and the mail branch: nothing happened to them for 60 days.
    const old = new Date(Date.now() - 60 * 86_400_000).toISOString();
    await updateState(st.root, (s) => {
      for (const b of ['branch1', 'branch4', 'branch5']) {
        const site = s.branches[b]!;
        site.createdAt = old;
        site.lastUpdate = { ...site.lastUpdate!, at: old };
        site.built = { ...site.built!, at: old };
      }
    });
    expect((await st.cli(['hold', 'branch4', '--reason', 'OSF is testing'])).exitCode).toBe(0);
    await updateState(st.root, (s) => {
      s.branches.branch4!.hold!.since = old;
    });
    // poll says so (exit 1: cron mails it).
    const polled = await st.cli(['poll']);
    expect(polled.exitCode).toBe(1);
    expect(polled.stderr).toContain('branch3: feature-x is gone upstream');

    const status = await st.cli(['status']);
    expect(status.stdout).toContain('branch3 is stale: feature-x is gone upstream');
    expect(status.stdout).toMatch(/branch5 is stale: not updated for 60 days \(stale after 30\)/);
    const sites = JSON.parse((await st.cli(['sites', '--format', 'json'])).stdout);
    expect(sites.branches.find((b: { name: string }) => b.name === 'branch3').stale).toBe(
      'feature-x is gone upstream',
    );

    // Without --yes: the report, nothing removed.
    const before = await st.snapshot();
    const shown = await st.cli(['prune']);
    expect(shown.exitCode, shown.stderr).toBe(0);
    expect(shown.stdout).toContain('stale   branch3: feature-x is gone upstream');
    expect(shown.stdout).toContain('stale   branch5: not updated for 60 days');
    expect(shown.stdout).toMatch(/kept {4}branch1: stale .*, but osf's mail branch: kept/);
    expect(shown.stdout).toMatch(/kept {4}branch4: stale .*, but held by .*: kept/);
    expect(shown.stdout).toContain('"karlstage prune --yes" removes these 2');
    expect(await st.snapshot()).toBe(before);

    const pruned = await st.cli(['prune', '--yes', '--json']);
    expect(pruned.exitCode, pruned.stderr).toBe(0);
    expect(JSON.parse(pruned.stdout).removed).toEqual(['branch3', 'branch5']);
    for (const b of ['branch3', 'branch5']) expect(existsSync(join(st.root, b))).toBe(false);
    for (const b of ['branch1', 'branch4']) expect(existsSync(join(st.root, b))).toBe(true);
  });

  it('svn: a removed branch is stale and pruned', async () => {
    const repo = await svnRepo();
    const st = await stagingServer(repo, { customers: [] });
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch3', ref: repo.featureRef });
    await execa('svn', ['rm', '-q', '-m', 'gone', `${repo.url}/${repo.featureRef}`]);
    expect((await st.cli(['poll'])).exitCode).toBe(1);
    // Another run holds branch3 (an update, say): prune leaves it and exits 75, naming the holder.
    const release = await acquireLock(st.root, branchLock('branch3'), {
      command: 'update branch3',
      waitSeconds: 0,
    });
    const busy = await st.cli(['prune', '--yes']);
    expect(busy.exitCode).toBe(75);
    expect(busy.stderr).toMatch(
      /branch3: another karlstage run holds the branch-branch3 lock: "update branch3"/,
    );
    expect(existsSync(join(st.root, 'branch3'))).toBe(true);
    await release();
    const r = await st.cli(['prune', '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('destroyed branch3');
    expect(existsSync(join(st.root, 'branch3'))).toBe(false);
    expect(existsSync(join(st.root, 'branch1'))).toBe(true);
  });

  it('a site held while prune waits for its lock is kept, and listed as kept', async () => {
    const repo = await svnRepo();
    const st = await stagingServer(repo, { customers: [] });
    await create({ ...st.g, branch: 'branch3', ref: repo.featureRef });
    await execa('svn', ['rm', '-q', '-m', 'gone', `${repo.url}/${repo.featureRef}`]);
    expect((await st.cli(['poll'])).exitCode).toBe(1);
    const release = await acquireLock(st.root, branchLock('branch3'), {
      command: 'update branch3',
      waitSeconds: 0,
    });
    const pruning = st.cli(['prune', '--yes', '--json', '--wait', '60']);
    // prune waits for the lock: its claim on it is a draft file beside the lock.
    const locks = join(st.root, '.karlstage', 'locks');
    await waitFor('prune to wait for the lock', async () =>
      (await readdir(locks)).some((f) => f.startsWith('.branch-branch3.')),
    );
    await updateState(st.root, (s) => {
      s.branches.branch3!.hold = { since: new Date().toISOString(), by: 'anna' };
    });
    await release();
    const r = await pruning;
    expect(r.exitCode, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout);
    expect(result.removed).toEqual([]);
    expect(result.kept).toEqual([{ branch: 'branch3', why: 'held by anna: kept' }]);
    expect(existsSync(join(st.root, 'branch3'))).toBe(true);
  });
});
