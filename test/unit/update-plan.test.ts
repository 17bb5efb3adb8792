// Covers: src/branches/update.ts src/core/command.ts src/core/plan.ts src/model/state.ts src/vcs/open.ts
import { describe, expect, it } from 'vitest';
import {
  builtAtHead,
  expectationOf,
  updatedRecord,
  updateJob,
  WHEN,
  type UpdateFacts,
  type UpdateRequest,
  type UpdateRun,
} from '../../src/branches/update.js';
import { parseConfig } from '../../src/config/config.js';
import { previewOf } from '../../src/core/command.js';
import { previewOfStep, type Job, type JobResult } from '../../src/core/plan.js';
import type { BranchState } from '../../src/model/state.js';
import { openVcs } from '../../src/vcs/open.js';

/**
 * update's and switch's plans, built from made-up facts: no repository, no program, no disk.
 * What a dry run shows (titles, command lines, [when …] marks, effects) is compared with the
 * plan expected of those facts.
 */
const config = (vcs: 'git' | 'svn') =>
  parseConfig(
    `[staging]\nhost = h.example.org\ndatabase = host=db\n[source]\nvcs = ${vcs}\nurl = ${vcs === 'git' ? 'https://g.example.org/karl.git' : 'https://svn.example.org/karl'}\n${vcs === 'svn' ? 'default = trunk\n' : ''}[deployment]\nskeleton = /skel\nbuild = bin/buildout -N\nmigrate = bin/karlserve evolve --latest\nstart = bin/supervisord\nrestart = bin/supervisorctl restart all\nstop = bin/supervisorctl shutdown\n`,
    '/srv/ks/karlstage.ini',
  );
const svnCfg = config('svn');
const svn = await openVcs('svn', { url: svnCfg.source.url, timeoutMs: 1000, retries: 0 });
const gitCfg = config('git');
const git = await openVcs('git', {
  url: gitCfg.source.url,
  timeoutMs: 1000,
  retries: 0,
  store: '/srv/ks/.karlstage/git/source.git',
});

const site = (more: Partial<BranchState> = {}): BranchState => ({
  name: 'branch1',
  slot: 1,
  port: 6501,
  vcs: 'svn',
  ref: 'trunk',
  refKind: 'path',
  createdAt: '2026-12-01T10:00:00.000Z',
  revision: '12',
  built: { revision: '12', ref: 'trunk', at: '2026-12-01T10:00:00.000Z' },
  ...more,
});
const facts = (more: Partial<UpdateFacts> = {}): UpdateFacts => ({
  site: site(),
  kind: 'path',
  interrupted: false,
  sourceGone: false,
  ...more,
});
const UPDATE: UpdateRequest = { command: 'update branch1' };

/** The job as a dry run prints it. */
const shown = (job: Job) =>
  job.steps.flatMap((s) => [s.title, ...previewOfStep(s).map((p) => `  ${p}`)]).join('\n');
/** The command lines of a job that no [when …] mark makes conditional: the ones that run for sure. */
const certain = (job: Job) =>
  job.steps.flatMap((s) =>
    (s.commands ?? []).filter((c) => !c.when).map((c) => `${s.title}: ${previewOf(c)}`),
  );

const SRC = '/srv/ks/branch1/src/karl';
const SVN = 'svn --non-interactive';

describe('an update planned from its facts', () => {
  it('upstream moved: every step runs, and only what runs sometimes is marked', () => {
    const job = updateJob(svnCfg, svn, facts({ upstreamHead: '13' }), UPDATE);
    expect(job.name).toBe('branch1');
    expect(shown(job)).toBe(
      [
        'lock and check',
        `  $ ${SVN} cleanup -- ${SRC}   [${WHEN.interrupted}]`,
        `  $ ${SVN} status -q -- ${SRC}`,
        `  $ ${SVN} revert -R -q -- ${SRC}   [${WHEN.forced}]`,
        '  lock branch1 (/srv/ks/.karlstage/locks/branch-branch1.lock)',
        '  put back a missing mail_white_list in /srv/ks/branch1/etc/instances.ini',
        'update the source',
        `  $ ${SVN} info --show-item repos-root-url -- ${SRC}`,
        `  $ ${SVN} relocate -- '<OLD ROOT>' https://svn.example.org/karl ${SRC}   [when [source] url changed]`,
        `  $ ${SVN} update -q -- ${SRC}`,
        `  $ ${SVN} info --show-item last-changed-revision -- ${SRC}`,
        `  $ ${SVN} checkout -q -- https://svn.example.org/karl/trunk ${SRC}   [${WHEN.gone}]`,
        `  $ ${SVN} info --show-item last-changed-revision -- ${SRC}   [${WHEN.gone}]`,
        `  $ ${SVN} log --xml -l 1 -- ${SRC}`,
        `  $ ${SVN} log --xml --stop-on-copy -- ${SRC}   [when trunk is a branch other than trunk]`,
        'build',
        '  $ /srv/ks/branch1/bin/buildout -N   (in /srv/ks/branch1)',
        'migrate',
        '  $ /srv/ks/branch1/bin/karlserve evolve --latest   (in /srv/ks/branch1)',
        'restart',
        `  $ /srv/ks/branch1/bin/supervisorctl restart all   (in /srv/ks/branch1)   [${WHEN.running}]`,
      ].join('\n'),
    );
  });

  it("built at upstream's head: only the lock is certain; build, migrate and restart are marked", () => {
    const f = facts({ upstreamHead: '12' });
    expect(builtAtHead(f)).toBe(true);
    expect(builtAtHead(f, true)).toBe(false);
    const job = updateJob(svnCfg, svn, f, UPDATE);
    expect(certain(job)).toEqual([]);
    expect(shown(job)).toBe(
      [
        'lock and check',
        `  $ ${SVN} cleanup -- ${SRC}   [${WHEN.interrupted}]`,
        `  $ ${SVN} status -q -- ${SRC}   [${WHEN.changed}]`,
        `  $ ${SVN} revert -R -q -- ${SRC}   [${WHEN.forced}]`,
        '  lock branch1 (/srv/ks/.karlstage/locks/branch-branch1.lock)',
        '  put back a missing mail_white_list in /srv/ks/branch1/etc/instances.ini',
        'update the source',
        `  $ ${SVN} info --show-item repos-root-url -- ${SRC}   [${WHEN.changed}]`,
        `  $ ${SVN} relocate -- '<OLD ROOT>' https://svn.example.org/karl ${SRC}   [${WHEN.changed}, and [source] url changed]`,
        `  $ ${SVN} update -q -- ${SRC}   [${WHEN.changed}]`,
        `  $ ${SVN} info --show-item last-changed-revision -- ${SRC}   [${WHEN.changed}]`,
        `  $ ${SVN} checkout -q -- https://svn.example.org/karl/trunk ${SRC}   [${WHEN.gone}]`,
        `  $ ${SVN} info --show-item last-changed-revision -- ${SRC}   [${WHEN.gone}]`,
        `  $ ${SVN} log --xml -l 1 -- ${SRC}   [${WHEN.changed}]`,
        `  $ ${SVN} log --xml --stop-on-copy -- ${SRC}   [${WHEN.changed}, and trunk is a branch other than trunk]`,
        'build',
        `  $ /srv/ks/branch1/bin/buildout -N   (in /srv/ks/branch1)   [${WHEN.changed}]`,
        'migrate',
        `  $ /srv/ks/branch1/bin/karlserve evolve --latest   (in /srv/ks/branch1)   [${WHEN.changed}]`,
        'restart',
        `  $ /srv/ks/branch1/bin/supervisorctl restart all   (in /srv/ks/branch1)   [${WHEN.changed}, and the site should be running (not asleep or stopped)]`,
      ].join('\n'),
    );
    // The same with git: nothing in the site runs for sure.
    const g = updateJob(
      gitCfg,
      git,
      facts({
        site: site({
          vcs: 'git',
          ref: 'main',
          refKind: 'branch',
          built: { revision: 'abc', ref: 'main', at: 'x' },
          revision: 'abc',
        }),
        kind: 'branch',
        upstreamHead: 'abc',
      }),
      UPDATE,
    );
    expect(g.steps.map((s) => s.title)).toEqual([
      'lock and check',
      'update the source',
      'build',
      'migrate',
      'restart',
    ]);
    expect(certain(g)).toEqual([]);
  });

  it('what decides the marks: --force, an interrupted change, a missing checkout, an unknown head', () => {
    const table: [string, UpdateFacts, UpdateRequest, string][] = [
      ['built at head', facts({ upstreamHead: '12' }), UPDATE, 'check'],
      ['--force', facts({ upstreamHead: '12' }), { ...UPDATE, force: true }, 'build'],
      ['interrupted', facts({ upstreamHead: '12', interrupted: true }), UPDATE, 'build'],
      ['checkout missing', facts({ upstreamHead: '12', sourceGone: true }), UPDATE, 'build'],
      ['head moved', facts({ upstreamHead: '13' }), UPDATE, 'build'],
      ['never built', facts({ site: site({ built: undefined }) }), UPDATE, 'build'],
      ['head not asked (poll --build)', facts(), UPDATE, 'maybe'],
      [
        'switch',
        facts({ upstreamHead: '12' }),
        { ...UPDATE, switchTo: { ref: 'branches/x', kind: 'path' } },
        'build',
      ],
    ];
    expect(table.map(([name, f, req]) => [name, expectationOf(f, req)])).toEqual(
      table.map(([name, , , want]) => [name, want]),
    );

    // Head not asked: build, migrate and restart run when the update brings a revision not built yet.
    const maybe = updateJob(svnCfg, svn, facts(), UPDATE);
    expect(certain(maybe)).toEqual([
      `lock and check: $ ${SVN} status -q -- ${SRC}`,
      `update the source: $ ${SVN} info --show-item repos-root-url -- ${SRC}`,
      `update the source: $ ${SVN} update -q -- ${SRC}`,
      `update the source: $ ${SVN} info --show-item last-changed-revision -- ${SRC}`,
    ]);
    expect(shown(maybe)).toContain(
      `build\n  $ /srv/ks/branch1/bin/buildout -N   (in /srv/ks/branch1)   [${WHEN.notBuilt}]`,
    );

    // An interrupted change: its repair runs for sure.
    expect(shown(updateJob(svnCfg, svn, facts({ interrupted: true }), UPDATE))).toContain(
      `lock and check\n  $ ${SVN} cleanup -- ${SRC}\n`,
    );

    // A checkout removed by hand: checked out again (shown first), nothing asked of it.
    const gone = shown(updateJob(svnCfg, svn, facts({ sourceGone: true }), UPDATE));
    expect(gone).toContain(`  $ ${SVN} status -q -- ${SRC}   [${WHEN.there}]`);
    expect(gone).toContain(
      [
        'update the source',
        `  $ ${SVN} checkout -q -- https://svn.example.org/karl/trunk ${SRC}`,
        `  $ ${SVN} info --show-item last-changed-revision -- ${SRC}`,
        `  $ ${SVN} info --show-item repos-root-url -- ${SRC}   [${WHEN.there}]`,
      ].join('\n'),
    );
    expect(gone).toContain('build\n  $ /srv/ks/branch1/bin/buildout -N   (in /srv/ks/branch1)\n');
  });

  it('a switch moves to the new ref and builds it; a deployment without build or restart has no such step', () => {
    const job = updateJob(svnCfg, svn, facts({ upstreamHead: '12' }), {
      command: 'switch branch1 branches/x',
      switchTo: { ref: 'branches/x', kind: 'path' },
    });
    const text = shown(job);
    expect(job.steps.map((s) => s.title)).toEqual([
      'lock and check',
      'switch to branches/x',
      'build',
      'migrate',
      'restart',
    ]);
    expect(text).toContain(
      `  $ ${SVN} switch -q --ignore-ancestry -- https://svn.example.org/karl/branches/x ${SRC}\n`,
    );
    expect(text).toContain(
      `  $ ${SVN} checkout -q -- https://svn.example.org/karl/branches/x ${SRC}   [${WHEN.gone}]`,
    );
    expect(text).toContain('build\n  $ /srv/ks/branch1/bin/buildout -N   (in /srv/ks/branch1)\n');

    const bare = parseConfig(
      `[staging]\nhost = h.example.org\ndatabase = host=db\n[source]\nvcs = svn\nurl = https://svn.example.org/karl\n[deployment]\nskeleton = /skel\nstart = bin/start\n`,
      '/srv/ks/karlstage.ini',
    );
    const lean = updateJob(bare, svn, facts({ upstreamHead: '13' }), UPDATE);
    // No restart set: the start step restarts it.
    expect(lean.steps.map((s) => s.title)).toEqual([
      'lock and check',
      'update the source',
      'restart',
    ]);
    expect(shown(lean)).toContain('restart\n  $ /srv/ks/branch1/bin/start   (in /srv/ks/branch1)');
  });
});

describe("an update's record", () => {
  const NOW = '2026-12-03T12:00:00.000Z';
  const result = (more: Partial<JobResult> = {}): JobResult => ({
    name: 'branch1',
    ok: true,
    durationMs: 1500,
    ...more,
  });
  /** What the job's steps found out, as they leave it in its UpdateRun. */
  const ran = (b: BranchState, more: Partial<UpdateRun>): UpdateRun => ({
    site: b,
    about: {},
    moved: true,
    interrupted: false,
    sourceGone: false,
    ...more,
  });

  it('a built switch records the new ref, what was built and the restart', () => {
    const b = site({ run: { want: 'running', since: '2026-12-01T10:00:00.000Z', by: 'create' } });
    const req = {
      command: 'switch branch1 branches/x',
      switchTo: { ref: 'branches/x', kind: 'path' as const },
    };
    const run = ran(b, { revision: '20', about: { ahead: 2 }, restarted: { ms: 800 } });
    updatedRecord(b, { req, ref: 'branches/x', refKind: 'path', run }, result(), NOW);
    expect(b).toMatchObject({
      ref: 'branches/x',
      refKind: 'path',
      revision: '20',
      built: { revision: '20', ref: 'branches/x', at: NOW, ahead: 2 },
      run: { want: 'running', lastStart: { at: NOW, ok: true, ms: 800, by: 'switch' } },
      lastUpdate: { at: NOW, result: 'ok', revision: '20', durationMs: 1500 },
    });
  });

  it('a failed restart is a failed start in the run record; a revision found built keeps what was built', () => {
    const b = site();
    const run = ran(b, { revision: '13', restarted: {} });
    updatedRecord(
      b,
      { req: UPDATE, ref: 'trunk', refKind: 'path', run },
      result({ ok: false }),
      NOW,
    );
    expect(b.built).toEqual(site().built);
    expect(b.revision).toBe('13');
    expect(b.run).toMatchObject({
      lastStart: { ok: false, error: 'the restart failed' },
      failures: 1,
    });
    expect(b.lastUpdate).toMatchObject({ result: 'failed', revision: '13' });

    const skipped = site();
    const found = ran(skipped, { revision: '12', ended: 'built' });
    updatedRecord(
      skipped,
      { req: UPDATE, ref: 'trunk', refKind: 'path', run: found },
      result({ skipped: 'already built at 12' }),
      NOW,
    );
    expect(skipped.built).toEqual(site().built);
    expect(skipped.run).toBeUndefined();
    expect(skipped.lastUpdate).toMatchObject({ result: 'ok', note: 'already built at 12' });
  });
});
