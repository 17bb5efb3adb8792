// Covers: src/branches/create.ts src/core/plan.ts src/db/guard.ts src/vcs/open.ts
import { describe, expect, it } from 'vitest';
import { createPlan, newSiteRecord, type CreateFacts } from '../../src/branches/create.js';
import { parseConfig } from '../../src/config/config.js';
import { previewOfStep, type Plan } from '../../src/core/plan.js';
import type { GuardVerdicts } from '../../src/db/guard.js';
import { openVcs } from '../../src/vcs/open.js';

/** create's plan, built from made-up facts: no repository, no database server, no disk. */
const config = (more = '', vcs = 'svn') =>
  parseConfig(
    `[staging]\nhost = h.example.org\ndatabase = host=db user=karl\n${more}\n[source]\nvcs = ${vcs}\nurl = ${vcs === 'svn' ? 'https://svn.example.org/karl' : 'https://g.example.org/karl.git'}\n[deployment]\nskeleton = /skel\nbuild = bin/buildout -N\nmigrate = bin/karlserve evolve --latest\nstart = bin/supervisord\nrestart = bin/supervisorctl restart all\nstop = bin/supervisorctl shutdown\n[customer:osf]\nproduction = host=prod dbname=karl_osf\n[customer:another]\nproduction = host=prod2 dbname=karl_a\n`,
    '/srv/ks/karlstage.ini',
  );
/** The guard's verdicts: its check written as GUARD(targets), so each write shows what it checks first. */
const guard = (unknown: string[] = []): GuardVerdicts => ({
  statement: (targets) => `GUARD(${targets.join(',')})`,
  unknown: (c) => (unknown.includes(c) ? `${c}'s production did not answer` : undefined),
  canRepair: () => true,
  remember: async () => undefined,
});
const facts = (more: Partial<CreateFacts> = {}): CreateFacts => ({
  branch: 'branch2',
  ref: 'branches/x',
  kind: 'path',
  customers: ['osf', 'another'],
  slot: 2,
  instancesText: '[instance:osf]\n',
  guard: guard(),
  ...more,
});
const shown = (plan: Plan) =>
  plan.jobs[0]!.steps.flatMap((s) => [s.title, ...previewOfStep(s).map((p) => `  ${p}`)]).join(
    '\n',
  );
const svnCfg = config();
const svn = await openVcs('svn', { url: svnCfg.source.url, timeoutMs: 1000, retries: 0 });
const PSQL = 'psql -X -q -A -t -v ON_ERROR_STOP=1';
const ends = (dbs: string[]) =>
  `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname IN (${dbs.map((d) => `'\\''${d}'\\''`).join(', ')}) AND pid <> pg_backend_pid();`;
const TWINS = ['ks_branch2_osf', 'ks_branch2_osf__new', 'ks_branch2_osf__old'];
const dropTwins = `${PSQL} -c 'GUARD(${TWINS.join(',')}) ${ends(TWINS)}' ${TWINS.map((d) => `-c 'DROP DATABASE IF EXISTS "${d}"'`).join(' ')}`;

describe('a create planned from its facts', () => {
  it('what an interrupted create left goes first; a customer whose production cannot be asked gets no database; the guard checks first in every write', () => {
    const plan = createPlan(
      svnCfg,
      svn,
      facts({
        guard: guard(['another']),
        leftover: { op: 'create', pid: 42, started: '2026-12-01T10:00:00Z' },
      }),
    );
    expect(plan.command).toBe('create branch2');
    expect(plan.jobs.map((j) => j.name)).toEqual(['branch2']);
    expect(shown(plan)).toBe(
      [
        'remove what an interrupted create left',
        '  $ /srv/ks/branch2/bin/supervisorctl shutdown   (in /srv/ks/branch2)   [when the folder is there]',
        '  remove /srv/ks/branch2/ (left by pid 42 at 2026-12-01T10:00:00Z)',
        'copy the deployment skeleton',
        '  copy /skel/ to /srv/ks/branch2/',
        'check out branches/x',
        '  $ svn --non-interactive checkout -q -- https://svn.example.org/karl/branches/x /srv/ks/branch2/src/karl',
        '  $ svn --non-interactive info --show-item last-changed-revision -- /srv/ks/branch2/src/karl',
        '  $ svn --non-interactive log --xml -l 1 -- /srv/ks/branch2/src/karl',
        '  $ svn --non-interactive log --xml --stop-on-copy -- /srv/ks/branch2/src/karl   [when branches/x is a branch other than trunk]',
        'write etc/instances.ini',
        '  write /srv/ks/branch2/etc/instances.ini (customers: osf, another)',
        '  write /srv/ks/.karlstage/mail-allow-list.txt',
        'create the staging databases',
        // Leftovers of the name dropped, in the session that first looks up the golden copies.
        `  $ ${PSQL} -c 'SELECT datname FROM pg_database WHERE datname IN ('\\''ks__golden_osf'\\'')' ${dropTwins.slice(PSQL.length + 1)}`,
        `  $ ${PSQL} -c 'GUARD(ks_branch2_osf,ks__golden_osf) ${ends(['ks__golden_osf'])}' -c 'CREATE DATABASE "ks_branch2_osf" TEMPLATE "ks__golden_osf" STRATEGY FILE_COPY'   [when that golden copy exists]`,
        `  $ ${PSQL} -c 'GUARD(ks_branch2_osf)' -c 'CREATE DATABASE "ks_branch2_osf"'   [when there is no golden copy yet]`,
        `  $ ${dropTwins}   [when a later step fails]`,
        "  no database for another yet: another's production did not answer; the nightly sync makes it once that server answers",
        'build',
        '  $ /srv/ks/branch2/bin/buildout -N   (in /srv/ks/branch2)',
        'start',
        '  $ /srv/ks/branch2/bin/supervisord   (in /srv/ks/branch2)',
        '  $ /srv/ks/branch2/bin/supervisorctl shutdown   (in /srv/ks/branch2)   [when a later step fails]',
        'record the branch site',
        '  write /srv/ks/.karlstage/state.json (slot 2, port 6502)',
        '  write /srv/ks/branch2/.karlstage-site.json',
      ].join('\n'),
    );
  });

  it('git: the store is fetched and a commit found before anything of the site exists (both only read); no databases when karlstage does not manage them', async () => {
    const cfg = config('manage_databases = no', 'git');
    const git = await openVcs('git', {
      url: cfg.source.url,
      timeoutMs: 1000,
      retries: 0,
      store: '/srv/ks/.karlstage/git/source.git',
    });
    const plan = createPlan(cfg, git, facts({ ref: 'abc1234', kind: 'commit', guard: undefined }));
    const steps = plan.jobs[0]!.steps;
    expect(steps.map((s) => [s.title, Boolean(s.readOnly)])).toEqual([
      ['fetch into the shared object store', true],
      ['find abc1234', true],
      ['copy the deployment skeleton', false],
      ['check out abc1234', false],
      ['write etc/instances.ini', false],
      ['build', false],
      ['start', false],
      ['record the branch site', false],
    ]);
    expect(shown(plan)).toContain('  $ git init -q -- /srv/ks/branch2/src/karl\n');
  });

  it("the new site's record: what the run found out, and a start that answered", () => {
    const plan = createPlan(svnCfg, svn, facts());
    expect(plan.jobs[0]!.steps.at(-1)!.title).toBe('record the branch site');
    const NOW = '2026-12-03T12:00:00.000Z';
    const record = newSiteRecord(
      {
        cfg: svnCfg,
        facts: facts(),
        site: { name: 'branch2', slot: 2, port: 6502 },
        run: { revision: '12', about: { ahead: 1 }, startedMs: 900 },
      },
      NOW,
    );
    expect(record).toEqual({
      name: 'branch2',
      slot: 2,
      port: 6502,
      vcs: 'svn',
      ref: 'branches/x',
      refKind: 'path',
      createdAt: NOW,
      revision: '12',
      built: { revision: '12', ref: 'branches/x', at: NOW, ahead: 1 },
      run: {
        want: 'running',
        since: NOW,
        by: 'create',
        lastStart: { at: NOW, ok: true, ms: 900, by: 'create' },
      },
    });
  });
});
