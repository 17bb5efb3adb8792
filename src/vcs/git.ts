import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { exec, later, type Arg, type Command } from '../core/command.js';
import { KarlstageError, StepError, UsageError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { withRetries } from '../core/runner.js';
import { gitCredentialEnv, splitCredentials, type Credentials } from './credentials.js';
import { unreachable } from './failures.js';
import {
  CHANGES_SHOWN,
  type BuildFacts,
  type CommitInfo,
  type Procedure,
  type RefKind,
  type UpdateOutcome,
  type Vcs,
  type VcsOptions,
} from './vcs.js';

// A ref as `git check-ref-format` allows it, never an option, or a commit id.
// (Printable ASCII only, which also keeps control characters out.)
const GIT_REF = /^(?!-)(?!.*\.\.)(?!.*\/\/)(?!.*@\{)(?!.*\.lock$)(?!.*[/.]$)[!-~]+$/;
const GIT_REF_FORBIDDEN = /[~^:?*[\\]/;
const COMMIT = /^[0-9a-f]{7,40}$/;

// Programs git would start to talk to a person: never wanted here (cron has no terminal).
const INTERACTIVE = /^(GIT_)?(EDITOR|VISUAL|PAGER|SEQUENCE_EDITOR|ASKPASS)$|^SSH_ASKPASS$/i;

/** The store keeps each site's commit alive under this ref, so its gc never prunes what a site needs. */
const keepRef = (site: string) => `refs/karlstage/keep/${site}`;

/**
 * git, through the one runner. Every branch site takes its objects from one
 * bare store (VcsOptions.store): the store is fetched from [source] url once
 * per run, and a site is a `git clone --shared` of it (objects through
 * alternates), so an extra site costs its checkout, not another clone. A site
 * follows a branch as a local branch tracking the store, or sits detached on
 * a tag or commit; two sites on one branch are no problem (no worktrees).
 */
export class GitVcs implements Vcs {
  readonly kind = 'git' as const;
  private readonly url: string;
  private readonly credentials?: Credentials;

  constructor(private readonly opts: VcsOptions) {
    const split = splitCredentials(opts.url);
    this.url = split.url;
    this.credentials = split.credentials;
  }

  private get store(): string {
    if (!this.opts.store) throw new Error('internal: no git store given');
    return this.opts.store;
  }

  /** The operator's environment less git's interactive helpers, and what karlstage adds. */
  private readonly env = (): Record<string, string> => {
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env))
      if (v !== undefined && !INTERACTIVE.test(k)) env[k] = v;
    return {
      ...env,
      LC_ALL: 'C', // git's own words ("fatal: …") are read below
      GIT_TERMINAL_PROMPT: '0',
      // "git status" must not rewrite the index: a read stays a read.
      GIT_OPTIONAL_LOCKS: '0',
      GIT_SSH_COMMAND: env.GIT_SSH_COMMAND ?? 'ssh -o BatchMode=yes',
      ...gitCredentialEnv(this.credentials),
    };
  };

  private git(args: Arg[], step: string, more: Partial<Command> = {}): Command {
    return {
      program: 'git',
      args,
      step,
      env: this.env,
      cleanEnv: true,
      timeoutMs: this.opts.timeoutMs,
      explain: (e) => this.why(e),
      ...more,
    };
  }

  /** git's failure in git's words: its "fatal:" line, or that the server did not answer. */
  private why(e: StepError): StepError {
    if (/timed out after/.test(e.message))
      return new StepError(
        e.step,
        e.commandLine,
        e.outputTail,
        `no answer within ${Math.round(this.opts.timeoutMs / 1000)} s`,
        e.logFile,
      );
    const lines = e.outputTail.split('\n').map((l) => l.trim());
    const said = lines.find((l) => /^(fatal|error):/.test(l));
    return said ? new StepError(e.step, e.commandLine, e.outputTail, redact(said), e.logFile) : e;
  }

  validateRef(ref: string): void {
    if (!GIT_REF.test(ref) || GIT_REF_FORBIDDEN.test(ref))
      throw new UsageError(
        `git ref ${JSON.stringify(ref)} is not allowed: give a branch, a tag or a commit id`,
      );
  }

  describeRef(ref: string): string {
    return `${ref} of ${redact(this.url)}`;
  }

  private async lsRemote(refs: string[]): Promise<Map<string, string>> {
    const patterns = refs.flatMap((r) => [
      `refs/heads/${r}`,
      `refs/tags/${r}`,
      `refs/tags/${r}^{}`,
    ]);
    // Protocol 0: the server sends its refs as soon as it is asked, one round trip. Protocol 2
    // (git's default) takes two, and over git:// the second waits out a 40 ms delayed ACK; it
    // would only pay off for a repository with tens of thousands of refs (bench/poll.mjs).
    const r = await withRetries(
      () =>
        exec(
          this.git(
            ['-c', 'protocol.version=0', 'ls-remote', '--', this.url, ...patterns],
            'ask the repository',
          ),
          this.opts.log,
        ),
      this.opts.retries,
    );
    const found = new Map<string, string>();
    for (const l of r.stdout.split('\n')) {
      const [sha, name] = l.split('\t');
      if (sha && name) found.set(name, sha);
    }
    return found;
  }

  private static headOf(found: Map<string, string>, ref: string): string | null {
    if (COMMIT.test(ref) && !found.has(`refs/heads/${ref}`)) return ref;
    return (
      found.get(`refs/heads/${ref}`) ??
      found.get(`refs/tags/${ref}^{}`) ??
      found.get(`refs/tags/${ref}`) ??
      null
    );
  }

  async checkRef(ref: string): Promise<RefKind> {
    this.validateRef(ref);
    const found = await unreachable(this.opts, () => this.lsRemote([ref]));
    if (found.has(`refs/heads/${ref}`)) return 'branch';
    if (found.has(`refs/tags/${ref}`)) return 'tag';
    // A commit id cannot be asked for without fetching: it is looked up in the store first thing.
    if (COMMIT.test(ref)) return 'commit';
    throw new UsageError(
      `ref "${ref}" does not exist in ${redact(this.url)}: give an existing branch, tag or commit`,
    );
  }

  /** The store exists and looks like a bare repository (else it is made anew). */
  private storeIsWhole(): boolean {
    return ['HEAD', 'config', 'objects', 'refs'].every((f) => existsSync(join(this.store, f)));
  }

  prepare(): Procedure<void> {
    const store = this.store;
    const init = this.git(['init', '-q', '--bare', '--', store], 'make the shared object store', {
      when: 'when the store is missing or damaged',
    });
    // From the URL itself, not a remote in the store's config: a changed [source] url is followed.
    const fetch = this.git(
      [
        '-C',
        store,
        'fetch',
        '-q',
        '--prune',
        '--force',
        '--',
        this.url,
        '+refs/heads/*:refs/heads/*',
        '+refs/tags/*:refs/tags/*',
      ],
      'fetch into the shared object store',
    );
    return {
      commands: [init, fetch],
      effects: [`remove ${store}/ first when it is missing or damaged`],
      run: async (run) => {
        const rebuild = async () => {
          await rm(store, { recursive: true, force: true });
          await run(init);
        };
        if (!this.storeIsWhole()) await rebuild();
        try {
          await withRetries(() => run(fetch), this.opts.retries);
        } catch (e) {
          // A store someone damaged by hand is rebuilt once; a network failure is just that.
          if (
            !(e instanceof StepError) ||
            !/corrupt|bad object|not a git repository|missing/i.test(e.outputTail)
          )
            throw e;
          await rebuild();
          await withRetries(() => run(fetch), this.opts.retries);
        }
      },
    };
  }

  locate(ref: string, kind: RefKind): Procedure<void> | undefined {
    if (kind !== 'commit') return undefined; // checkRef found it upstream
    const find = this.git(
      ['-C', this.store, 'cat-file', '-e', '--end-of-options', `${ref}^{commit}`],
      'look the commit up in the store',
      { explain: this.missing(ref) },
    );
    return { commands: [find], run: async (run) => void (await run(find)) };
  }

  /** The commit a ref names in a working copy that has fetched from the store. */
  private resolve(dir: string, ref: string, kind: RefKind, gone: () => Error): Command {
    const spec =
      kind === 'branch'
        ? `refs/remotes/origin/${ref}^{commit}`
        : kind === 'tag'
          ? `refs/tags/${ref}^{commit}`
          : `${ref}^{commit}`;
    return this.git(
      ['-C', dir, 'rev-parse', '--verify', '--quiet', '--end-of-options', spec],
      'resolve the ref',
      // --quiet: a ref that is not there fails silently; anything else is git's own failure.
      { explain: (e) => (e.outputTail.trim() === '' ? gone() : this.why(e)) },
    );
  }

  /** A branch as a local branch tracking the store's; a tag or commit detached. */
  private switchCommand(dir: string, ref: string, kind: RefKind, commit: () => string): Command {
    return this.git(
      kind === 'branch'
        ? ['-C', dir, 'checkout', '-q', '--force', '-B', ref, '--track', `origin/${ref}`]
        : ['-C', dir, 'checkout', '-q', '--force', '--detach', later('COMMIT', commit)],
      'check out',
    );
  }

  private keepCommand(site: string, commit: () => string): Command {
    return this.git(
      ['-C', this.store, 'update-ref', keepRef(site), later('COMMIT', commit)],
      'keep the commit in the store',
    );
  }

  private missing(ref: string) {
    return () =>
      new UsageError(
        `ref "${ref}" does not exist in ${redact(this.url)}: give an existing branch, tag or commit`,
      );
  }

  private gone(ref: string) {
    return () =>
      new KarlstageError(
        `"${ref}" is gone upstream (deleted from ${redact(this.url)}): switch this branch site to another ref`,
      );
  }

  checkout(ref: string, kind: RefKind, dest: string, site: string): Procedure<string> {
    let commit = '';
    const clone = this.git(
      ['clone', '-q', '--shared', '--no-checkout', '--', this.store, dest],
      'check out: a clone sharing the store',
    );
    const resolve = this.resolve(dest, ref, kind, this.missing(ref));
    const co = this.switchCommand(dest, ref, kind, () => commit);
    const keep = this.keepCommand(site, () => commit);
    return {
      commands: [clone, resolve, co, keep],
      run: async (run) => {
        await run(clone);
        commit = (await run(resolve)).stdout.trim();
        await run(co);
        await run(keep);
        return commit;
      },
    };
  }

  /**
   * A working copy made before the store (a full clone of its own) moves onto
   * it in place: the store becomes its object source (alternates) and origin,
   * and a local repack drops the copies the store has. Local commits and
   * changes stay; the working tree is not touched, so the site keeps serving.
   */
  private adopt(dir: string): { commands: Command[]; effects: string[]; run: Run } {
    const alternates = join(dir, '.git', 'objects', 'info', 'alternates');
    const when = { when: 'when the site has its own copy of every object (made before the store)' };
    const origin = this.git(
      ['-C', dir, 'remote', 'set-url', 'origin', this.store],
      'use the store',
      when,
    );
    const repack = this.git(
      ['-C', dir, 'repack', '-a', '-d', '-l', '-q'],
      'drop what the store has',
      when,
    );
    return {
      commands: [origin, repack],
      effects: [`write ${alternates} (${join(this.store, 'objects')}) ${when.when}`],
      run: async (run) => {
        if (existsSync(alternates)) return;
        const { writeFile } = await import('node:fs/promises');
        await writeFile(alternates, `${join(this.store, 'objects')}\n`);
        await run(origin);
        await run(repack);
      },
    };
  }

  private move(
    dir: string,
    ref: string,
    kind: RefKind,
    site: string,
    notFound: () => Error,
  ): Procedure<UpdateOutcome> {
    let before = '';
    let commit = '';
    const adopt = this.adopt(dir);
    const fetch = this.git(
      ['-C', dir, 'fetch', '-q', '--prune', '--force', '--tags', 'origin'],
      'fetch from the store',
    );
    const head = this.git(['-C', dir, 'rev-parse', 'HEAD'], 'read the revision');
    const resolve = this.resolve(dir, ref, kind, notFound);
    const lost = this.git(
      ['-C', dir, 'rev-list', '--count', later('RANGE', () => `${commit}..${before}`)],
      'compare history',
      { when: 'when the head moved' },
    );
    const co = this.switchCommand(dir, ref, kind, () => commit);
    const keep = this.keepCommand(site, () => commit);
    return {
      commands: [...adopt.commands, fetch, head, resolve, lost, co, keep],
      effects: adopt.effects,
      run: async (run) => {
        await adopt.run(run);
        await run(fetch);
        before = (await run(head)).stdout.trim();
        commit = (await run(resolve)).stdout.trim();
        let note: string | undefined;
        // Commits of ours that the new head does not contain: history was rewritten upstream.
        if (commit !== before && Number((await run(lost)).stdout.trim()) > 0)
          note = `history rewritten upstream: ${before.slice(0, 10)} is not in ${ref} any more; following ${commit.slice(0, 10)}`;
        await run(co);
        await run(keep);
        return { revision: commit, note };
      },
    };
  }

  switchTo(dir: string, ref: string, kind: RefKind, site: string): Procedure<string> {
    const p = this.move(dir, ref, kind, site, this.missing(ref));
    return { ...p, run: async (run) => (await p.run(run)).revision };
  }

  update(dir: string, ref: string, kind: RefKind, site: string): Procedure<UpdateOutcome> {
    return this.move(dir, ref, kind, site, this.gone(ref));
  }

  isDirty(dir: string): Procedure<boolean> {
    const status = this.git(
      ['-C', dir, 'status', '--porcelain', '--untracked-files=no'],
      'check for local changes',
    );
    return { commands: [status], run: async (run) => (await run(status)).stdout.trim() !== '' };
  }

  localCommits(dir: string, site: string): Procedure<number> {
    let kept = '';
    const keep = this.git(
      ['-C', this.store, 'rev-parse', '--verify', '--quiet', keepRef(site)],
      'read what karlstage checked out',
      { okExitCodes: [1], when: 'when the store exists' },
    );
    // On top of what karlstage last checked out: someone's commits. A site made before the
    // store has no keep-ref: then whatever its remote-tracking refs lack.
    const onTop = this.git(
      ['-C', dir, 'rev-list', '--count', later('RANGE', () => `${kept}..HEAD`)],
      'count local commits',
      { when: 'when karlstage checked it out from the store' },
    );
    const unpushed = this.git(
      ['-C', dir, 'rev-list', '--count', 'HEAD', '--not', '--remotes'],
      'count local commits',
      { when: 'when it was made before the store' },
    );
    return {
      commands: [keep, onTop, unpushed],
      run: async (run) => {
        if (this.storeIsWhole()) kept = (await run(keep)).stdout.trim();
        return Number((await run(kept ? onTop : unpushed)).stdout.trim());
      },
    };
  }

  discardChanges(dir: string): Procedure<void> {
    const reset = this.git(['-C', dir, 'reset', '--hard', '-q'], 'discard local changes');
    return { commands: [reset], run: async (run) => void (await run(reset)) };
  }

  repair(dir: string): Procedure<void> {
    const lock = join(dir, '.git', 'index.lock');
    return {
      commands: [],
      // We hold this branch's lock, so no git of ours runs here: a leftover index.lock is from a killed run.
      effects: [`remove ${lock}`],
      run: async () => rm(lock, { force: true }),
    };
  }

  describeBuild(dir: string, ref: string, defaultRef: string): Procedure<BuildFacts> {
    const log = this.git(
      ['-C', dir, 'log', '-1', '--format=%s%x1f%an%x1f%aI', 'HEAD'],
      'read the commit',
    );
    // origin/DEFAULT came with the fetch from the store: no network.
    const ahead = this.git(
      ['-C', dir, 'rev-list', '--count', `refs/remotes/origin/${defaultRef}..HEAD`],
      'count commits ahead',
      { when: `when ${ref} is not ${defaultRef}` },
    );
    const changes = this.git(
      [
        '-C',
        dir,
        'log',
        `--max-count=${CHANGES_SHOWN}`,
        '--format=%s%x1f%an%x1f%aI%x1e',
        `refs/remotes/origin/${defaultRef}..HEAD`,
      ],
      'list the commits ahead',
      { when: `when ${ref} is not ${defaultRef}` },
    );
    const commitOf = (line: string): CommitInfo => {
      const [subject = '', author = '', date = ''] = line.trim().split('\x1f');
      return { subject, author, date };
    };
    return {
      commands: [log, ahead, changes],
      run: async (run) => {
        const facts: BuildFacts = {};
        const out = await run(log).catch(() => undefined);
        if (out) facts.commit = commitOf(out.stdout);
        if (ref === defaultRef) facts.ahead = 0;
        else {
          const n = await run(ahead).catch(() => undefined);
          if (n) facts.ahead = Number(n.stdout.trim());
          const list = await run(changes).catch(() => undefined);
          if (list)
            facts.changes = list.stdout
              .split('\x1e')
              .filter((l) => l.trim())
              .map(commitOf);
        }
        return facts;
      },
    };
  }

  forget(site: string): Procedure<void> {
    const drop = this.git(
      ['-C', this.store, 'update-ref', '-d', keepRef(site)],
      'forget it in the store',
      {
        when: 'when the store exists',
      },
    );
    return {
      commands: [drop],
      run: async (run) => {
        if (this.storeIsWhole()) await run(drop).catch(() => undefined);
      },
    };
  }

  /** The repository answers (its HEAD), asked once without retries: doctor. */
  async reachable(): Promise<void> {
    await exec(
      this.git(['ls-remote', '--', this.url, 'HEAD'], 'ask the repository'),
      this.opts.log,
    );
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

  async commitsBetween(_dir: string, from: string, to: string): Promise<number> {
    // Only when both are in the store already: counting must never fetch.
    const r = await exec(
      this.git(['-C', this.store, 'rev-list', '--count', `${from}..${to}`], 'count commits'),
      this.opts.log,
    );
    return Number(r.stdout.trim());
  }

  /** A plain clone of the default branch (the deployment skeleton given as a git URL). */
  clonePlain(dest: string): Procedure<void> {
    const clone = this.git(['clone', '-q', '--', this.url, dest], 'clone the skeleton');
    return {
      commands: [clone],
      run: async (run) => void (await withRetries(() => run(clone), this.opts.retries)),
    };
  }

  /** Is the store whole, and how big (doctor)? fsck --connectivity-only reads every object it reaches. */
  storeCheck(): Procedure<string> {
    const fsck = this.git(
      ['-C', this.store, 'fsck', '--connectivity-only', '--no-progress'],
      'check the store',
    );
    const count = this.git(['-C', this.store, 'count-objects', '-v', '-H'], 'measure the store');
    return {
      commands: [fsck, count],
      run: async (run) => {
        if (!this.storeIsWhole())
          throw new KarlstageError(`${this.store} is missing: the next update makes it`);
        await run(fsck);
        const size = /size-pack: (.*)/.exec((await run(count)).stdout)?.[1] ?? '?';
        return size;
      },
    };
  }
}

type Run = (run: (command: Command) => Promise<unknown>) => Promise<void>;
