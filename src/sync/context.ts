import { join } from 'node:path';
import type { Config, CustomerConfig } from '../config/config.js';
import type { KarlstageError } from '../core/errors.js';
import type { GuardVerdicts } from '../db/guard.js';
import { goldenName } from '../db/names.js';
import type { StagingServer } from '../db/staging.js';
import type { CustomerSync, SyncOutcome } from './outcome.js';

/**
 * What a sync (or a reset) is planned from, gathered before its plan is made: the plan is a
 * pure function of the configuration and these (unit tests give made-up ones).
 */
export interface SyncFacts {
  /** Branch sites that cannot say which customers they serve: each a failure of its own. */
  broken: { branch: string; problem: KarlstageError }[];
  /** The branch sites serving each customer (their instances.ini), in the order given. */
  served: Record<string, string[]>;
  /** A branch site named "golden" exists: ks_golden_CUSTOMER is its database, not an old golden copy. */
  goldenIsASite: boolean;
  /** The production guard's verdicts (asked of the servers). */
  guard: GuardVerdicts;
  /** reset: the customers whose files last night's sync mirrored. */
  mirrored?: string[];
  /** Each customer's newest dump's size, in bytes (du): about what tonight's needs. */
  lastDumpBytes?: Record<string, number>;
}

/**
 * One customer's job as its steps share it: what they are built from, and what only the
 * run finds out (the dump it restores, its line of the outcome), in this one object.
 */
export interface CustomerContext {
  cfg: Config;
  db: StagingServer;
  customer: CustomerConfig;
  facts: SyncFacts;
  /** The branch sites this job writes. */
  branches: string[];
  dumpDir: string;
  golden: string;
  /** Every job's results (a branch site's result is added as it is known). */
  outcome: SyncOutcome;
  /** This customer's line of the outcome. */
  record: CustomerSync;
  /** The dump it restores: named when it is taken (or found). */
  dump: { name: string; path: string; taken?: Date };
}

export interface CustomerContextOptions {
  cfg: Config;
  db: StagingServer;
  customer: CustomerConfig;
  facts: SyncFacts;
  branches: string[];
  outcome: SyncOutcome;
}

/** A customer's context; its line of the outcome is made here (the summary lists it even when it fails early). */
export function customerContext(o: CustomerContextOptions): CustomerContext {
  const record: CustomerSync = (o.outcome.customers[o.customer.name] = { branches: o.branches });
  return {
    ...o,
    dumpDir: join(o.cfg.sync.dumps, o.customer.name),
    golden: goldenName(o.customer.name),
    record,
    dump: { name: '', path: '' },
  };
}
