// Covers: src/core/runner.ts src/core/errors.ts src/branches/update.ts src/vcs/ src/core/retries.ts
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { readState } from '../src/model/state.js';
import { serverSource } from '../src/demo/sample-app.js';
import { blackhole, commandLines, killGroup, startCli, waitFor } from './helpers/processes.js';
import { gitRepo, svnRepo, svnServe } from './helpers/repos.js';
import { ask, buildCount, stagingServer } from './helpers/staging.js';

/** True once the run with this pid has started the branch's build step (read from its own log). */
const building = (root: string, branch: string, pid: number | undefined) => async () => {
  const logs = join(root, '.karlstage', 'logs');
  const mine = (await readdir(logs).catch(() => [] as string[])).find((f) =>
    f.endsWith(`-${pid}.log`),
  );
  return mine ? (await readFile(join(logs, mine), 'utf8')).includes(`## ${branch}: build`) : false;
};

describe('concurrent runs', () => {
  it('a second update of the same branch exits 75 naming the holder; with --wait it waits its turn', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const first = startCli(st.root, ['update', 'branch1', '--force'], { DEMO_BUILD_SLEEP: '3' });
    await waitFor('the first update to hold the lock', () =>
      existsSync(join(st.root, '.karlstage', 'locks', 'branch-branch1.lock')),
    );

    const second = await st.cli(['update', 'branch1', '--force']);
    expect(second.exitCode).toBe(75);
    expect(second.stderr).toMatch(
      new RegExp(
        `holds the branch-branch1 lock: "update branch1" \\(pid ${first.pid} on .*\\); try again later or pass --wait SECONDS`,
      ),
    );

    const third = await st.cli(['update', 'branch1', '--force', '--wait', '60']);
    expect(third.exitCode, third.stderr).toBe(0);
    expect((await first).exitCode).toBe(0);
    expect(await buildCount(st.root, 'branch1')).toBe(3);
  });

  it('update --all goes on with the branches it can lock; exit 75 names the one it could not', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2' });
    const first = startCli(st.root, ['update', 'branch1', '--force'], { DEMO_BUILD_SLEEP: '3' });
    await waitFor('the lock', () =>
      existsSync(join(st.root, '.karlstage', 'locks', 'branch-branch1.lock')),
    );
    const all = await st.cli(['update', '--all', '--force']);
    expect(all.exitCode).toBe(75);
    expect(all.stderr).toContain('update: 1 of 2 failed');
    expect(all.stderr).toMatch(/branch1: another karlstage run holds the branch-branch1 lock/);
    expect(await buildCount(st.root, 'branch2')).toBe(2);
    await first;
  });
});

describe.each(['git', 'svn'] as const)('killed midway (%s)', (vcs) => {
  it('a create killed during its build leaves nothing registered; the rerun cleans up and converges', async () => {
    const repo = vcs === 'git' ? await gitRepo() : await svnRepo();
    const st = await stagingServer(repo);
    const run = startCli(st.root, ['create', 'branch1'], { DEMO_BUILD_SLEEP: '30' });
    await waitFor('the build to start', building(st.root, 'branch1', run.pid));
    killGroup(run.pid);
    await run;

    expect((await readState(st.root)).branches.branch1).toBeUndefined();
    expect(existsSync(join(st.root, 'branch1'))).toBe(true);
    const s = await st.cli(['status']);
    expect(s.stdout).toContain('branch1: a create was interrupted');

    const again = await st.cli(['create', 'branch1']);
    expect(again.exitCode, again.stderr).toBe(0);
    const b = (await readState(st.root)).branches.branch1!;
    expect(await ask(b.port, 'osf')).toContain('branch=branch1');
    expect(await buildCount(st.root, 'branch1')).toBe(1);
    expect((await st.cli(['status'])).stdout).not.toContain('interrupted');
  });

  it('an update killed during its build keeps the last good revision; the rerun repairs and builds', async () => {
    const repo = vcs === 'git' ? await gitRepo() : await svnRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const good = (await readState(st.root)).branches.branch1!.built!.revision;
    const next = await repo.commit(
      repo.defaultRef,
      { 'server.mjs': serverSource('2.0') },
      'Release 2.0',
    );

    const run = startCli(st.root, ['update', 'branch1'], { DEMO_BUILD_SLEEP: '30' });
    await waitFor('the build to start', building(st.root, 'branch1', run.pid));
    killGroup(run.pid);
    await run;
    expect((await readState(st.root)).branches.branch1!.built!.revision).toBe(good);

    // No --wait: the dead run's lock is taken over at once.
    const again = await st.cli(['update', 'branch1']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/finishing an interrupted update/);
    const b = (await readState(st.root)).branches.branch1!;
    expect(b.built?.revision).toBe(next);
    expect(await ask(b.port, 'osf')).toContain('version=2.0');
  });
});

describe('a run killed alone (kill -9 of karlstage, not of its process group)', () => {
  it('the next run stops the build it left running before building', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const next = await repo.commit(
      repo.defaultRef,
      { 'server.mjs': serverSource('2.0') },
      'Release 2.0',
    );
    const run = startCli(st.root, ['update', 'branch1'], { DEMO_BUILD_SLEEP: '293' });
    const orphan = () => commandLines().includes('sleep 293');
    await waitFor('the build script to run', orphan);
    process.kill(run.pid!, 'SIGKILL');
    await run;
    expect(orphan()).toBe(true); // the build runs on without its karlstage
    const left = join(st.root, '.karlstage', 'runs', `${run.pid}.children`);
    expect(await readFile(left, 'utf8')).toMatch(/^\d+ \d+$/m); // what it had started, written down

    const again = await st.cli(['update', 'branch1']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(orphan()).toBe(false);
    expect((await readState(st.root)).branches.branch1!.built?.revision).toBe(next);
    expect(existsSync(left)).toBe(false);
  });
});

describe('unreachable repositories', () => {
  it('a refused svn:// connection: a clear error after the retries, exit 2, nothing created', async () => {
    const repo = await svnRepo();
    const served = await svnServe(repo);
    const st = await stagingServer(repo, { url: served.url, source: { retries: '2' } });
    const ok = await st.cli(['create', 'branch1']);
    expect(ok.exitCode, ok.stderr).toBe(0);
    await served.stop();

    const r = await st.cli(['create', 'branch2']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      `error: cannot reach ${served.url} (3 attempts): svn: E000111: Can't connect to host '127.0.0.1': Connection refused; check [source] url and the network`,
    );
    expect(existsSync(join(st.root, 'branch2'))).toBe(false);

    const u = await st.cli(['update', 'branch1']);
    expect(u.exitCode).toBe(1);
    expect(u.stderr).toMatch(/Connection refused/);
    expect((await readState(st.root)).branches.branch1!.lastUpdate?.result).toBe('failed');
  });

  it("a missing git repository: exit 2 with git's own words", async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo, { url: 'file:///nonexistent/karl.git' });
    const r = await st.cli(['create', 'branch1']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr.split('\n')[0]).toBe(
      "error: cannot reach file:///nonexistent/karl.git (2 attempts): fatal: '/nonexistent/karl.git' does not appear to be a git repository; check [source] url and the network",
    );
  });

  it.each(['git', 'svn'] as const)(
    'a %s server that never answers is given up on within the timeout',
    async (vcs) => {
      const hole = await blackhole();
      const repo = vcs === 'git' ? await gitRepo() : await svnRepo();
      const url =
        vcs === 'git'
          ? `git://127.0.0.1:${hole.port}/karl.git`
          : `svn://127.0.0.1:${hole.port}/karl`;
      const st = await stagingServer(repo, { url, source: { timeout: '2', retries: '1' } });
      const started = Date.now();
      const r = await st.cli(['create', 'branch1']);
      const took = Date.now() - started;
      expect(r.exitCode).toBe(2);
      expect(r.stderr).toMatch(
        new RegExp(
          `^error: cannot reach ${url} \\(2 attempts\\): (no answer within 2 s|timed out after 2 s)`,
        ),
      );
      // 2 attempts of 2 s, a 0.5 s backoff and at most 2 s each to kill: bounded, not hung.
      expect(took).toBeLessThan(20_000);
    },
  );
});
