import { briefly } from '../core/errors.js';
import type { JobResult } from '../core/plan.js';
import type { DataRecord, State } from '../model/state.js';

/** What a sync (or a reset) did for one branch site × customer. */
export interface BranchSyncResult {
  branch: string;
  customer: string;
  ok: boolean;
  error?: string;
  /** When this branch site had its data (or failed). */
  at: string;
  /** From the start of the customer's sync (its dump and restore included) to `at`. */
  durationMs: number;
  /** How long the branch's database was unavailable during its swap. */
  swapMs?: number;
  /** The branch's migrate on this night's copy: the verdict "migrates on production data". */
  migrate?: { ok: boolean; durationMs: number; error?: string };
}

/** What a sync did for one customer: filled in while its job runs. */
export interface CustomerSync {
  /** The branch sites serving the customer: the ones this sync writes. */
  branches: string[];
  startedAt?: number;
  dump?: string;
  asOf?: string;
  /** How many must_not_contain patterns the new copy was checked for (and found clean). */
  checkedPatterns?: number;
}

/** A sync's (or a reset's) results, filled in by its jobs as they run. */
export interface SyncOutcome {
  customers: Record<string, CustomerSync>;
  branches: BranchSyncResult[];
  held: string[];
}

/** What a copy of a customer's data is: the one a branch site got, or the one it kept. */
export interface CopyFacts {
  /** When the production dump it was made from was taken. */
  asOf?: string | null;
  dump?: string;
  checkedPatterns?: number;
}

/** The verdict state.json keeps for a branch × customer: its migrate on the copy of `dataOf`. */
export function migrateRecord(
  at: string,
  migrate: NonNullable<BranchSyncResult['migrate']>,
  dataOf: string | null,
): NonNullable<DataRecord['migrate']> {
  return {
    at,
    dataOf,
    result: migrate.ok ? 'ok' : 'failed',
    durationMs: migrate.durationMs,
    ...(migrate.error ? { error: migrate.error } : {}),
  };
}

export interface RecordRule {
  /** The copy a branch site got of a customer's data (`before`: what it had). */
  copyOf(customer: string, before: DataRecord | undefined): CopyFacts | undefined;
  /** Record the run as the site's last sync: a sync does; a reset (no production read) does not. */
  lastSync: boolean;
}

/**
 * The one rule by which a sync's and a reset's results go into the state: a branch site that
 * got its copy holds that copy's data (as of, dump, patterns checked), one that did not keeps
 * what it had; a migrate that ran is the new verdict (on the new copy's data), one that did
 * not run leaves the last one. A sync also records itself as the site's last sync.
 */
export function recordResults(state: State, results: BranchSyncResult[], rule: RecordRule): void {
  for (const r of results) {
    const b = state.branches[r.branch];
    if (!b) continue;
    const before = b.data?.[r.customer];
    const copy = rule.copyOf(r.customer, before);
    const held = r.ok ? copy : before;
    const lastSync = rule.lastSync
      ? {
          at: r.at,
          result: r.ok ? ('ok' as const) : ('failed' as const),
          durationMs: r.durationMs,
          ...(r.error ? { error: r.error } : {}),
        }
      : before?.lastSync;
    b.data = {
      ...b.data,
      [r.customer]: {
        asOf: held?.asOf ?? null,
        ...(held?.dump ? { dump: held.dump } : {}),
        // The copy it holds was checked for this many must_not_contain patterns.
        ...(held?.checkedPatterns ? { checkedPatterns: held.checkedPatterns } : {}),
        ...(lastSync ? { lastSync } : {}),
        // A night whose migrate did not run keeps the last verdict.
        ...(r.migrate
          ? { migrate: migrateRecord(r.at, r.migrate, copy?.asOf ?? null) }
          : before?.migrate
            ? { migrate: before.migrate }
            : {}),
      },
    };
  }
}

/**
 * A customer whose job failed before its branch sites' turn (dump, restore, sanitize) failed
 * for each of them: their results, added to the outcome.
 */
export function failedBeforeBranches(outcome: SyncOutcome, results: JobResult[], at: string) {
  for (const r of results) {
    if (r.ok) continue;
    for (const branch of outcome.customers[r.name]?.branches ?? [])
      if (!outcome.branches.some((x) => x.branch === branch && x.customer === r.name))
        outcome.branches.push({
          branch,
          customer: r.name,
          ok: false,
          error: briefly(r.error),
          at,
          durationMs: r.durationMs,
        });
  }
}

/** The data a customer's golden copy holds: the newest copy any site took from it (a sync's record). */
export function goldenOf(state: State, customer: string): DataRecord | undefined {
  return Object.values(state.branches)
    .map((b) => b.data?.[customer])
    .filter((d): d is DataRecord => Boolean(d?.asOf && d.lastSync?.result === 'ok'))
    .sort((a, b) => (a.asOf! < b.asOf! ? 1 : -1))[0];
}
