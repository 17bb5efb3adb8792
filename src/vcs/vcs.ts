import type { VcsKind } from '../config/config.js';
import { KarlstageError } from '../core/errors.js';

/**
 * What karlstage needs from a version control system; git.ts and svn.ts
 * implement it, both through the one runner. Reads that decide the plan
 * (does the ref exist upstream, what are the heads) run at once and return
 * values; work on a working copy is a Procedure: the commands it may run,
 * declared up front (a dry run shows exactly them), and how it runs them.
 */
export interface VcsOptions {
  /** git: clone URL; svn: repository root (holding trunk/, branches/, tags/). May carry credentials. */
  url: string;
  timeoutMs: number;
  retries: number;
  log?: string;
  /** git: the bare repository every branch site takes its objects from (.karlstage/git/source.git). */
  store?: string;
}

import type { Exec, Procedure } from '../core/command.js';

export type { Exec, Procedure };

/** What a ref is: read upstream when the plan is made (git ls-remote), or from its form. */
export type RefKind = 'branch' | 'tag' | 'commit' | 'path';

export interface CommitInfo {
  subject: string;
  author: string;
  date: string;
}

export interface UpdateOutcome {
  revision: string;
  /** Something the user should hear, e.g. "history rewritten upstream". */
  note?: string;
}

export interface BuildFacts {
  commit?: CommitInfo;
  /** Commits on the ref that the default ref does not have, where cheap to know. */
  ahead?: number;
  /** The newest of those commits (at most CHANGES_SHOWN), newest first. */
  changes?: CommitInfo[];
}

/** A git branch site as the shared object store knows it. */
export interface StoreSite {
  name: string;
  /** Its working copy (ROOT/BRANCH/[source] path). */
  dir: string;
  /** What karlstage last checked out there (state.json): the store keeps it. */
  revision?: string;
}

/** How a run uses the shared store (git). */
export interface StoreUse {
  /** Fetch from upstream: some site moves in this run. Otherwise the store is only checked (and repaired). */
  fetch: boolean;
  /** Every branch site of the staging root, read when the step runs (under the store's lock). */
  sites: () => Promise<StoreSite[]>;
  /** The refs the sites of this run will check out: checked whole in the store after the fetch. */
  targets: { ref: string; kind: RefKind }[];
}

/** The shared store's check, repair and fetch; what the operator should hear. */
export interface StoreProcedure extends Procedure<string[]> {
  /** The cheap check alone, without the lock: the store is whole and keeps every site's commit. */
  healthy(exec: Exec): Promise<boolean>;
}

/**
 * The commit a site had checked out is gone for good: upstream deleted it, and the shared
 * store lost its copy (deleted by hand, say) that no site could give back. The site's files
 * are untouched; `update --force` or `switch --force` moves it onto a commit that exists.
 */
export class LostCommitError extends KarlstageError {}

/** How many of a branch's own commits are recorded for the site list ("and N more" after them). */
export const CHANGES_SHOWN = 20;

export interface Vcs {
  readonly kind: VcsKind;
  /** Throws a UsageError when the ref is not of an allowed form. */
  validateRef(ref: string): void;
  /** Where the ref lives, for messages (credentials masked). */
  describeRef(ref: string): string;
  /** A read: does the ref exist upstream, and is it a branch, a tag or a commit? UsageError if not. */
  checkRef(ref: string): Promise<RefKind>;
  /**
   * Run once, before working copies are used in a run (git: check the shared store, repair
   * it, fetch it when sites move); what the operator should hear. Undefined when nothing is needed.
   */
  prepare(use: StoreUse): StoreProcedure | undefined;
  /** Before any working copy is made: make sure the ref can be checked out (git: a commit id is in the store). */
  locate(ref: string, kind: RefKind): Procedure<void> | undefined;
  /** A new working copy of `ref` at `dest`; its revision. */
  checkout(ref: string, kind: RefKind, dest: string, site: string): Procedure<string>;
  /** Move a working copy to another ref; its revision. */
  switchTo(dir: string, ref: string, kind: RefKind, site: string): Procedure<string>;
  /** Bring a working copy to the head of its ref. */
  update(dir: string, ref: string, kind: RefKind, site: string): Procedure<UpdateOutcome>;
  /** Local changes to tracked files (untracked build output does not count). */
  isDirty(dir: string): Procedure<boolean>;
  /** Commits in a working copy that are not upstream (made on the staging server): an update would drop them. */
  localCommits(dir: string, site: string): Procedure<number>;
  /** Throw away local changes to tracked files (switch/update --force). */
  discardChanges(dir: string): Procedure<void>;
  /** Clean up after a run that was killed inside a VCS command. */
  repair(dir: string): Procedure<void>;
  /** What the site list shows of a build; never fails a build for want of it. */
  describeBuild(dir: string, ref: string, defaultRef: string): Procedure<BuildFacts>;
  /** Forget a removed branch site (git: its keep-alive ref in the store). */
  forget(site: string): Procedure<void>;
  /**
   * The upstream head of many refs at the cost of about one request, without
   * fetching code; null when a ref is gone, an Error for refs whose server failed.
   */
  remoteHeads(refs: string[]): Promise<Map<string, string | null | Error>>;
  /** How many commits lead from `from` to `to` on `ref`, where that needs no fetch. */
  commitsBetween(dir: string, from: string, to: string, ref: string): Promise<number>;
}

/** Run a procedure's commands directly (outside a plan: tests, the demo's fixtures, doctor). */
export const direct =
  (log?: string): Exec =>
  async (command) => {
    const { exec } = await import('../core/command.js');
    return exec(command, log);
  };
