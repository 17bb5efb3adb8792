// Covers: src/model/state.ts src/model/sites.ts src/core/lock.ts src/core/children.ts src/core/files.ts src/branches/ src/model/locks.ts
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { readState } from '../src/model/state.js';
import { serverSource } from '../src/demo/sample-app.js';
import { blackhole, killGroup, startCli, waitFor } from './helpers/processes.js';
import { execa } from 'execa';
import { gitRepo, svnRepo, svnServe } from './helpers/repos.js';
import { ask, buildCount, stagingServer } from './helpers/staging.js';
import { onCleanup } from './helpers/tmp.js';

/**
 * Whatever breaks, the next run puts it right: damaged files, stuck locks, a
 * broken site among good ones, interrupted work, servers that hang. Each case
 * ends with a bounded wait, one clear line, the others carrying on, and the
 * next run (or one documented command) repairing it.
 */
const lockFile = (root: string, name: string) => join(root, '.karlstage', 'locks', `${name}.lock`);

/** A live process that is not karlstage (a lock naming it is not karlstage's). */
function otherProgram(): number {
  const child = spawn('sleep', ['300'], { stdio: 'ignore' });
  onCleanup(async () => void child.kill('SIGKILL'));
  return child.pid!;
}

/** A process's start time, as karlstage records it in its locks (/proc/PID/stat field 22). */
function startOf(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!;
}

describe('damaged files', () => {
  it.each([
    ['truncated', (t: string) => t.slice(0, t.length / 2)],
    ['empty', () => ''],
    ['not JSON', () => 'this is not json\n'],
    [
      'of the wrong shape',
      () => JSON.stringify({ version: 1, branches: { branch1: { slot: 'x' } } }),
    ],
  ])(
    'a state.json %s: one clear line, no stack trace; "karlstage repair" puts back the last good copy',
    async (_what, damage) => {
      const repo = await gitRepo();
      const st = await stagingServer(repo);
      await create({ ...st.g, branch: 'branch1' });
      await create({ ...st.g, branch: 'branch2' });
      const file = join(st.root, '.karlstage', 'state.json');
      const good = JSON.parse(await readFile(file, 'utf8'));
      await writeFile(file, damage(await readFile(file, 'utf8')));

      const s = await st.cli(['status']);
      expect(s.exitCode).toBe(1);
      expect(s.stderr).toMatch(
        /^error: .*state\.json is damaged \(.*\): "karlstage repair" puts back the last good copy, or rebuilds it from the branch sites' folders; nothing was changed$/,
      );
      expect(s.stderr).not.toMatch(/\bat \w+ \(/); // no stack trace

      const r = await st.cli(['repair']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stdout).toMatch(
        /state\.json was damaged .*: put back the last good copy \(2 branch sites\)/,
      );
      expect(JSON.parse(await readFile(file, 'utf8'))).toEqual(good);
      expect((await st.cli(['status'])).exitCode).toBe(0);
      expect((await st.cli(['repair'])).stdout).toMatch(/is fine: nothing to repair/);
    },
  );

  it("with the last good copy damaged too, repair rebuilds state.json from the branch sites' folders", async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2', ref: repo.featureRef });
    const before = await readState(st.root);
    await writeFile(join(st.root, '.karlstage', 'state.json'), '{"version": 1, "bran');
    await writeFile(join(st.root, '.karlstage', 'state.json.last-good'), '');

    const dry = await st.cli(['repair', '--dry-run']);
    expect(dry.exitCode, dry.stderr).toBe(0);
    expect(dry.stdout).toContain("rebuild it from the branch sites' folders (branch1, branch2)");
    const r = await st.cli(['repair']);
    expect(r.exitCode, r.stderr).toBe(0);
    const after = await readState(st.root);
    for (const b of ['branch1', 'branch2'])
      expect(after.branches[b]).toMatchObject({
        slot: before.branches[b]!.slot,
        port: before.branches[b]!.port,
        ref: before.branches[b]!.ref,
      });
    // What was built is not known from a folder: the next update builds again, and the site answers.
    const u = await st.cli(['update', '--all']);
    expect(u.exitCode, u.stderr).toBe(0);
    expect(await buildCount(st.root, 'branch2')).toBe(2);
    expect(await ask(after.branches.branch2!.port, 'osf')).toContain('version=1.1-feature-x');
  });

  it.each([
    ['empty', () => ''],
    ['garbage', () => 'not a lock\n'],
    [
      'held by a pid that now belongs to another program',
      () => {
        const pid = otherProgram();
        // Recorded with another start time: the karlstage run that held it is long gone.
        return JSON.stringify({
          pid,
          start: '1',
          host: hostname(),
          command: 'update branch1',
          since: '2026-01-01T00:00:00Z',
          token: 'x',
        });
      },
    ],
    [
      'of an old format, held by a live program that is not karlstage',
      () => {
        const pid = otherProgram();
        return JSON.stringify({
          pid,
          host: hostname(),
          command: 'update branch1',
          since: '2026-01-01T00:00:00Z',
          token: 'x',
        });
      },
    ],
  ])(
    'a branch lock that is %s is taken over, with a line saying so; doctor lists it first',
    async (_what, content) => {
      const repo = await gitRepo();
      const st = await stagingServer(repo);
      await create({ ...st.g, branch: 'branch1' });
      await writeFile(lockFile(st.root, 'branch-branch1'), content());

      const d = await st.cli(['doctor']);
      expect(d.stdout).toMatch(
        /^warn\s+lock branch-branch1\s+stuck: .*; the next run takes it over$/m,
      );

      const r = await st.cli(['update', 'branch1', '--force']);
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.stderr).toMatch(
        /^warning: took over the branch-branch1 lock.*: (the lock file is empty or damaged|pid \d+ now belongs to another program|pid \d+ is not karlstage)$/m,
      );
      expect(await buildCount(st.root, 'branch1')).toBe(2);
      expect(existsSync(lockFile(st.root, 'branch-branch1'))).toBe(false);
    },
  );

  it('a lock held by a live karlstage run is respected: exit 75 naming it', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const pid = otherProgram();
    await writeFile(
      lockFile(st.root, 'branch-branch1'),
      JSON.stringify({
        pid,
        start: startOf(pid),
        host: hostname(),
        command: 'update branch1',
        since: '2026-01-01T00:00:00Z',
        token: 'x',
      }),
    );
    const r = await st.cli(['update', 'branch1']);
    expect(r.exitCode).toBe(75);
    expect(r.stderr).toMatch(
      new RegExp(`holds the branch-branch1 lock: "update branch1" \\(pid ${pid} on `),
    );
  });

  it('an update whose result cannot be recorded fails clearly (never "ok"); the next run records it', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const next = await repo.commit(
      repo.defaultRef,
      { 'server.mjs': serverSource('2.0') },
      'Release 2.0',
    );
    // Someone holds state.json's own lock for longer than the update waits for it.
    const pid = otherProgram();
    await writeFile(
      lockFile(st.root, 'state'),
      JSON.stringify({
        pid,
        start: startOf(pid),
        host: hostname(),
        command: 'a slow run',
        since: '2026-01-01T00:00:00Z',
        token: 'x',
      }),
    );
    const r = await st.cli(['update', 'branch1'], { KARLSTAGE_STATE_LOCK_WAIT: '1' });
    // 75: the lock of another run; the next run finishes what this one could not record.
    expect(r.exitCode).toBe(75);
    expect(r.stderr).toMatch(
      /^error: the work is done, but its result could not be recorded: another karlstage run holds the state lock: "a slow run".*; the next run finishes it$/m,
    );
    expect(r.stdout).not.toMatch(/^ok/m);
    const s = await st.cli(['status']);
    expect(s.stderr).toBe('');

    await rm(lockFile(st.root, 'state'));
    expect((await st.cli(['status'])).stdout).toContain('branch1: an update was interrupted');
    const again = await st.cli(['update', 'branch1']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect((await readState(st.root)).branches.branch1!.built!.revision).toBe(next);
    expect((await st.cli(['status'])).stdout).not.toContain('interrupted');
  });
});

describe('a full disk under .karlstage', () => {
  it('a state write that finds no room, or only part of it: one line naming the file, no stack trace, state intact; with room again it works', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    // .karlstage on a small filesystem of its own (tmpfs, as root), filled up once the site exists.
    const meta = join(st.root, '.karlstage');
    await mkdir(meta, { recursive: true });
    await execa('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', meta]);
    onCleanup(async () => void (await execa('umount', ['-l', meta], { reject: false })));
    await create({ ...st.g, branch: 'branch1' });
    const good = await readFile(join(meta, 'state.json'), 'utf8');
    const filler = join(meta, 'filler');
    await execa('dd', ['if=/dev/zero', `of=${filler}`, 'bs=64k', 'count=64'], { reject: false });
    const reason = `testing ${'x'.repeat(16_000)}`; // a state.json of some 17 kB

    // Room for the lock, and for part of the new state.json: the write comes up short, and what
    // is written never replaces the good file (write-file-atomic renamed the part into place).
    await execa('truncate', ['-s', '-8K', filler]);
    const short = await st.cli(['hold', 'branch1', '--reason', reason]);
    expect(short.exitCode).toBe(1);
    expect(short.stderr).toMatch(
      /^error: cannot write \S*\/\.karlstage\/state\.json: no space left on device \(ENOSPC\)$/m,
    );
    expect(short.stderr).not.toMatch(/\bat \w+ \(|internal error/);
    expect(await readFile(join(meta, 'state.json'), 'utf8')).toBe(good);
    expect(readdirSync(meta).filter((f) => f.endsWith('.tmp'))).toEqual([]);

    // No room at all: the lock cannot be taken; said in one line naming it.
    await execa('dd', ['if=/dev/zero', `of=${join(meta, 'filler2')}`, 'bs=4k', 'count=64'], {
      reject: false,
    });
    const full = await st.cli(['hold', 'branch1', '--reason', 'testing']);
    expect(full.exitCode).toBe(1);
    expect(full.stderr).toMatch(
      /^error: cannot write \S*\/\.karlstage\/\S+: no space left on device \(ENOSPC\)$/m,
    );
    expect(full.stderr).not.toMatch(/\bat \w+ \(|internal error/);
    expect(await readFile(join(meta, 'state.json'), 'utf8')).toBe(good);

    await rm(filler);
    await rm(join(meta, 'filler2'));
    const again = await st.cli(['hold', 'branch1', '--reason', reason]);
    expect(again.exitCode, again.stderr).toBe(0);
    expect((await readState(st.root)).branches.branch1!.hold?.reason).toBe(reason);
  });
});

describe('one broken site does not stop the others', () => {
  it('a garbage instances.ini, a source checkout and a site folder removed by hand: one line each, everywhere', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    for (const b of ['branch1', 'branch2', 'branch3']) await create({ ...st.g, branch: b });
    const ini = join(st.root, 'branch1', 'etc', 'instances.ini');
    await writeFile(ini, '[instance:osf\ngarbage\n');
    await rm(join(st.root, 'branch2', 'src', 'karl'), { recursive: true, force: true });
    await rm(join(st.root, 'branch3'), { recursive: true, force: true });
    const broken = `${ini} line 1: "[instance:osf" comes before the first [section], which Python refuses: put it inside a section or make it a comment`;
    const gone = `${join(st.root, 'branch3')} is missing (removed by hand?): "karlstage destroy branch3 --yes" forgets the site, then create it again`;
    const source = `${join(st.root, 'branch2', 'src', 'karl')} is missing (removed by hand?): "karlstage update branch2" checks it out again`;

    // status and doctor say the same line that update says.
    const s = await st.cli(['status']);
    expect(s.stdout).toMatch(/^branch1 .* broken: instances\.ini line 1 /m);
    expect(s.stdout).toMatch(/^branch3 .* broken: site folder missing /m);
    for (const line of [`branch1: ${broken}`, `branch2: ${source}`, `branch3: ${gone}`])
      expect(s.stdout.split('\n')).toContain(line);
    const d = await st.cli(['doctor']);
    for (const [site, line] of [
      ['branch1', broken],
      ['branch2', source],
      ['branch3', gone],
    ])
      expect(d.stdout.split('\n').map((l) => l.replace(/\s+/g, ' '))).toContain(
        `FAIL site ${site} ${line}`,
      );

    // The site list (published with no customer for a broken site) says it too.
    const l = await st.cli(['sites']);
    expect(l.exitCode).toBe(0);
    expect(l.stderr.split('\n')).toContain(`warning: branch1: ${broken}`);
    expect(l.stderr.split('\n')).toContain(`warning: branch3: ${gone}`);

    const r = await st.cli(['update', '--all', '--force']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^error: update: 2 of 3 failed$/m);
    expect(r.stderr.split('\n')).toContain(`branch1: ${broken}`);
    expect(r.stderr.split('\n')).toContain(`branch3: ${gone}`);
    expect(await readFile(ini, 'utf8')).toBe('[instance:osf\ngarbage\n');
    expect(await buildCount(st.root, 'branch1')).toBe(1);
    // The source checkout is checked out again and built; the site serves again.
    expect(r.stdout).toMatch(/src\/karl is missing \(removed by hand\?\): checking out main/);
    expect(await buildCount(st.root, 'branch2')).toBe(2);
    expect(existsSync(join(st.root, 'branch2', 'src', 'karl', 'server.mjs'))).toBe(true);
    expect(await ask((await readState(st.root)).branches.branch2!.port, 'osf')).toContain(
      'branch=branch2',
    );
    expect((await st.cli(['status'])).stdout).not.toMatch(/branch2: /);
  });
});

describe('interrupted work is always visible and redone', () => {
  it('a forced update killed during restart: status says so, and the next update (or poll --build) finishes it', async () => {
    const repo = await svnRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2' });
    const ini = await readFile(st.config, 'utf8');
    // restart = a script that stops the app and then hangs: the kill lands with the app down.
    await writeFile(
      join(st.root, 'branch1', 'bin', 'slow-restart'),
      '#!/bin/sh\nbin/supervisorctl shutdown\necho stopped > var/restart.started\nexec sleep 60\n',
      { mode: 0o755 },
    );
    await writeFile(st.config, ini.replace(/^restart = .*$/m, 'restart = bin/slow-restart'));
    const run = startCli(st.root, ['update', 'branch1', '--force']);
    await waitFor('the restart to begin', () =>
      existsSync(join(st.root, 'branch1', 'var', 'restart.started')),
    );
    killGroup(run.pid);
    await run;
    await writeFile(st.config, ini);
    const port = (await readState(st.root)).branches.branch1!.port;
    await expect(fetch(`http://127.0.0.1:${port}/osf/`)).rejects.toThrow();

    const s = await st.cli(['status']);
    expect(s.stdout).toMatch(
      /branch1: an update was interrupted \(.*\); the next "karlstage update branch1" \(or poll --build\) finishes it/,
    );
    // Nothing new upstream: poll --build still finishes it (the revision says "built").
    const p = await st.cli(['poll', '--build']);
    expect(p.exitCode, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/finishing an interrupted update/);
    expect(await ask(port, 'osf')).toContain('branch=branch1');
    expect((await st.cli(['status'])).stdout).not.toContain('interrupted');
  });
});

describe('a pending marker that cannot be read', () => {
  it('is an interrupted change: status and doctor name it, the next update redoes it', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const file = join(st.root, '.karlstage', 'pending', 'branch1.json');
    await mkdir(join(st.root, '.karlstage', 'pending'), { recursive: true });
    await writeFile(file, '{"op": "upd'); // cut short, as a full disk or a kill leaves it

    const s = await st.cli(['status']);
    expect(s.stdout).toContain(
      `branch1: a change was interrupted (${file} is damaged (not JSON)); the next "karlstage update branch1" (or poll --build) finishes it`,
    );
    const d = await st.cli(['doctor']);
    expect(d.stdout).toMatch(
      /^warn\s+pending branch1\s+\S+branch1\.json is damaged \(not JSON\): the next "karlstage update branch1" finishes it$/m,
    );
    // Nothing new upstream, already built: still redone, because the change was interrupted.
    const u = await st.cli(['update', 'branch1']);
    expect(u.exitCode, u.stderr).toBe(0);
    expect(await buildCount(st.root, 'branch1')).toBe(2);
    expect(existsSync(file)).toBe(false);
    expect((await st.cli(['status'])).stdout).not.toContain('interrupted');
  });
});

describe('servers that hang are bounded', () => {
  it('an http git server that accepts and never answers: create and poll end within the timeout, nothing left running', async () => {
    const hole = await blackhole();
    const repo = await gitRepo();
    const url = `http://127.0.0.1:${hole.port}/karl.git`;
    const st = await stagingServer(repo, { url, source: { timeout: '2', retries: '0' } });
    const c = await st.cli(['create', 'branch1']);
    expect(c.exitCode).toBe(2);
    expect(c.stderr).toMatch(
      new RegExp(`^error: cannot reach ${url} \\(1 attempt\\): no answer within 2 s`),
    );

    // poll on a staging root whose sites follow that server (as when it hangs after they were made).
    const st2 = await stagingServer(repo);
    await create({ ...st2.g, branch: 'branch1' });
    await writeFile(
      st2.config,
      (await readFile(st2.config, 'utf8'))
        .replace(/^url = .*$/m, `url = ${url}`)
        .replace(/^timeout = 20$/m, 'timeout = 2'),
    );
    const p = await st2.cli(['poll']);
    expect(p.exitCode).toBe(1);
    expect(p.stdout).toMatch(/branch1 .*poll failed: no answer within 2 s/);
    // git's remote helper did not outlive the timeout.
    expect(
      readdirSync('/proc')
        .filter((x) => /^\d+$/.test(x))
        .some((x) => {
          try {
            return readFileSync(`/proc/${x}/cmdline`, 'utf8').includes(`127.0.0.1:${hole.port}`);
          } catch {
            return false;
          }
        }),
    ).toBe(false);
  });

  it('a changed [source] url (git): poll sees the new head and update fetches from there', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    // The repository moves: a copy at a new place, which then gets a commit the old one lacks.
    const moved = join(repo.dir, 'moved.git');
    const git = (args: string[], cwd?: string) => execa('git', args, { cwd, env: GIT_ENV });
    await git(['clone', '-q', '--bare', join(repo.dir, 'app.git'), moved]);
    const work = join(repo.dir, 'moved-work');
    await git(['clone', '-q', moved, work]);
    await writeFile(join(work, 'server.mjs'), serverSource('9.0'));
    await git(['commit', '-qam', 'At the new place'], work);
    await git(['push', '-q', 'origin', 'main'], work);
    const head = (await git(['rev-parse', 'HEAD'], work)).stdout.trim();
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(/^url = .*$/m, `url = file://${moved}`),
    );
    expect((await st.cli(['poll'])).stdout).toMatch(/branch1 .*behind/);
    const u = await st.cli(['update', 'branch1']);
    expect(u.exitCode, u.stderr).toBe(0);
    const b = (await readState(st.root)).branches.branch1!;
    expect(b.built!.revision).toBe(head);
    expect(await ask(b.port, 'osf')).toContain('version=9.0');
  });

  it('a changed [source] url (svn): update relocates the working copy to the new address', async () => {
    const repo = await svnRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    // The same repository, now served by svnserve: the old file:// address is to be forgotten.
    const served = await svnServe(repo);
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(/^url = .*$/m, `url = ${served.url}`),
    );
    const head = await repo.commit('trunk', { 'server.mjs': serverSource('9.0') }, 'Moved');
    expect((await st.cli(['poll'])).stdout).toMatch(/branch1 .*behind/);
    const u = await st.cli(['update', 'branch1']);
    expect(u.exitCode, u.stderr).toBe(0);
    expect((await readState(st.root)).branches.branch1!.built!.revision).toBe(head);
    const info = await execa('svn', [
      'info',
      '--show-item',
      'repos-root-url',
      join(st.root, 'branch1', 'src', 'karl'),
    ]);
    expect(info.stdout.trim()).toBe(served.url.replace(/\/+$/, ''));
  });
});

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'Karl Test',
  GIT_AUTHOR_EMAIL: 'test@example.org',
  GIT_COMMITTER_NAME: 'Karl Test',
  GIT_COMMITTER_EMAIL: 'test@example.org',
};
