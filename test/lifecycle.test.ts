// Covers: src/branches/create.ts src/branches/update.ts src/branches/destroy.ts src/commands/create.ts src/commands/update.ts src/commands/switch.ts src/commands/destroy.ts src/commands/status.ts src/vcs/ src/instances/ src/model/mail-safety.ts src/model/steps.ts
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { destroy } from '../src/commands/destroy.js';
import { status } from '../src/commands/status.js';
import { switchBranch } from '../src/commands/switch.js';
import { update } from '../src/commands/update.js';
import { KarlstageError, UsageError } from '../src/core/errors.js';
import { readState } from '../src/model/state.js';
import { pythonRead } from './helpers/python-ini.js';
import { serverSource } from '../src/demo/sample-app.js';
import { gitRepo, svnRepo } from './helpers/repos.js';
import { ask, buildCount, stagingServer } from './helpers/staging.js';

async function failure(p: Promise<unknown>): Promise<KarlstageError> {
  try {
    await p;
  } catch (e) {
    return e as KarlstageError;
  }
  throw new Error('expected a failure');
}

describe.each(['git', 'svn'] as const)('branch-site lifecycle on %s', (vcs) => {
  const makeRepo = vcs === 'git' ? gitRepo : svnRepo;

  it('create checks out, writes instances.ini, builds and starts a site serving each customer', async () => {
    const repo = await makeRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });

    const b = (await readState(st.root)).branches.branch1!;
    expect(b).toMatchObject({ name: 'branch1', slot: 1, ref: repo.defaultRef, vcs });
    expect(b.built?.revision).toBe(b.revision);
    expect(await ask(b.port, 'osf')).toBe(
      `KARL demo: branch=branch1 revision=${b.revision} customer=osf version=1.0 prefix=`,
    );
    expect(await ask(b.port, 'another')).toContain('customer=another');

    const ini = await readFile(join(st.root, 'branch1', 'etc', 'instances.ini'), 'utf8');
    expect(ini).toContain('[instance:osf]\n');
    expect(ini).toContain(
      'dsn = host=db.example.com user=karl password=s3cret-pw dbname=ks_branch1_osf\n',
    );
    expect(ini).toContain(
      `mail_white_list = ${join(st.root, '.karlstage', 'mail-allow-list.txt')}\n`,
    );

    const s = await status(st.g);
    expect(s.branches).toEqual([
      expect.objectContaining({
        name: 'branch1',
        ref: repo.defaultRef,
        customers: ['osf', 'another'],
        mail: ['osf'],
        url: 'https://karltest.example.com/branch1/',
      }),
    ]);

    // A second site gets the next slot, here from a tag.
    const tag = vcs === 'git' ? 'v1.0' : 'tags/v1.0';
    await create({ ...st.g, branch: 'branch2', ref: tag, customers: ['osf'] });
    const b2 = (await readState(st.root)).branches.branch2!;
    expect(b2.slot).toBe(2);
    expect(b2.port).toBe(b.port + 1);
    expect(await ask(b2.port, 'osf')).toContain('version=1.0');
    expect(await ask(b2.port, 'another')).toContain('no customer "another"');
  });

  it('update skips a revision already built and builds a new commit exactly once', async () => {
    const repo = await makeRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    expect(await buildCount(st.root, 'branch1')).toBe(1);

    // Nothing new upstream: nothing runs in the site, nothing is written.
    const before = await st.snapshot();
    const same = await update({ ...st.g, branches: ['branch1'] });
    expect(same).toMatchObject({
      ok: true,
      jobs: [{ name: 'branch1', skipped: expect.stringMatching(/already built/) }],
    });
    expect(await buildCount(st.root, 'branch1')).toBe(1);
    expect(await st.snapshot()).toBe(before);

    const rev = await repo.commit(
      repo.defaultRef,
      { 'server.mjs': serverSource('2.0') },
      'Release 2.0',
    );
    await update({ ...st.g, branches: ['branch1'] });
    expect(await buildCount(st.root, 'branch1')).toBe(2);
    const b = (await readState(st.root)).branches.branch1!;
    expect(b.built?.revision).toBe(rev);
    expect(await ask(b.port, 'osf')).toContain(`revision=${rev} customer=osf version=2.0`);
    expect(await readFile(join(st.root, 'branch1', 'var', 'migrations'), 'utf8')).toContain(
      `evolve --latest at ${rev}`,
    );

    await update({ ...st.g, branches: [], all: true });
    expect(await buildCount(st.root, 'branch1')).toBe(2);
    await update({ ...st.g, branches: ['branch1'], force: true });
    expect(await buildCount(st.root, 'branch1')).toBe(3);
  });

  it('switch moves to another ref, and refuses local changes unless --force', async () => {
    const repo = await makeRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const src = join(st.root, 'branch1', 'src', 'karl', 'server.mjs');
    await writeFile(src, serverSource('hotfix'));
    const before = await st.snapshot();

    const e = await failure(switchBranch({ ...st.g, branch: 'branch1', ref: repo.featureRef }));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toMatch(/has local changes: commit or revert them, or pass --force/);
    expect(await st.snapshot()).toBe(before);

    await switchBranch({ ...st.g, branch: 'branch1', ref: repo.featureRef, force: true });
    const b = (await readState(st.root)).branches.branch1!;
    expect(b.ref).toBe(repo.featureRef);
    expect(await ask(b.port, 'osf')).toContain('version=1.1-feature-x');

    // Update now follows the new ref.
    await repo.commit(repo.featureRef, { 'server.mjs': serverSource('1.2-feature-x') }, 'More X');
    await update({ ...st.g, branches: ['branch1'] });
    expect(await ask(b.port, 'osf')).toContain('version=1.2-feature-x');
  });

  it('a failing build fails with its step, command line and output, and keeps the last good revision', async () => {
    const repo = await makeRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const good = (await readState(st.root)).branches.branch1!;
    const bad = await repo.commit(repo.defaultRef, { FAIL_BUILD: 'yes\n' }, 'Break the build');

    const e = await failure(update({ ...st.g, branches: ['branch1'] }));
    expect(e.exitCode).toBe(1);
    expect(e.message).toBe(
      'branch1: build failed: exit status 3 (Error: the source asks this build to fail (FAIL_BUILD))',
    );
    expect(e.details[0]).toBe(`$ ${join(st.root, 'branch1', 'bin', 'buildout')} -N`);
    expect(e.details.join('\n')).toContain(
      'Error: the source asks this build to fail (FAIL_BUILD)',
    );
    expect(e.details.at(-1)).toMatch(/^full output: .*\.karlstage\/logs\/.*update-\d+\.log$/);

    const b = (await readState(st.root)).branches.branch1!;
    expect(b.built?.revision).toBe(good.revision);
    expect(b.revision).toBe(bad);
    expect(b.lastUpdate).toMatchObject({
      result: 'failed',
      revision: bad,
      error:
        'branch1: build failed: exit status 3 (Error: the source asks this build to fail (FAIL_BUILD))',
    });
    expect(await ask(b.port, 'osf')).toContain(`revision=${good.revision}`);
    const s = await st.cli(['status']);
    expect(s.stdout).toMatch(/branch1 .* \(built [r0-9a-f]+\) .*failed: branch1: build failed/);

    const fixed = await repo.commit(repo.defaultRef, { FAIL_BUILD: null }, 'Fix the build');
    await update({ ...st.g, branches: ['branch1'] });
    expect((await readState(st.root)).branches.branch1!.built?.revision).toBe(fixed);
  });

  it('refuses bad input with exit 2 and changes nothing', async () => {
    const repo = await makeRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const before = await st.snapshot();

    for (const name of ['../x', 'Branch', 'a b', 'x;rm', '.hidden', 'sites']) {
      const r = await st.cli(['create', name]);
      expect(r.exitCode, name).toBe(2);
      expect(r.stderr).toMatch(/^error: branch name .* is not allowed: /);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
    const bad = [
      [['create', 'branch1'], /branch site "branch1" exists already/],
      [
        ['create', 'branch2', '--ref', vcs === 'git' ? 'no-such-branch' : 'branches/no-such'],
        /does not exist/,
      ],
      [['create', 'branch2', '--ref', '--upload-pack=x'], /not allowed/],
      [['create', 'branch2', '--customers', 'osf,Bad'], /customer name "Bad" is not allowed/],
      [['switch', 'nope', repo.featureRef], /there is no branch site "nope"/],
      [
        ['switch', 'branch1', vcs === 'git' ? 'no-such-branch' : 'branches/no-such'],
        /does not exist/,
      ],
      [['update', 'nope'], /there is no branch site "nope"/],
      [['update'], /name the branch sites to update, or pass --all/],
      [['destroy', 'nope', '--yes'], /there is no branch site "nope"/],
      [['destroy', 'branch1'], /pass --yes to confirm/],
      [['update', 'branch1', '--jobs', '0'], /expected a whole number of at least 1/],
    ] as const;
    for (const [args, message] of bad) {
      const r = await st.cli([...args]);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(message);
    }
    expect(existsSync(join(st.root, 'branch2'))).toBe(false);
    expect(await st.snapshot()).toBe(before);

    // A broken or missing instances.ini fails the site before anything runs (a broken site: exit 1).
    const ini = join(st.root, 'branch1', 'etc', 'instances.ini');
    const text = await readFile(ini, 'utf8');
    await writeFile(ini, text + '\nthis line is not ini\n');
    let r = await st.cli(['update', 'branch1']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /instances\.ini line \d+: "this line is not ini" is not a \[section\], a "key = value", an indented continuation or a comment, which Python refuses: fix or remove the line/,
    );
    expect(await readFile(ini, 'utf8')).toBe(text + '\nthis line is not ini\n');
    await rm(ini);
    r = await st.cli(['switch', 'branch1', repo.featureRef]);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/instances.ini is missing/);
    expect(await buildCount(st.root, 'branch1')).toBe(1);
  });

  it('update puts back a removed mail_white_list and keeps every other line people wrote', async () => {
    const repo = await makeRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const ini = join(st.root, 'branch1', 'etc', 'instances.ini');
    const testersFile = join(st.root, '.karlstage', 'mail-allow-list.txt');
    // Hand edits Python reads: key case and ":" (the key is there), continuation lines, comments.
    const edited = (await readFile(ini, 'utf8'))
      .replace(/^mail_white_list = .*\n/m, '')
      .replace('[instance:osf]\n', '[instance:osf]\n; tuned by hand, keep\ncustom_key = 42\n  43\n')
      .replace(/^mail_white_list = (.*)$/m, 'MAIL_White_List: $1')
      .concat("\n[zodb]\n# people's own section\ncache_size = 100000\n");
    await writeFile(ini, edited);
    await update({ ...st.g, branches: ['branch1'] });
    const after = await readFile(ini, 'utf8');
    const allow = `mail_white_list = ${testersFile}`;
    expect(after.match(/^mail_white_list ?[=:] /gim)).toHaveLength(2);
    // Exactly one line added, in the osf section; nothing else touched.
    expect(after.split('\n').filter((l) => l !== allow)).toEqual(
      edited.split('\n').filter((l) => l !== allow),
    );
    expect(after.indexOf(allow)).toBeLessThan(after.indexOf('[instance:another]'));
    // KARL's ConfigParser reads what karlstage meant.
    const [py] = await pythonRead([after]);
    expect(py!.ok && py!.values['instance:osf']).toMatchObject({
      mail_white_list: testersFile,
      custom_key: '42\n43',
    });
    expect(py!.ok && py!.values['instance:another']!.mail_white_list).toBe(testersFile);
  });

  it('--dry-run prints each command line and file, and changes nothing', async () => {
    const repo = await makeRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const before = await st.snapshot();

    const c = await st.cli(['create', 'branch2', '--ref', repo.featureRef, '--dry-run']);
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.stdout).toContain('Dry run: create branch2 would do this (nothing is changed):');
    expect(c.stdout).toContain(
      vcs === 'git'
        ? `$ git init -q -- ${join(st.root, 'branch2', 'src', 'karl')}`
        : `$ svn --non-interactive checkout -q -- ${repo.url}/branches/feature-x`,
    );
    expect(c.stdout).toContain(
      `write ${join(st.root, 'branch2', 'etc', 'instances.ini')} (customers: osf, another)`,
    );
    expect(c.stdout).toContain(`$ ${join(st.root, 'branch2', 'bin', 'buildout')} -N`);
    expect(c.stdout).toContain(`$ ${join(st.root, 'branch2', 'bin', 'supervisord')}`);

    for (const args of [
      ['update', '--all', '--force'],
      ['switch', 'branch1', repo.featureRef],
      ['destroy', 'branch1'],
    ]) {
      const r = await st.cli([...args, '--dry-run']);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain('nothing is changed');
    }
    const j = await st.cli(['update', 'branch1', '--dry-run', '--json']);
    expect(JSON.parse(j.stdout)).toMatchObject({
      dryRun: true,
      command: 'update branch1',
      jobs: expect.arrayContaining([
        expect.objectContaining({ name: 'branch1', steps: expect.any(Array) }),
      ]),
    });
    expect(await st.snapshot()).toBe(before);
    expect(await buildCount(st.root, 'branch1')).toBe(1);
  });

  it('destroy stops the app, removes the site and frees its slot', async () => {
    const repo = await makeRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    await create({ ...st.g, branch: 'branch2' });
    const b1 = (await readState(st.root)).branches.branch1!;
    await destroy({ ...st.g, branch: 'branch1', yes: true });
    expect(existsSync(join(st.root, 'branch1'))).toBe(false);
    expect((await readState(st.root)).branches.branch1).toBeUndefined();
    await expect(fetch(`http://127.0.0.1:${b1.port}/osf/`)).rejects.toThrow();
    await create({ ...st.g, branch: 'branch3' });
    expect((await readState(st.root)).branches.branch3!.slot).toBe(1);
  });
});

describe('git refs', () => {
  it('a commit id checks out detached, and update keeps it', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    const first = (
      await readFile(join(repo.dir, 'app.git', 'refs', 'tags', 'v1.0'), 'utf8').catch(() => '')
    ).trim();
    const sha = first || (await repo.commit('main', { 'x.txt': 'x' }, 'x'));
    await create({ ...st.g, branch: 'branch1', ref: sha.slice(0, 12) });
    expect((await readState(st.root)).branches.branch1!.revision).toBe(sha);
    await repo.commit('main', { 'server.mjs': serverSource('3.0') }, 'Later');
    await update({ ...st.g, branches: ['branch1'] });
    expect(await buildCount(st.root, 'branch1')).toBe(1);
  });
});
