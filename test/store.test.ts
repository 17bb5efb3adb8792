// Covers: src/vcs/git.ts src/vcs/git-store.ts src/branches/source.ts
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { update } from '../src/commands/update.js';
import { serverSource } from '../src/demo/sample-app.js';
import { readState } from '../src/model/state.js';
import { killGroup, startCli, waitFor } from './helpers/processes.js';
import { gitRepo } from './helpers/repos.js';
import { ask, stagingServer } from './helpers/staging.js';
import { tempDir } from './helpers/tmp.js';

/**
 * Every git branch site takes its objects from one store under .karlstage/:
 * an extra site costs its checkout, not another clone. Tested on real
 * repositories: several sites (two on one branch), a force-push, local
 * commits, a store deleted by hand, gc in the store, kills midway.
 */
const git = (cwd: string, args: string[]) =>
  execa('git', ['-C', cwd, ...args], {
    env: {
      GIT_AUTHOR_NAME: 'Someone',
      GIT_AUTHOR_EMAIL: 'someone@example.org',
      GIT_COMMITTER_NAME: 'Someone',
      GIT_COMMITTER_EMAIL: 'someone@example.org',
    },
  });
const store = (root: string) => join(root, '.karlstage', 'git', 'source.git');
const source = (root: string, branch: string) => join(root, branch, 'src', 'karl');
/** The objects a site's own .git holds (loose and packed): those the store has are not among them. */
async function ownObjects(dir: string): Promise<number> {
  const out = (await git(dir, ['count-objects', '-v'])).stdout;
  const n = (key: string) => Number(new RegExp(`^${key}: (\\d+)$`, 'm').exec(out)?.[1] ?? 0);
  return n('count') + n('in-pack');
}

describe('one git object store for every branch site', () => {
  it('four sites, two on one branch, share the store; each answers; a site holds no objects of its own', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2' });
    await create({ ...st.g, branch: 'branch3', ref: repo.featureRef });
    await create({ ...st.g, branch: 'branch4', ref: 'v1.0' });
    const state = await readState(st.root);
    for (const b of ['branch1', 'branch2', 'branch3', 'branch4']) {
      const dir = source(st.root, b);
      expect(readFileSync(join(dir, '.git', 'objects', 'info', 'alternates'), 'utf8').trim()).toBe(
        join(store(st.root), 'objects'),
      );
      expect(await ownObjects(dir), b).toBe(0);
      // No credentials and no upstream address in the site: its origin is the store.
      expect((await git(dir, ['remote', 'get-url', 'origin'])).stdout).toBe(store(st.root));
      expect(await ask(state.branches[b]!.port, 'osf')).toContain(`branch=${b}`);
    }
    expect(
      (await git(source(st.root, 'branch1'), ['rev-parse', '--abbrev-ref', 'HEAD'])).stdout,
    ).toBe('main');
    expect(
      (await git(source(st.root, 'branch2'), ['rev-parse', '--abbrev-ref', 'HEAD'])).stdout,
    ).toBe('main');
    expect(
      (await git(source(st.root, 'branch4'), ['rev-parse', '--abbrev-ref', 'HEAD'])).stdout,
    ).toBe('HEAD');

    // One fetch for all: a new commit reaches both sites on main through one fetch into the store.
    const next = await repo.commit('main', { 'server.mjs': serverSource('2.0') }, 'Release 2.0');
    await update({ ...st.g, branches: [], all: true });
    const after = await readState(st.root);
    expect(after.branches.branch1!.built!.revision).toBe(next);
    expect(after.branches.branch2!.built!.revision).toBe(next);
    const log = readFileSync(
      join(
        st.root,
        '.karlstage',
        'logs',
        (await import('node:fs'))
          .readdirSync(join(st.root, '.karlstage', 'logs'))
          .filter((f) => f.includes('update'))
          .sort()
          .at(-1)!,
      ),
      'utf8',
    );
    expect(log.match(/ fetch -q --prune --force -- /g)).toHaveLength(1);
  });

  it("a force-push upstream is followed; the store's gc never takes a commit a site still has checked out", async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const old = await repo.commit(
      'main',
      { 'server.mjs': serverSource('1.5') },
      'To be rewritten away',
    );
    await update({ ...st.g, branches: ['branch1'] });
    // branch2 sits on that commit by its id, detached.
    await create({ ...st.g, branch: 'branch2', ref: old });
    // Upstream rewrites main: the commit is gone from every branch there.
    const work = join(repo.dir, 'app-work');
    await git(work, ['reset', '-q', '--hard', 'HEAD~1']);
    await writeFile(join(work, 'server.mjs'), serverSource('1.6'));
    await git(work, ['commit', '-qam', 'Rewritten']);
    await git(work, ['push', '-q', '--force', 'origin', 'main']);
    const u = await st.cli(['update', 'branch1']);
    expect(u.exitCode, u.stderr).toBe(0);
    expect(u.stdout).toMatch(/history rewritten upstream/);

    await git(store(st.root), ['gc', '-q', '--prune=now']);
    // branch2 still has every object of its commit (kept by refs/karlstage/keep/branch2).
    await git(source(st.root, 'branch2'), ['fsck', '--no-progress']);
    expect((await git(source(st.root, 'branch2'), ['rev-parse', 'HEAD'])).stdout).toBe(old);
    const again = await st.cli(['update', 'branch2', '--force']);
    expect(again.exitCode, again.stderr).toBe(0);
  });

  it('local commits in a site are refused clearly, not dropped (--force drops them)', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const dir = source(st.root, 'branch1');
    await writeFile(join(dir, 'hotfix.txt'), 'a hotfix made on the staging server\n');
    await git(dir, ['add', 'hotfix.txt']);
    await git(dir, ['commit', '-qm', 'Hotfix on staging']);
    await repo.commit('main', { 'server.mjs': serverSource('2.0') }, 'Release 2.0');
    const r = await st.cli(['update', 'branch1']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /has 1 local commit that is not upstream: push it, or pass --force to drop it/,
    );
    expect(existsSync(join(dir, 'hotfix.txt'))).toBe(true);
    const forced = await st.cli(['update', 'branch1', '--force']);
    expect(forced.exitCode, forced.stderr).toBe(0);
    expect(existsSync(join(dir, 'hotfix.txt'))).toBe(false);
    // Dropped, not lost: the site keeps the commit under a ref of its own (it has no reflogs).
    const kept = (
      await git(dir, [
        'log',
        '-1',
        '--format=%s',
        '--branches=karlstage',
        '--glob=refs/karlstage/dropped/*',
      ])
    ).stdout;
    expect(kept).toBe('Hotfix on staging');
  });

  it('a store deleted by hand is rebuilt by the next run; every site works on', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2', ref: repo.featureRef });
    await rm(store(st.root), { recursive: true, force: true });
    const next = await repo.commit('main', { 'server.mjs': serverSource('2.0') }, 'Release 2.0');
    const r = await st.cli(['update', '--all']);
    expect(r.exitCode, r.stderr).toBe(0);
    for (const b of ['branch1', 'branch2'])
      await git(source(st.root, b), ['fsck', '--no-progress']);
    expect((await readState(st.root)).branches.branch1!.built!.revision).toBe(next);
    const d = await st.cli(['doctor']);
    expect(d.stdout).toMatch(
      /^ok\s+git store\s+.*source\.git: whole \(fsck\), [\d.]+ \w+ of packed objects/m,
    );
  });

  it('a site made before the store moves onto it on its next update, in place, keeping local changes', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const port = (await readState(st.root)).branches.branch1!.port;
    // The site as older karlstage made it: a full clone of its own, origin the upstream URL.
    const dir = source(st.root, 'branch1');
    await rm(join(dir, '.git'), { recursive: true, force: true });
    const tmp = join(await tempDir(), 'clone');
    await execa('git', ['clone', '-q', '--no-checkout', repo.url, tmp]);
    await execa('mv', [join(tmp, '.git'), join(dir, '.git')]);
    await git(dir, ['reset', '-q']);
    await git(dir, ['checkout', '-q', '-B', 'main', '--track', 'origin/main']);
    expect(await ownObjects(dir)).toBeGreaterThan(0);
    await writeFile(join(dir, 'README.txt'), 'an uncommitted local change\n');

    // Something new upstream, and local changes: refused clearly, nothing moved.
    await repo.commit(repo.defaultRef, { 'NEWS.txt': 'news\n' }, 'News');
    const refused = await st.cli(['update', 'branch1']);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toMatch(/has local changes: commit or revert them, or pass --force/);
    expect(existsSync(join(dir, '.git', 'objects', 'info', 'alternates'))).toBe(false);
    await git(dir, ['checkout', '-q', '--', 'README.txt']);

    const r = await st.cli(['update', 'branch1', '--force']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(existsSync(join(dir, '.git', 'objects', 'info', 'alternates'))).toBe(true);
    expect(await ownObjects(dir)).toBe(0);
    expect((await git(dir, ['remote', 'get-url', 'origin'])).stdout).toBe(store(st.root));
    expect(await ask(port, 'osf')).toContain('branch=branch1');
  });
});

/**
 * A stand-in for git, first on PATH: when its arguments hold `block`, it says so (a file) and
 * waits until the test lets it go or kills it; otherwise it is git.
 */
async function heldGit(
  block: string,
): Promise<{ env: Record<string, string>; held: string; go: string }> {
  const dir = await tempDir('ks-heldgit-');
  const [held, go] = [join(dir, 'held'), join(dir, 'go')];
  await mkdir(join(dir, 'bin'));
  const real = (await execa('sh', ['-c', 'command -v git'])).stdout.trim();
  await writeFile(
    join(dir, 'bin', 'git'),
    `#!/bin/sh\ncase " $* " in *" ${block} "*) touch '${held}'; while [ ! -e '${go}' ]; do sleep 0.05; done ;; esac\nexec ${real} "$@"\n`,
  );
  await chmod(join(dir, 'bin', 'git'), 0o755);
  return { env: { PATH: `${join(dir, 'bin')}:${process.env.PATH}` }, held, go };
}

describe('killed midway, the next run repairs the store and the site', () => {
  it('kill -9 during the first fetch into the store', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    const h = await heldGit('fetch');
    const run = startCli(st.root, ['create', 'branch1'], h.env);
    await waitFor('the fetch into the store', () => existsSync(h.held));
    killGroup(run.pid);
    await run;
    expect(existsSync(store(st.root))).toBe(true);
    const again = await st.cli(['create', 'branch1']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(await ask((await readState(st.root)).branches.branch1!.port, 'osf')).toContain(
      'branch=branch1',
    );
  });

  it("kill -9 during a site's checkout", async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const h = await heldGit('init');
    const run = startCli(st.root, ['create', 'branch2'], h.env);
    await waitFor("branch2's checkout", () => existsSync(h.held));
    killGroup(run.pid);
    await run;
    expect((await readState(st.root)).branches.branch2).toBeUndefined();
    expect((await st.cli(['status'])).stdout).toContain('branch2: a create was interrupted');
    const again = await st.cli(['create', 'branch2']);
    expect(again.exitCode, again.stderr).toBe(0);
    await git(source(st.root, 'branch2'), ['fsck', '--no-progress']);
    expect(await ask((await readState(st.root)).branches.branch2!.port, 'osf')).toContain(
      'branch=branch2',
    );
    expect(await readFile(join(st.root, 'branch2', 'etc', 'instances.ini'), 'utf8')).toContain(
      '[instance:osf]',
    );
  });
});

/** The refs a site holds (name and commit), and whether it keeps reflogs. */
async function refsOf(dir: string): Promise<string[]> {
  return (await git(dir, ['for-each-ref', '--format=%(refname)'])).stdout
    .split('\n')
    .filter(Boolean);
}
const headOf = async (dir: string) => (await git(dir, ['rev-parse', 'HEAD'])).stdout;
/** Everything a site reaches (its refs, HEAD, index, through the store's objects) is there. */
const whole = (dir: string) => git(dir, ['fsck', '--no-progress', '--no-dangling']);
const exists = async (dir: string, id: string) =>
  (await execa('git', ['--git-dir', dir, 'cat-file', '-e', `${id}^{commit}`], { reject: false }))
    .exitCode === 0;

describe('the store survives force-pushes, gc and damage (issue 27)', () => {
  it("force-push upstream, a gc of the store, then karlstage's own gc: every site on its ref updates on, its commits intact", async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    const s = store(st.root);
    const v1 = (await git(join(repo.dir, 'app.git'), ['rev-parse', 'v1.0^{commit}'])).stdout;
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2', ref: repo.featureRef });
    await create({ ...st.g, branch: 'branch3', ref: 'v1.0' });
    await create({ ...st.g, branch: 'branch4', ref: v1 });
    await create({ ...st.g, branch: 'branch5' });
    // branch5 as an older karlstage made it: `git clone --shared` of the store, so it holds
    // every branch and tag of the store as refs, and reflogs.
    const old = source(st.root, 'branch5');
    await rm(join(old, '.git'), { recursive: true, force: true });
    const tmp = join(await tempDir(), 'clone');
    await execa('git', ['clone', '-q', '--shared', '--no-checkout', s, tmp]);
    await execa('mv', [join(tmp, '.git'), join(old, '.git')]);
    await git(old, ['checkout', '-q', '-f', '-B', 'main', '--track', 'origin/main']);
    const x = (await git(old, ['rev-parse', 'origin/feature-x'])).stdout;

    // New sites hold only what the store keeps: no tags, no other branches, no reflogs.
    expect(await refsOf(source(st.root, 'branch1'))).toEqual([
      'refs/heads/main',
      'refs/remotes/origin/main',
    ]);
    expect(await refsOf(source(st.root, 'branch3'))).toEqual([]);
    expect(existsSync(join(source(st.root, 'branch1'), '.git', 'logs'))).toBe(false);
    for (const dir of [s, source(st.root, 'branch1')])
      expect((await git(dir, ['config', 'gc.auto'])).stdout).toBe('0');

    // Upstream rewrites feature-x; branch2 follows it; then the gc the issue describes.
    const work = join(repo.dir, 'app-work');
    await git(work, ['checkout', '-q', 'feature-x']);
    await git(work, ['commit', '-q', '--amend', '-m', 'Feature X, rewritten']);
    await git(work, ['push', '-q', '--force', 'origin', 'feature-x']);
    await git(work, ['checkout', '-q', 'main']);
    const u = await st.cli(['update', 'branch2']);
    expect(u.exitCode, u.stderr).toBe(0);
    await git(s, ['reflog', 'expire', '--expire=now', '--all']);
    await git(s, ['gc', '-q', '--prune=now']);
    // Nothing kept the old feature-x: gone from the store, though branch5 still names it.
    expect(await exists(s, x)).toBe(false);

    const main2 = await repo.commit('main', { 'NEWS.txt': 'news\n' }, 'News');
    const x2 = await repo.commit('feature-x', { 'X.txt': 'x\n' }, 'More X');
    const all = await st.cli(['update', '--all']);
    expect(all.exitCode, all.stderr).toBe(0);
    const want: Record<string, string> = {
      branch1: main2,
      branch2: x2,
      branch3: v1,
      branch4: v1,
      branch5: main2,
    };
    for (const [b, id] of Object.entries(want)) {
      const dir = source(st.root, b);
      expect(await headOf(dir), b).toBe(id);
      await whole(dir);
    }
    // The older site was tidied as it moved: its stale refs and reflogs are gone.
    expect(await refsOf(old)).toEqual(['refs/heads/main', 'refs/remotes/origin/main']);
    expect(existsSync(join(old, '.git', 'logs'))).toBe(false);

    // karlstage's own gc, once packs pile up: it holds what a site references (a branch someone
    // made in branch1 on the rewritten-away commit) and prunes what nothing does.
    const kept = (await git(join(repo.dir, 'app.git'), ['rev-parse', 'feature-x'])).stdout;
    await git(work, ['fetch', '-q', 'origin']);
    await git(work, ['checkout', '-q', '-B', 'feature-x', 'origin/feature-x']);
    await git(work, ['commit', '-q', '--amend', '-m', 'More X, rewritten']);
    await git(work, ['push', '-q', '--force', 'origin', 'feature-x']);
    await git(work, ['checkout', '-q', 'main']);
    await git(work, ['push', '-q', 'origin', `${kept}:refs/heads/doomed`]);
    const doomed = await repo.commit('doomed', { 'D.txt': 'd\n' }, 'Doomed');
    expect((await st.cli(['update', 'branch2'])).exitCode).toBe(0);
    await git(work, ['push', '-q', 'origin', '--delete', 'doomed']);
    await git(source(st.root, 'branch1'), ['branch', 'experiment', kept]);
    await git(s, ['config', 'gc.pruneExpire', 'now']);
    // Fifty small packs, as fifty fetches leave them.
    for (let i = 0; i < 50; i++) {
      const id = (
        await execa('git', ['--git-dir', s, 'hash-object', '-w', '--stdin'], { input: `f${i}` })
      ).stdout;
      await execa(
        'git',
        ['--git-dir', s, 'pack-objects', '-q', join(s, 'objects', 'pack', 'pack')],
        {
          input: `${id}\n`,
        },
      );
    }
    await repo.commit('main', { 'NEWS.txt': 'more news\n' }, 'More news');
    const gc = await st.cli(['update', 'branch1']);
    expect(gc.exitCode, gc.stderr).toBe(0);
    const packs = (await import('node:fs')).readdirSync(join(s, 'objects', 'pack'));
    expect(packs.filter((f) => f.endsWith('.pack')).length).toBeLessThan(5);
    expect(await exists(s, doomed)).toBe(false);
    expect(await exists(s, kept)).toBe(true);
    for (const b of Object.keys(want)) await whole(source(st.root, b));
    const after = await st.cli(['update', '--all', '--force']);
    expect(after.exitCode, after.stderr).toBe(0);
  });

  it('each kind of damage is repaired, in place where it can be; a deleted store is rebuilt by a quiet update and by poll --build, with commits only the store or a site had', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    const s = store(st.root);
    const work = join(repo.dir, 'app-work');
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2', ref: repo.featureRef });
    // branch3 and branch4 sit on branches deleted upstream since: only the store has their
    // commits; branch4 also holds a copy of its own (as a site made before the store does).
    await repo.commit('doomed', { 'D.txt': 'd\n' }, 'Doomed');
    await git(work, ['checkout', '-q', 'main']);
    await repo.commit('doomed2', { 'D2.txt': 'd2\n' }, 'Doomed too');
    await create({ ...st.g, branch: 'branch3', ref: 'doomed' });
    await create({ ...st.g, branch: 'branch4', ref: 'doomed2' });
    await git(work, ['push', '-q', 'origin', '--delete', 'doomed', 'doomed2']);
    await git(source(st.root, 'branch4'), ['repack', '-a', '-d', '-q']);
    const sites = ['branch1', 'branch2', 'branch3', 'branch4'];
    const heads: Record<string, string> = {};
    for (const b of sites) heads[b] = await headOf(source(st.root, b));
    const looseFile = (id: string) => join(s, 'objects', id.slice(0, 2), id.slice(2));
    /** Every site whole at its commit, and the store keeping each. */
    const intact = async (what: string, except: string[] = []) => {
      for (const b of sites.filter((x) => !except.includes(x))) {
        const dir = source(st.root, b);
        expect(await headOf(dir), `${what}: ${b}`).toBe(heads[b]);
        await whole(dir);
        expect((await git(s, ['rev-parse', `refs/karlstage/keep/${b}`])).stdout).toBe(heads[b]);
      }
      await git(s, ['fsck', '--connectivity-only', '--no-progress']);
    };

    const damages: [string, () => Promise<void>, RegExp][] = [
      ['garbage config', () => writeFile(join(s, 'config'), '[garbage\n'), /config \(kept as/],
      [
        'garbage packed-refs',
        async () => {
          await git(s, ['pack-refs', '--all', '--prune']);
          await writeFile(join(s, 'packed-refs'), 'garbage\n');
        },
        /packed-refs \(kept as/,
      ],
      [
        'three loose objects deleted',
        async () => {
          const ids = [
            (await git(s, ['rev-parse', 'refs/heads/main^{tree}'])).stdout,
            (await git(s, ['rev-parse', 'refs/heads/main:server.mjs'])).stdout,
            heads.branch2!,
          ];
          for (const id of ids) await rm(looseFile(id)); // fails if it was not a loose object
        },
        /objects were missing from the store/,
      ],
      ['garbage HEAD', () => writeFile(join(s, 'HEAD'), 'garbage\n'), /HEAD \(kept as/],
      ['refs/ removed', () => rm(join(s, 'refs'), { recursive: true }), /refs\/ \(missing\)/],
    ];
    for (const [what, damage, said] of damages) {
      await damage();
      // Nothing new upstream: the update only checks the store, and repairs it.
      const r = await st.cli(['update', 'branch1', 'branch2']);
      expect(r.exitCode, `${what}: ${r.stderr}`).toBe(0);
      expect(r.stderr, what).toMatch(said);
      await intact(what);
    }
    expect((await git(s, ['config', 'gc.auto'])).stdout).toBe('0');
    // Files of a site that does not move (a tree and a blob: the cheap check before a quiet run
    // reads commits only) are found, and fetched again, by the next run that fetches.
    for (const id of [
      (await git(s, ['rev-parse', `${heads.branch2}^{tree}`])).stdout,
      (await git(s, ['rev-parse', `${heads.branch2}:server.mjs`])).stdout,
    ])
      await rm(looseFile(id));
    const main2 = await repo.commit('main', { 'NEWS.txt': 'news\n' }, 'News');
    const moved = await st.cli(['update', 'branch1', 'branch2']);
    expect(moved.exitCode, moved.stderr).toBe(0);
    expect(moved.stderr).toMatch(
      /objects the sites need were missing from the store: fetched again/,
    );
    heads.branch1 = main2;
    await intact('after a real update');

    // The store deleted: a quiet update rebuilds it; branch4's commit comes back from the site's
    // own objects; branch3's was only in the store, and is said to be gone.
    await rm(s, { recursive: true, force: true });
    const quiet = await st.cli(['update', 'branch1', 'branch2']);
    expect(quiet.exitCode, quiet.stderr).toBe(0);
    expect(quiet.stderr).toMatch(/was missing: made anew/);
    expect(quiet.stderr).toMatch(/fetched the commit of branch4 from the site's own objects/);
    expect(quiet.stderr).toMatch(/branch3: its commit \w+ is gone for good/);
    await intact('deleted store, quiet update', ['branch3']);
    const stuck = await st.cli(['update', 'branch3']);
    expect(stuck.exitCode).toBe(1);
    expect(stuck.stderr).toMatch(/gone for good/);
    for (const b of ['branch3', 'branch4']) {
      const sw = await st.cli(['switch', b, 'main', '--force']);
      expect(sw.exitCode, `${b}: ${sw.stderr}`).toBe(0);
      heads[b] = main2;
    }
    await intact('switched');

    // The store deleted while upstream cannot be reached: the run fails, saying why; the next
    // one, with upstream back, fetches before it gives up on any commit.
    await rm(s, { recursive: true, force: true });
    const upstream = join(repo.dir, 'app.git');
    await execa('mv', [upstream, `${upstream}.away`]);
    const offline = await st.cli(['update', 'branch1', 'branch2']);
    expect(offline.exitCode).toBe(1);
    expect(offline.stderr).toMatch(/fetch into the shared object store/);
    await execa('mv', [`${upstream}.away`, upstream]);
    const back = await st.cli(['poll', '--build']);
    expect(back.exitCode, back.stderr).toBe(0);
    expect(back.stderr).not.toMatch(/gone for good/);
    await intact('upstream back');

    // The store deleted again, met by cron's poll --build with nothing new; then something new.
    await rm(s, { recursive: true, force: true });
    const poll = await st.cli(['poll', '--build']);
    expect(poll.exitCode, poll.stderr).toBe(0);
    await intact('deleted store, poll --build');
    const main3 = await repo.commit('main', { 'NEWS.txt': 'more news\n' }, 'More news');
    const built = await st.cli(['poll', '--build']);
    expect(built.exitCode, built.stderr).toBe(0);
    for (const b of ['branch1', 'branch3', 'branch4']) heads[b] = main3;
    await intact('poll --build after');
  });
});
