import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { KarlstageError, StepError, UsageError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { commandLine, logLine, tail, withRetries } from '../core/runner.js';
import { gitClient } from './git-client.js';
import {
  unreachable,
  type CommitInfo,
  type UpdateOutcome,
  type Vcs,
  type VcsOptions,
} from './vcs.js';

// A ref as `git check-ref-format` allows it, never an option, or a commit id.
// (Printable ASCII only, which also keeps control characters out.)
const GIT_REF = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)(?!.*\.lock$)(?!.*[/.]$)[!-~]+$/;
const GIT_REF_FORBIDDEN = /[~^:?*[\\]/;
const COMMIT = /^[0-9a-f]{7,40}$/;

type Resolved = { kind: 'branch' | 'tag' | 'commit'; commit: string };

/** git through simple-git; every call logged, and its failure reported with its command line. */
export class GitVcs implements Vcs {
  readonly kind = 'git' as const;
  constructor(private readonly opts: VcsOptions) {}

  private async git(cwd: string | undefined, args: string[], step: string): Promise<string> {
    const line = commandLine('git', args);
    await logLine(this.opts.log, `$ ${line}${cwd ? `   (in ${cwd})` : ''}`);
    try {
      const out = await gitClient(cwd, this.opts.timeoutMs).raw(args);
      await logLine(this.opts.log, out.trimEnd());
      return out;
    } catch (e) {
      const text = (e as Error).message;
      await logLine(this.opts.log, text);
      const timedOut = /block timeout|timed out/i.test(text);
      const lines = text.trim().split('\n').filter(Boolean);
      const last = lines.find((l) => /^(fatal|error):/.test(l)) ?? lines.at(-1) ?? 'git failed';
      const reason = timedOut
        ? `no answer within ${Math.round(this.opts.timeoutMs / 1000)} s`
        : redact(last);
      throw new StepError(step, redact(line), redact(tail(text)), reason, this.opts.log);
    }
  }

  private net<T>(fn: () => Promise<T>): Promise<T> {
    return withRetries(fn, this.opts.retries);
  }

  validateRef(ref: string): void {
    if (!GIT_REF.test(ref) || GIT_REF_FORBIDDEN.test(ref))
      throw new UsageError(
        `git ref ${JSON.stringify(ref)} is not allowed: give a branch, a tag or a commit id`,
      );
  }

  describeRef(ref: string): string {
    return `${ref} of ${redact(this.opts.url)}`;
  }

  private async lsRemote(refs: string[]): Promise<Map<string, string>> {
    const patterns = refs.flatMap((r) => [
      `refs/heads/${r}`,
      `refs/tags/${r}`,
      `refs/tags/${r}^{}`,
    ]);
    const out = await this.net(() =>
      this.git(undefined, ['ls-remote', '--', this.opts.url, ...patterns], 'ask the repository'),
    );
    const found = new Map<string, string>();
    for (const l of out.split('\n')) {
      const [sha, name] = l.split('\t');
      if (sha && name) found.set(name, sha);
    }
    return found;
  }

  private static headOf(found: Map<string, string>, ref: string): string | null {
    if (COMMIT.test(ref)) return ref;
    return (
      found.get(`refs/heads/${ref}`) ??
      found.get(`refs/tags/${ref}^{}`) ??
      found.get(`refs/tags/${ref}`) ??
      null
    );
  }

  async checkRef(ref: string): Promise<void> {
    this.validateRef(ref);
    const found = await unreachable(this.opts, () => this.lsRemote([ref]));
    if (GitVcs.headOf(found, ref) === null)
      throw new UsageError(
        `ref "${ref}" does not exist in ${redact(this.opts.url)}: give an existing branch, tag or commit`,
      );
  }

  private async resolve(dir: string, ref: string): Promise<Resolved> {
    const verify = async (name: string) => {
      const out = await this.git(
        dir,
        ['rev-parse', '--verify', '--quiet', '--end-of-options', `${name}^{commit}`],
        'resolve ref',
      ).catch(() => '');
      return out.trim();
    };
    let commit = await verify(`refs/remotes/origin/${ref}`);
    if (commit) return { kind: 'branch', commit };
    commit = await verify(`refs/tags/${ref}`);
    if (commit) return { kind: 'tag', commit };
    if (COMMIT.test(ref)) {
      commit = await verify(ref);
      if (commit) return { kind: 'commit', commit };
    }
    throw new UsageError(
      `ref "${ref}" does not exist in ${redact(this.opts.url)}: give an existing branch, tag or commit`,
    );
  }

  private async checkoutResolved(dir: string, ref: string, r: Resolved): Promise<void> {
    if (r.kind === 'branch')
      await this.git(
        dir,
        ['checkout', '--force', '-B', ref, '--track', `origin/${ref}`],
        'check out',
      );
    else await this.git(dir, ['checkout', '--force', '--detach', r.commit], 'check out');
  }

  async checkout(ref: string, dest: string): Promise<string> {
    await this.net(async () => {
      await rm(dest, { recursive: true, force: true });
      await this.git(
        undefined,
        ['clone', '--no-checkout', '--origin', 'origin', '--', this.opts.url, dest],
        'clone',
      );
    });
    await this.checkoutResolved(dest, ref, await this.resolve(dest, ref));
    return this.revision(dest);
  }

  /** A plain clone of the default branch (the deployment skeleton). */
  async clone(dest: string): Promise<void> {
    await this.net(async () => {
      await rm(dest, { recursive: true, force: true });
      await this.git(undefined, ['clone', '-q', '--', this.opts.url, dest], 'clone');
    });
  }

  private fetch(dir: string): Promise<string> {
    return this.net(() =>
      this.git(dir, ['fetch', '--prune', '--tags', '--force', 'origin'], 'fetch'),
    );
  }

  async switchTo(dir: string, ref: string): Promise<string> {
    await this.fetch(dir);
    await this.checkoutResolved(dir, ref, await this.resolve(dir, ref));
    return this.revision(dir);
  }

  async update(dir: string, ref: string): Promise<UpdateOutcome> {
    const before = await this.revision(dir);
    await this.fetch(dir);
    const r = await this.resolve(dir, ref).catch(() => {
      throw new KarlstageError(
        `"${ref}" is gone upstream (deleted from ${redact(this.opts.url)}): switch this branch site to another ref`,
      );
    });
    let note: string | undefined;
    if (r.commit !== before) {
      // Commits of ours that the new head does not contain (simple-git reads
      // `merge-base --is-ancestor`'s silent exit 1 as success, so count instead).
      const lost = await this.git(
        dir,
        ['rev-list', '--count', `${r.commit}..${before}`],
        'compare history',
      );
      if (Number(lost.trim()) > 0)
        note = `history rewritten upstream: ${before.slice(0, 10)} is not in ${ref} any more; following ${r.commit.slice(0, 10)}`;
    }
    await this.checkoutResolved(dir, ref, r);
    return { revision: await this.revision(dir), note };
  }

  async revision(dir: string): Promise<string> {
    return (await this.git(dir, ['rev-parse', 'HEAD'], 'read revision')).trim();
  }

  async remoteHead(ref: string): Promise<string | null> {
    if (COMMIT.test(ref)) return ref;
    return GitVcs.headOf(await this.lsRemote([ref]), ref);
  }

  async remoteHeads(refs: string[]): Promise<Map<string, string | null | Error>> {
    const result = new Map<string, string | null | Error>();
    try {
      const found = await this.lsRemote(refs.filter((r) => !COMMIT.test(r)));
      for (const ref of refs) result.set(ref, GitVcs.headOf(found, ref));
    } catch (e) {
      for (const ref of refs) result.set(ref, COMMIT.test(ref) ? ref : (e as Error));
    }
    return result;
  }

  async commitsBetween(dir: string, from: string, to: string): Promise<number> {
    const out = await this.git(dir, ['rev-list', '--count', `${from}..${to}`], 'count commits');
    return Number(out.trim());
  }

  async describeCommit(dir: string): Promise<CommitInfo> {
    const out = await this.git(
      dir,
      ['log', '-1', '--format=%s%x1f%an%x1f%aI', 'HEAD'],
      'read the commit',
    );
    const [subject = '', author = '', date = ''] = out.trim().split('\x1f');
    return { subject, author, date };
  }

  async aheadOf(dir: string, ref: string, defaultRef: string): Promise<number | undefined> {
    if (ref === defaultRef) return 0;
    // origin/DEFAULT is local after the clone or fetch this run just did: no network.
    const out = await this.git(
      dir,
      ['rev-list', '--count', `refs/remotes/origin/${defaultRef}..HEAD`],
      'count commits ahead',
    ).catch(() => undefined);
    return out === undefined ? undefined : Number(out.trim());
  }

  async isDirty(dir: string): Promise<boolean> {
    const out = await this.git(
      dir,
      ['status', '--porcelain', '--untracked-files=no'],
      'check for local changes',
    );
    return out.trim() !== '';
  }

  async discardChanges(dir: string): Promise<void> {
    await this.git(dir, ['reset', '--hard', '-q'], 'discard local changes');
  }

  async repair(dir: string): Promise<void> {
    // We hold this branch's lock, so no git of ours runs here: a leftover index.lock is from a killed run.
    await rm(join(dir, '.git', 'index.lock'), { force: true });
  }

  preview(action: 'checkout' | 'switch' | 'update', ref: string, dir: string): string[] {
    const url = redact(this.opts.url);
    if (action === 'checkout')
      return [
        `$ git clone --no-checkout --origin origin -- ${url} ${dir}`,
        `$ git checkout --force -B ${ref} --track origin/${ref}   (or --detach for a tag or commit)`,
      ];
    return [
      `$ git fetch --prune --tags --force origin   (in ${dir})`,
      `$ git checkout --force -B ${ref} --track origin/${ref}   (or --detach for a tag or commit)`,
    ];
  }
}
