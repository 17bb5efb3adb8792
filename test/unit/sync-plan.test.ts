// Covers: src/core/command.ts src/core/plan.ts src/db/guard.ts src/model/state.ts src/sync/context.ts src/sync/sync.ts
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/config/config.js';
import type { Command } from '../../src/core/command.js';
import { plannedArgv } from '../../src/core/command.js';
import { KarlstageError } from '../../src/core/errors.js';
import type { Job } from '../../src/core/plan.js';
import type { GuardVerdicts } from '../../src/db/guard.js';
import type { BranchState } from '../../src/model/state.js';
import type { SyncFacts } from '../../src/sync/context.js';
import { resetPlan, syncPlan, syncTargetsOf, type SyncRequest } from '../../src/sync/sync.js';

/**
 * The nightly sync's and reset's plans, built from made-up facts: no PostgreSQL, no rsync,
 * no disk. What each job would do (titles, programs, [when …] marks, effects) is compared with
 * the plan expected, and every write is checked to be guarded.
 */
const cfg = parseConfig(
  [
    '[staging]\nhost = h.example.org\ndatabase = host=db user=karl',
    '[source]\nvcs = svn\nurl = https://svn.example.org/karl',
    '[deployment]\nskeleton = /skel\nbuild = bin/buildout -N\nmigrate = bin/karlserve evolve --latest\nstart = bin/supervisord',
    '[customer:osf]\nproduction = host=prod dbname=karl_osf\nsanitize = /srv/sanitize/osf.sql\nmust_not_contain = @osf.org\nproduction_files = /srv/blobs/osf',
    '[customer:another]\nproduction_dump = /backups/another-*.dump',
    '[sync]\ndumps = /srv/dumps\nfiles = /srv/files',
  ].join('\n'),
  '/srv/ks/karlstage.ini',
);
/** The guard's verdicts: its check written as GUARD(targets), so each write shows what it checks. */
const guard = (unknown: string[] = [], known = true): GuardVerdicts => ({
  statement: (targets) => `GUARD(${targets.join(',')})`,
  unknown: (c) =>
    unknown.includes(c) ? `cannot tell whether ${c}'s production is staging` : undefined,
  canRepair: () => known,
  remember: async () => undefined,
});
const site = (name: string, slot: number): BranchState => ({
  name,
  slot,
  port: 6500 + slot,
  vcs: 'svn',
  ref: 'trunk',
  createdAt: '2026-12-01T10:00:00.000Z',
});
const facts = (more: Partial<SyncFacts> = {}): SyncFacts => ({
  broken: [],
  served: { osf: ['branch1', 'branch2'], another: ['branch1'] },
  goldenIsASite: false,
  guard: guard(),
  ...more,
});
const request: SyncRequest = {
  branches: [site('branch1', 1), site('branch2', 2)],
  customers: cfg.customers,
  held: [],
  command: 'sync --nightly',
};

/** One line per command: its program, what it is called, and when it runs if only sometimes. */
const line = (c: Command) => `${c.program} ‹${c.step}›${c.when ? ` [${c.when}]` : ''}`;
const shape = (job: Job) => ({
  name: job.name,
  steps: job.steps.map((s) => [s.title, ...(s.commands ?? []).map(line), ...(s.effects ?? [])]),
});
const commandsOf = (jobs: Job[]) => jobs.flatMap((j) => j.steps.flatMap((s) => s.commands ?? []));
const argv = (c: Command) => [c.program, ...plannedArgv(c)];

const PUT_BACK = (live: string, when: string) => `psql ‹put back yesterday's ${live}› [${when}]`;
const cleanUp = (customer: string, branches: string[]) => {
  const lives = [`ks__golden_${customer}`, ...branches.map((b) => `ks_${b}_${customer}`)];
  return [
    'clean up what an interrupted run left',
    'psql ‹look up the databases›',
    `psql ‹rename ks_golden_${customer} to ks__golden_${customer}› [when ks_golden_${customer} is there]`,
    ...lives.flatMap((l) => [
      PUT_BACK(l, `when ${l}__old is there`),
      `psql ‹drop ${l}__new› [when only ${l}__new is there]`,
    ]),
    `put back or remove each branch site's staged files (…var/blobs/${customer}.karlstage-old/-new)`,
    `remove /srv/dumps/${customer}/*.partial`,
  ];
};
const copy = (branch: string, customer: string, files: boolean) => [
  `${branch}: copy, swap, migrate`,
  'psql ‹copy the golden copy›',
  `psql ‹drop ks_${branch}_${customer}__new› [when the copy fails]`,
  ...(files ? ['cp ‹link the files›'] : []),
  'psql ‹swap›',
  `/srv/ks/${branch}/bin/karlserve ‹${branch}: migrate›`,
  PUT_BACK(`ks_${branch}_${customer}`, 'when the migrate fails'),
  `psql ‹drop ks_${branch}_${customer}__old› [when there was a copy before]`,
  `lock ${branch}`,
  ...(files ? ["swap the linked files in by rename; yesterday's kept until the commit"] : []),
];
const KEEP = '3 daily, 2 weekly, 1 monthly, 1 half-yearly, 1 yearly';

describe('the nightly sync planned from its facts', () => {
  it('per customer: clean up, dump (or the newest backup), restore with sanitize and scan, swap, files, each branch site, prune', () => {
    const broken = new KarlstageError('/srv/ks/branch3/etc/instances.ini is missing', 2, ['x']);
    const { jobs, outcome } = syncPlan(
      cfg,
      facts({ broken: [{ branch: 'branch3', problem: broken }] }),
      request,
    );
    expect(jobs.map(shape)).toEqual([
      {
        name: 'branch3',
        steps: [['read which customers it serves', 'read /srv/ks/branch3/etc/instances.ini']],
      },
      {
        name: 'osf',
        steps: [
          cleanUp('osf', ['branch1', 'branch2']),
          [
            'dump production (read-only)',
            'pg_dump ‹dump production›',
            'rename /srv/dumps/osf/DUMP.partial to DUMP (osf-STAMP.dump) when complete',
          ],
          [
            'restore into a new golden copy',
            'psql ‹create the new golden copy›',
            'pg_restore ‹restore›',
            'psql ‹sanitize›',
            'psql ‹check the sanitized copy›',
            'psql ‹drop ks__golden_osf__new› [when a later step fails]',
          ],
          ['swap in the new golden copy', 'psql ‹swap the golden copy›'],
          ['copy the files (blobs)', 'rsync ‹copy the files›'],
          copy('branch1', 'osf', true),
          copy('branch2', 'osf', true),
          ['prune old dumps', `keep ${KEEP} in /srv/dumps/osf`],
        ],
      },
      {
        name: 'another',
        steps: [
          cleanUp('another', ['branch1']),
          ['take the newest backup', 'the newest file matching /backups/another-*.dump'],
          [
            'restore into a new golden copy',
            'psql ‹create the new golden copy›',
            'pg_restore ‹restore›',
            'psql ‹drop ks__golden_another__new› [when a later step fails]',
          ],
          ['swap in the new golden copy', 'psql ‹swap the golden copy›'],
          copy('branch1', 'another', false),
          ['prune old dumps', `keep ${KEEP} in /srv/dumps/another`],
        ],
      },
    ]);
    // Each customer has its line in the outcome from the start: a summary names it even when it fails early.
    expect(outcome).toEqual({
      customers: { osf: { branches: ['branch1', 'branch2'] }, another: { branches: ['branch1'] } },
      branches: [],
      held: [],
    });

    const all = commandsOf(jobs);
    const named = (step: string) => argv(all.find((c) => c.step === step)!);
    // Values known only when it runs are placeholders; production is dumped read-only, once.
    expect(named('dump production')).toEqual([
      'pg_dump',
      '--format=directory',
      '--compress=1',
      '--jobs=2',
      '--no-owner',
      '--no-privileges',
      '<--file=DUMP.partial>',
    ]);
    expect(all.find((c) => c.step === 'dump production')!.env!()).toMatchObject({
      PGOPTIONS: expect.stringContaining('default_transaction_read_only=on'),
    });
    expect(named('restore')).toEqual([
      'pg_restore',
      '--jobs=2',
      '--no-owner',
      '--no-privileges',
      '--exit-on-error',
      '--dbname=ks__golden_osf__new',
      '<DUMP>',
    ]);
    expect(named('sanitize')).toEqual([
      'psql',
      '-X',
      '-q',
      '-v',
      'ON_ERROR_STOP=1',
      '-c',
      'GUARD(ks__golden_osf__new)',
      '-1',
      '-f',
      '/srv/sanitize/osf.sql',
    ]);
    expect(named('copy the files')).toEqual([
      'rsync',
      '--archive',
      '--delete',
      '--partial-dir=.rsync-partial',
      '-e',
      'ssh -o BatchMode=yes',
      '--',
      '/srv/blobs/osf/',
      '/srv/files/osf/',
    ]);
    expect(argv(all.find((c) => c.step === 'link the files')!)).toEqual([
      'cp',
      '-al',
      '--',
      '/srv/files/osf',
      '/srv/ks/branch1/var/blobs/osf.karlstage-new',
    ]);
    const clone = argv(all.find((c) => c.step === 'copy the golden copy')!).join(' ');
    expect(clone).toContain(
      `CREATE DATABASE "ks_branch1_osf__new" TEMPLATE "ks__golden_osf" STRATEGY FILE_COPY`,
    );
    const migrate = all.find((c) => c.step === 'branch2: migrate')!;
    expect([argv(migrate), migrate.cwd]).toEqual([
      ['/srv/ks/branch2/bin/karlserve', 'evolve', '--latest'],
      '/srv/ks/branch2',
    ]);
  });

  it('every database a psql command creates, renames or drops is checked by the guard in that command', () => {
    const { jobs } = syncPlan(cfg, facts(), request);
    const reset = resetPlan(cfg, facts({ mirrored: ['osf'] }), {
      branch: site('branch1', 1),
      customers: cfg.customers,
    });
    const writes =
      /(?:CREATE DATABASE|DROP DATABASE IF EXISTS|ALTER DATABASE|RENAME TO|TEMPLATE) "([a-z0-9_]+)"/g;
    let checked = 0;
    for (const c of commandsOf([...jobs, ...reset.jobs]).filter((x) => x.program === 'psql')) {
      const text = plannedArgv(c).join(' ');
      const guarded = new Set(
        [...text.matchAll(/GUARD\(([^)]*)\)/g)].flatMap((m) => m[1]!.split(',')),
      );
      for (const [, db] of text.matchAll(writes)) {
        expect(guarded, `${c.step}: ${db}`).toContain(db);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(50);
    // And the targets checked up front are every database it may write.
    expect(syncTargetsOf(facts(), cfg.customers)).toEqual([
      'ks__golden_osf',
      'ks__golden_osf__new',
      'ks__golden_osf__old',
      'ks_branch1_osf',
      'ks_branch1_osf__new',
      'ks_branch1_osf__old',
      'ks_branch2_osf',
      'ks_branch2_osf__new',
      'ks_branch2_osf__old',
      'ks_golden_osf',
      'ks__golden_another',
      'ks__golden_another__new',
      'ks__golden_another__old',
      'ks_branch1_another',
      'ks_branch1_another__new',
      'ks_branch1_another__old',
      'ks_golden_another',
    ]);
  });

  it('a customer whose production cannot be asked: nothing of its written, repairs only when its identity is remembered', () => {
    const remembered = syncPlan(cfg, facts({ guard: guard(['osf']) }), request);
    const osf = remembered.jobs.find((j) => j.name === 'osf')!;
    const refusal = [
      "make sure the staging server is not this customer's production",
      "cannot tell whether osf's production is staging",
    ];
    expect(shape(osf).steps).toEqual([cleanUp('osf', ['branch1', 'branch2']), refusal]);
    const forgotten = syncPlan(cfg, facts({ guard: guard(['osf'], false) }), request);
    expect(shape(forgotten.jobs.find((j) => j.name === 'osf')!).steps).toEqual([refusal]);
    // The other customer goes on as planned.
    expect(shape(forgotten.jobs.find((j) => j.name === 'another')!).steps).toHaveLength(6);
  });
});

describe('a reset planned from its facts', () => {
  it("each customer: the sync's own clean-up and copy into the one branch site, files when last night mirrored them, then its result", () => {
    const { jobs, outcome } = resetPlan(cfg, facts({ served: {}, mirrored: ['osf'] }), {
      branch: site('branch1', 1),
      customers: cfg.customers,
    });
    expect(jobs.map(shape)).toEqual([
      {
        name: 'osf',
        steps: [cleanUp('osf', ['branch1']), copy('branch1', 'osf', true), ['check the result']],
      },
      {
        name: 'another',
        steps: [
          cleanUp('another', ['branch1']),
          copy('branch1', 'another', false),
          ['check the result'],
        ],
      },
    ]);
    // Production is not read: no dump, no restore, no rsync.
    expect(commandsOf(jobs).map((c) => c.program)).not.toContain('pg_dump');
    expect(commandsOf(jobs).map((c) => c.program)).not.toContain('rsync');
    expect(Object.keys(outcome.customers)).toEqual(['osf', 'another']);
  });
});
