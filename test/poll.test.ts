// Covers: src/commands/poll.ts src/branches/poll.ts src/commands/cron.ts src/publish/crontab.ts src/model/checked.ts src/model/upstream.ts
import { execa } from 'execa';
import { existsSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { gitClient } from '../src/demo/git-client.js';
import { create } from '../src/commands/create.js';
import { readState } from '../src/model/state.js';
import { serverSource } from '../src/demo/sample-app.js';
import { startCli, waitFor } from './helpers/processes.js';
import { gitRepo, svnRepo, svnServe } from './helpers/repos.js';
import { ask, buildCount, stagingServer } from './helpers/staging.js';

/** Every file of the branch sites, with size and mtime: a poll must not touch any. */
async function workingCopies(root: string): Promise<string> {
  const r = await execa('find', [
    root,
    '-path',
    `${root}/.karlstage`,
    '-prune',
    '-o',
    '-printf',
    '%P %s %T@\n',
  ]);
  return String(r.stdout).split('\n').sort().join('\n');
}

describe.each(['git', 'svn'] as const)('poll on %s', (vcs) => {
  it('a commit upstream makes exactly that branch behind; poll --build builds it once, then nothing', async () => {
    const repo = vcs === 'git' ? await gitRepo() : await svnRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2', ref: repo.featureRef });
    const before = await workingCopies(st.root);

    const quiet = await st.cli(['poll']);
    expect(quiet.exitCode, quiet.stderr).toBe(0);
    expect(quiet.stdout).toMatch(/^branch1 .*up to date$/m);
    expect(quiet.stdout).toMatch(/^branch2 .*up to date$/m);
    expect(await workingCopies(st.root)).toBe(before);

    await repo.commit(repo.featureRef, { 'server.mjs': serverSource('1.2-feature-x') }, 'More X');
    const head = await repo.commit(repo.featureRef, { 'NOTES.txt': 'notes\n' }, 'Notes');
    const polled = await st.cli(['poll', '--json']);
    expect(polled.exitCode, polled.stderr).toBe(0);
    const rows = JSON.parse(polled.stdout).branches as {
      name: string;
      behind: boolean;
      newCommits?: number;
      remote: string;
    }[];
    expect(rows.find((r) => r.name === 'branch1')).toMatchObject({ behind: false });
    expect(rows.find((r) => r.name === 'branch2')).toMatchObject({
      behind: true,
      ...(vcs === 'svn' ? { newCommits: 2 } : {}),
    });
    expect(await workingCopies(st.root)).toBe(before);
    expect((await st.cli(['status'])).stdout).toMatch(/^branch2 .* behind/m);

    const built = await st.cli(['poll', '--build']);
    expect(built.exitCode, built.stderr).toBe(0);
    expect(await buildCount(st.root, 'branch1')).toBe(1);
    expect(await buildCount(st.root, 'branch2')).toBe(2);
    const b2 = (await readState(st.root)).branches.branch2!;
    expect(await ask(b2.port, 'osf')).toContain('version=1.2-feature-x');
    expect(b2.built?.revision).toBe(head);

    const again = await st.cli(['poll', '--build']);
    expect(again.exitCode).toBe(0);
    expect(await buildCount(st.root, 'branch2')).toBe(2);
    expect((await st.cli(['status'])).stdout).toMatch(/^branch2 .* up to date/m);
  });

  it('a branch deleted upstream is reported as gone; the others still poll', async () => {
    const repo = vcs === 'git' ? await gitRepo() : await svnRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2', ref: repo.featureRef });
    await repo.commit(repo.defaultRef, { 'server.mjs': serverSource('2.0') }, 'Release 2.0');
    if (vcs === 'git')
      await gitClient(join(repo.dir, 'app-work')).raw([
        'push',
        '-q',
        'origin',
        '--delete',
        'feature-x',
      ]);
    else await execa('svn', ['rm', '-q', '-m', 'Merged', `${repo.url}/branches/feature-x`]);

    const r = await st.cli(['poll', '--build']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^branch2 .*gone upstream$/m);
    expect(r.stderr).toContain(
      `branch2: ${repo.featureRef} is gone upstream: switch it to another ref or destroy it`,
    );
    expect(await buildCount(st.root, 'branch1')).toBe(2);
    expect((await st.cli(['status'])).stdout).toMatch(/^branch2 .* gone upstream/m);
    const u = await st.cli(['update', 'branch2']);
    expect(u.exitCode).toBe(1);
    expect(u.stderr).toMatch(/is gone upstream/);
  });

  it('a branch already being updated is skipped with a note, not waited on', async () => {
    const repo = vcs === 'git' ? await gitRepo() : await svnRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const running = startCli(st.root, ['update', 'branch1', '--force'], { DEMO_BUILD_SLEEP: '4' });
    await waitFor('the lock', () =>
      existsSync(join(st.root, '.karlstage', 'locks', 'branch-branch1.lock')),
    );
    await repo.commit(repo.defaultRef, { 'server.mjs': serverSource('2.0') }, 'Release 2.0');
    const started = Date.now();
    const r = await st.cli(['poll', '--build']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/branch1: skipped, already being updated/);
    expect(Date.now() - started).toBeLessThan(4000);
    expect((await running).exitCode).toBe(0);
  });
});

describe('poll: history and outages', () => {
  it('git: a force-push upstream is followed, and update says so', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const old = (await readState(st.root)).branches.branch1!.revision!;
    const work = gitClient(join(repo.dir, 'app-work'), undefined, {
      GIT_AUTHOR_NAME: 'X',
      GIT_AUTHOR_EMAIL: 'x@example.org',
      GIT_COMMITTER_NAME: 'X',
      GIT_COMMITTER_EMAIL: 'x@example.org',
    });
    await work.raw(['checkout', '-q', '--orphan', 'rewritten']);
    await writeFile(join(repo.dir, 'app-work', 'server.mjs'), serverSource('rewritten'));
    await work.raw(['add', '-A']);
    await work.raw(['commit', '-q', '-m', 'History rewritten']);
    await work.raw(['push', '-q', '--force', 'origin', 'HEAD:refs/heads/main']);

    const r = await st.cli(['poll', '--build']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      `history rewritten upstream: ${old.slice(0, 10)} is not in main any more`,
    );
    const b = (await readState(st.root)).branches.branch1!;
    expect(b.lastUpdate?.note).toMatch(/history rewritten upstream/);
    expect(await ask(b.port, 'osf')).toContain('version=rewritten');
  });

  it('svnserve stopped: that branch fails clearly within the timeout, the others still poll', async () => {
    const repo = await svnRepo();
    const served = await svnServe(repo);
    const st = await stagingServer(repo, { source: { timeout: '3', retries: '1' } });
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2', ref: `${served.url}/branches/feature-x` });
    await served.stop();
    const started = Date.now();
    const r = await st.cli(['poll']);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toMatch(/^branch1 .*up to date$/m);
    expect(r.stdout).toMatch(/^branch2 .*poll failed: .*Connection refused/m);
    expect(r.stderr).toMatch(/^branch2: poll failed: /m);
  });
});

describe('cron', () => {
  it('prints poll lines with absolute paths and installs them atomically, readable by cron', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    const cronFile = join(st.root, 'cron.d', 'karlstage');
    const ini = await readFile(st.config, 'utf8');
    await writeFile(
      st.config,
      ini
        .replace('poll = */5 * * * *', 'poll = */10 8-18 * * mon-fri')
        .replace('file = /etc/cron.d/karlstage', `file = ${cronFile}`),
    );

    const printed = await st.cli(['cron']);
    expect(printed.exitCode, printed.stderr).toBe(0);
    const line = printed.stdout.split('\n').find((l) => l.includes('poll --build'))!;
    expect(line).toBe(
      `*/10 8-18 * * mon-fri ${(await import('node:os')).userInfo().username} ${process.execPath} ${join(import.meta.dirname, '..', 'bin', 'karlstage.js')} --config ${st.config} poll --build >> ${join(st.root, '.karlstage', 'logs', 'cron.log')}`,
    );
    expect(existsSync(cronFile)).toBe(false);

    const installed = await st.cli(['cron', '--install']);
    expect(installed.exitCode, installed.stderr).toBe(0);
    expect((await readFile(cronFile, 'utf8')).trimEnd()).toBe(printed.stdout.trimEnd());
    expect(statSync(cronFile).mode & 0o777).toBe(0o644);

    // The installed line really runs: silent on stderr when all is well.
    const [, , , , , , ...command] = line.split(' ');
    const ran = await execa('sh', ['-c', command.join(' ')], { reject: false });
    expect(ran.exitCode).toBe(0);
    expect(ran.stderr).toBe('');
  });

  it.each([
    '*/5 * * *',
    '61 * * * *',
    '0 2 * * funday',
    '@sometimes',
    '5-1 * * * *',
    '0 */0 * * *',
  ])('refuses the schedule %j (exit 2)', async (schedule) => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    const ini = await readFile(st.config, 'utf8');
    await writeFile(st.config, ini.replace('sync = 0 2 * * *', `sync = ${schedule}`));
    const r = await st.cli(['cron']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toContain(`[cron] sync = ${schedule}: `);
  });
});
