import type { VcsKind } from '../config/config.js';
import { StepError, UsageError } from '../core/errors.js';
import { redact } from '../core/redact.js';

/** What karlstage needs from a version control system; git.ts and svn.ts implement it. */
export interface VcsOptions {
  /** git: clone URL; svn: repository root (holding trunk/, branches/, tags/). */
  url: string;
  timeoutMs: number;
  retries: number;
  log?: string;
}

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

export interface Vcs {
  readonly kind: VcsKind;
  /** Throws a UsageError when the ref is not of an allowed form. */
  validateRef(ref: string): void;
  /** Where the ref lives, for messages and previews. */
  describeRef(ref: string): string;
  /** A read: does the ref exist upstream? Throws a UsageError if not. */
  checkRef(ref: string): Promise<void>;
  checkout(ref: string, dest: string): Promise<string>;
  switchTo(dir: string, ref: string): Promise<string>;
  update(dir: string, ref: string): Promise<UpdateOutcome>;
  revision(dir: string): Promise<string>;
  /** The upstream head revision of a ref without fetching code; null when the ref is gone. */
  remoteHead(ref: string): Promise<string | null>;
  /**
   * remoteHead for many refs at the cost of about one: a single ls-remote, or
   * one `svn info` per repository server. A server that cannot be reached
   * gives an Error for its refs only.
   */
  remoteHeads(refs: string[]): Promise<Map<string, string | null | Error>>;
  /** How many commits lead from `from` to `to` on `ref` (git: both must be local already). */
  commitsBetween(dir: string, from: string, to: string, ref?: string): Promise<number>;
  /** Subject, author and date of the commit checked out in `dir`. */
  describeCommit(dir: string): Promise<CommitInfo>;
  /** Commits on `ref` that the default ref does not have, where cheap to know; undefined otherwise. */
  aheadOf(dir: string, ref: string, defaultRef: string): Promise<number | undefined>;
  /** Local changes to tracked files (untracked build output does not count). */
  isDirty(dir: string): Promise<boolean>;
  /** Throw away local changes to tracked files (switch/update --force). */
  discardChanges(dir: string): Promise<void>;
  /** Clean up after a run that was killed inside a VCS command. */
  repair(dir: string): Promise<void>;
  /** The command lines a checkout/switch/update would run, for --dry-run. */
  preview(action: 'checkout' | 'switch' | 'update', ref: string, dir: string): string[];
}

export async function openVcs(kind: VcsKind, opts: VcsOptions): Promise<Vcs> {
  if (kind === 'git') {
    const { GitVcs } = await import('./git.js');
    return new GitVcs(opts);
  }
  const { SvnVcs } = await import('./svn.js');
  return new SvnVcs(opts);
}

/** The configured source repository, logging to a run's log file when given one. */
export function sourceVcs(
  cfg: { source: { vcs: VcsKind; url: string; timeout: number; retries: number } },
  log?: string,
): Promise<Vcs> {
  return openVcs(cfg.source.vcs, {
    url: cfg.source.url,
    timeoutMs: cfg.source.timeout * 1000,
    retries: cfg.source.retries,
    log,
  });
}

/**
 * Before anything is created, a repository that cannot be reached (after the
 * retries) is a problem with the input: one line that says what to check.
 */
export async function unreachable<T>(opts: VcsOptions, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (!(e instanceof StepError)) throw e;
    const attempts = opts.retries + 1;
    const why = whyFailed(e);
    throw new UsageError(
      `cannot reach ${redact(opts.url)} (${attempts} attempt${attempts > 1 ? 's' : ''}): ${why}; check [source] url and the network`,
      e.details,
    );
  }
}

/** The line of a git or svn failure that says why: git's first "fatal:", svn's last error code. */
export function whyFailed(e: unknown): string {
  if (!(e instanceof StepError)) return e instanceof Error ? e.message : String(e);
  const lines = e.outputTail.split('\n').map((l) => l.trim());
  return (
    lines.find((l) => l.startsWith('fatal:')) ??
    lines.filter((l) => /^svn: E\d+:/.test(l)).at(-1) ??
    e.message.replace(/^.*? failed: /, '')
  );
}

/** What the site list shows of a build; never fails a build for want of it. */
export async function describeBuild(
  vcs: Vcs,
  dir: string,
  ref: string,
  defaultRef: string,
): Promise<{ commit?: CommitInfo; ahead?: number }> {
  const [commit, ahead] = await Promise.all([
    vcs.describeCommit(dir).catch(() => undefined),
    vcs.aheadOf(dir, ref, defaultRef).catch(() => undefined),
  ]);
  return { ...(commit ? { commit } : {}), ...(ahead !== undefined ? { ahead } : {}) };
}
