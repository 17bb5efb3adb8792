// Covers: src/core/plan.ts src/model/state.ts src/sync/outcome.ts
import { describe, expect, it } from 'vitest';
import type { JobResult } from '../../src/core/plan.js';
import { KarlstageError } from '../../src/core/errors.js';
import type { BranchState, DataRecord, State } from '../../src/model/state.js';
import {
  failedBeforeBranches,
  goldenOf,
  recordResults,
  type BranchSyncResult,
  type SyncOutcome,
} from '../../src/sync/outcome.js';

/** How a sync's and a reset's results go into state.json: one rule, from made-up results. */
const NIGHT = '2026-12-03T02:00:00.000Z';
const LAST = '2026-12-02T02:00:00.000Z';
const yesterday: DataRecord = {
  asOf: LAST,
  dump: 'osf-20261202T020000Z.dump',
  checkedPatterns: 1,
  lastSync: { at: LAST, result: 'ok', durationMs: 9000 },
  migrate: { at: LAST, dataOf: LAST, result: 'ok', durationMs: 700 },
};
const state = (data?: DataRecord): State =>
  ({
    version: 1,
    branches: {
      branch1: {
        name: 'branch1',
        slot: 1,
        port: 6501,
        vcs: 'git',
        ref: 'main',
        createdAt: LAST,
        ...(data ? { data: { osf: data } } : {}),
      } as BranchState,
    },
  }) as State;
const result = (more: Partial<BranchSyncResult> = {}): BranchSyncResult => ({
  branch: 'branch1',
  customer: 'osf',
  ok: true,
  at: '2026-12-03T02:10:00.000Z',
  durationMs: 600_000,
  swapMs: 40,
  migrate: { ok: true, durationMs: 800 },
  ...more,
});
const tonight = { asOf: NIGHT, dump: 'osf-20261203T020000Z.dump', checkedPatterns: 2 };
const SYNC = { copyOf: () => tonight, lastSync: true };

describe('recording a sync or a reset', () => {
  it("a sync that worked: the site holds tonight's copy, its migrate is the new verdict, and it is the last sync", () => {
    const s = state(yesterday);
    recordResults(s, [result()], SYNC);
    expect(s.branches.branch1!.data!.osf).toEqual({
      ...tonight,
      lastSync: { at: '2026-12-03T02:10:00.000Z', result: 'ok', durationMs: 600_000 },
      migrate: { at: '2026-12-03T02:10:00.000Z', dataOf: NIGHT, result: 'ok', durationMs: 800 },
    });
  });

  it("a sync that failed: the site keeps yesterday's data and verdict, the failure is its last sync; a failed migrate is the verdict", () => {
    const s = state(yesterday);
    recordResults(
      s,
      [result({ ok: false, error: 'restore: disk full', migrate: undefined })],
      SYNC,
    );
    expect(s.branches.branch1!.data!.osf).toEqual({
      ...yesterday,
      lastSync: {
        at: '2026-12-03T02:10:00.000Z',
        result: 'failed',
        durationMs: 600_000,
        error: 'restore: disk full',
      },
    });
    const m = state(yesterday);
    const failed = { ok: false, durationMs: 300, error: 'no such column' };
    recordResults(m, [result({ ok: false, error: 'migrate failed', migrate: failed })], SYNC);
    expect(m.branches.branch1!.data!.osf).toMatchObject({
      asOf: LAST,
      migrate: { result: 'failed', dataOf: NIGHT, error: 'no such column' },
    });
  });

  it("a reset by the same rule: the golden copy's data and a new verdict; the last sync's record stays", () => {
    const other = {
      ...yesterday,
      asOf: NIGHT,
      dump: 'osf-20261203T020000Z.dump',
      checkedPatterns: 2,
    };
    const s = state(yesterday);
    // The golden copy's data: the newest copy any site took from it.
    const all = {
      ...s,
      branches: {
        ...s.branches,
        branch2: { ...s.branches.branch1!, name: 'branch2', data: { osf: other } },
      },
    };
    expect(goldenOf(all as State, 'osf')).toBe(other);
    recordResults(s, [result()], {
      copyOf: (customer, before) => goldenOf(all as State, customer) ?? before,
      lastSync: false,
    });
    expect(s.branches.branch1!.data!.osf).toEqual({
      asOf: NIGHT,
      dump: 'osf-20261203T020000Z.dump',
      checkedPatterns: 2,
      lastSync: yesterday.lastSync,
      migrate: { at: '2026-12-03T02:10:00.000Z', dataOf: NIGHT, result: 'ok', durationMs: 800 },
    });
    // No golden record known (a lost state): the site's own record stands in for it.
    const alone = state(yesterday);
    recordResults(alone, [result({ migrate: undefined })], {
      copyOf: (customer, before) => goldenOf(state(), customer) ?? before,
      lastSync: false,
    });
    expect(alone.branches.branch1!.data!.osf).toEqual(yesterday);
  });

  it('a site gone meanwhile is not recorded; a customer that failed before its sites failed for each of them', () => {
    const s = state();
    recordResults(s, [result({ branch: 'gone' })], SYNC);
    expect(s.branches.gone).toBeUndefined();

    const outcome: SyncOutcome = {
      customers: { osf: { branches: ['branch1', 'branch2'] } },
      branches: [result({ branch: 'branch2', ok: false, error: 'swap failed' })],
      held: [],
    };
    const dumpFailed: JobResult = {
      name: 'osf',
      ok: false,
      error: new KarlstageError('dump production: connection refused'),
      durationMs: 1200,
    };
    failedBeforeBranches(outcome, [dumpFailed], NIGHT);
    expect(outcome.branches).toEqual([
      result({ branch: 'branch2', ok: false, error: 'swap failed' }),
      {
        branch: 'branch1',
        customer: 'osf',
        ok: false,
        error: 'dump production: connection refused',
        at: NIGHT,
        durationMs: 1200,
      },
    ]);
    recordResults(s, outcome.branches, SYNC);
    expect(s.branches.branch1!.data!.osf).toEqual({
      asOf: null,
      lastSync: {
        at: NIGHT,
        result: 'failed',
        durationMs: 1200,
        error: 'dump production: connection refused',
      },
    });
  });
});
