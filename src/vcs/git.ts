import { existsSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { exec, later, type Arg, type Command } from '../core/command.js';
import { KarlstageError, StepError, UsageError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { withRetries } from '../core/retries.js';
import { gitCredentialEnv, splitCredentials, type Credentials } from './credentials.js';
import { unreachable } from './failures.js';
import { GitStore, keepRef, storeLooksWhole, storeSpec } from './git-store.js';
import {
  CHANGES_SHOWN,
  LostCommitError,
  type BuildFacts,
  type CommitInfo,
  type Exec,
  type Procedure,
  type RefKind,
  type StoreProcedure,
  type StoreUse,
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

/** What a site made by karlstage sets in its own config: no reflogs, and no gc of its own. */
const SITE_SETTINGS: [string, string][] = [
  ['core.logAllRefUpdates', 'false'],
  ['gc.auto', '0'],
];

/**
 * git, through the one runner. Every branch site takes its objects from one
 * bare store (VcsOptions.store, kept whole by git-store.ts): the store is
 * fetched from [source] url once per run, and a site's .git borrows its
 * objects (alternates), so an extra site costs its checkout, not another
 * clone. A site follows a branch as a local branch tracking the store's, or
 * sits detached on a tag or commit; two sites on one branch are no problem (no
 * worktrees). A site never fetches: the store has every object it needs, so
 * karlstage points the site at a commit by its id, and the site holds no
 * reference the store might drop (see git-store.ts).
 */
export class GitVcs implements Vcs {
  readonly kind = 'git' as const;
  private readonly url: string;
  private readonly credentials?: Credentials;

  private keeper?: GitStore;
  /** Local commits counted in a working copy this run (an update with --force saves them). */
  private readonly localCount = new Map<string, number>();

  constructor(private readonly opts: VcsOptions) {
    const split = splitCredentials(opts.url);
    this.url = split.url;
    this.credentials = split.credentials;
  }

  private get store(): string {
    if (!this.opts.store) throw new Error('internal: no git store given');
    return this.opts.store;
  }

  /** The shared store's keeper (one per run: it remembers which sites' commits are lost). */
  private get storeKeeper(): GitStore {
    this.keeper ??= new GitStore({
      store: this.store,
      url: this.url,
      retries: this.opts.retries,
      git: (args, step, more) => this.git(args, step, more),
      fetchSpecs: ['+refs/heads/*:refs/heads/*', '+refs/tags/*:refs/tags/*'],
    });
    return this.keeper;
  }

  /** A git command on the store: --git-dir, so a damaged store is never mistaken for a folder above it. */
  private inStore(args: Arg[], step: string, more: Partial<Command> = {}): Command {
    return this.git([`--git-dir=${this.store}`, ...args], step, more);
  }

  /** The commit a site had checked out is gone for good (found by this run's store check). */
  private lostAt(dir: string): LostCommitError | undefined {
    const commit = this.keeper?.lost.get(dir);
    if (commit === undefined) return undefined;
    return new LostCommitError(
      `the commit it had checked out (${commit.slice(0, 10)}) is gone for good: not upstream, not in the shared store, not in the site; its files are untouched. "update --force" or "switch --force" moves it onto a commit that exists`,
    );
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
      return e.because(`no answer within ${Math.round(this.opts.timeoutMs / 1000)} s`);
    const lines = e.outputTail.split('\n').map((l) => l.trim());
    const said = lines.find((l) => /^(fatal|error):/.test(l));
    return said ? e.because(redact(said)) : e;
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

  prepare(use: StoreUse): StoreProcedure {
    return this.storeKeeper.procedure(use);
  }

  locate(ref: string, kind: RefKind): Procedure<void> | undefined {
    if (kind !== 'commit') return undefined; // checkRef found it upstream
    const find = this.inStore(
      ['cat-file', '-e', '--end-of-options', `${ref}^{commit}`],
      'look the commit up in the store',
      { explain: this.missing(ref) },
    );
    return { commands: [find], run: async (run) => void (await run(find)) };
  }

  /** The commit a ref names in the store (fetched, or checked, just before). */
  private resolve(ref: string, kind: RefKind, gone: () => Error): Command {
    return this.inStore(
      ['rev-parse', '--verify', '--quiet', '--end-of-options', `${storeSpec(ref, kind)}^{commit}`],
      'resolve the ref',
      // --quiet: a ref that is not there fails silently; anything else is git's own failure.
      { explain: (e) => (e.outputTail.trim() === '' ? gone() : this.why(e)) },
    );
  }

  /**
   * Where a site lands on a commit: its remote-tracking refs and tags are dropped but for
   * origin/REF (a branch), which is set to the commit; then a branch is checked out as a local
   * branch tracking it, a tag or commit detached; and the store keeps the commit.
   */
  private land(to: {
    dir: string;
    ref: string;
    kind: RefKind;
    site: string;
    commit: () => string;
  }): { commands: Command[]; run: (run: Exec) => Promise<void> } {
    const { dir, ref, kind, site, commit } = to;
    const gitDir = join(dir, '.git');
    const tracking = `refs/remotes/origin/${ref}`;
    let input = '';
    // --git-dir: a site whose .git is broken is never mistaken for a repository above it.
    // %(HEAD) marks the branch checked out now: the one karlstage made for the site's last ref.
    const strays = this.git(
      [
        '--git-dir',
        gitDir,
        'for-each-ref',
        '--format=%(HEAD)%(refname)',
        'refs/remotes/',
        'refs/tags/',
        'refs/heads/',
      ],
      "list the site's remote-tracking refs, tags and branch",
    );
    const refs = this.git(
      ['--git-dir', gitDir, 'update-ref', '--no-deref', '--stdin'],
      'set the refs',
      {
        input: () => input,
        when: 'when there is a ref to drop or set',
      },
    );
    const co = this.git(
      kind === 'branch'
        ? ['-C', dir, 'checkout', '-q', '--force', '-B', ref, '--track', `origin/${ref}`]
        : ['-C', dir, 'checkout', '-q', '--force', '--detach', later('COMMIT', commit)],
      'check out',
    );
    const keep = this.keepCommand(site, commit);
    return {
      commands: [strays, refs, co, keep],
      run: async (run) => {
        // Dropped: every remote-tracking ref and tag but origin/REF, and the branch of the last
        // ref when the site moves off it (a switch); someone's own other branches stay.
        const drop = (await run(strays)).stdout
          .split('\n')
          .filter((l) => l.trim())
          .flatMap((l) => {
            const name = l.slice(1);
            if (name.startsWith('refs/heads/'))
              return l[0] === '*' && name !== `refs/heads/${kind === 'branch' ? ref : ''}`
                ? [name]
                : [];
            return name === (kind === 'branch' ? tracking : '') ? [] : [name];
          });
        input = [
          ...drop.map((r) => `delete ${r}\n`),
          ...(kind === 'branch' ? [`update ${tracking} ${commit()}\n`] : []),
        ].join('');
        if (input) await run(refs);
        await run(co);
        await run(keep);
      },
    };
  }

  /** A site made by an older karlstage (a clone): its reflogs go, and it gets a site's settings. */
  private settle(dir: string): Procedure<void> {
    const logs = join(dir, '.git', 'logs');
    const when = { when: 'when the site still has reflogs (made by an older karlstage)' };
    const settings = SITE_SETTINGS.map(([k, v]) =>
      this.git(
        ['--git-dir', join(dir, '.git'), 'config', k, v],
        'no reflogs, no gc of its own',
        when,
      ),
    );
    return {
      commands: settings,
      effects: [`remove ${logs}/ ${when.when}`],
      run: async (run) => {
        if (!existsSync(logs)) return;
        for (const c of settings) await run(c);
        await rm(logs, { recursive: true, force: true });
      },
    };
  }

  private keepCommand(site: string, commit: () => string): Command {
    return this.inStore(
      ['update-ref', keepRef(site), later('COMMIT', commit)],
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

  /**
   * A new site: an empty repository whose objects come from the store (alternates), with
   * the store as origin, no reflogs and no gc of its own; then it lands on the commit. Not
   * `git clone --shared`, which would give it every branch and tag of the store as refs
   * that the store may later drop.
   */
  checkout(ref: string, kind: RefKind, dest: string, site: string): Procedure<string> {
    let commit = '';
    const resolve = this.resolve(ref, kind, this.missing(ref));
    const init = this.git(['init', '-q', '--', dest], 'check out: a repository sharing the store');
    const settings = SITE_SETTINGS.map(([k, v]) =>
      this.git(['-C', dest, 'config', k, v], 'no reflogs, no gc of its own'),
    );
    const origin = this.git(['-C', dest, 'remote', 'add', 'origin', this.store], 'use the store');
    const alternates = join(dest, '.git', 'objects', 'info', 'alternates');
    const land = this.land({ dir: dest, ref, kind, site, commit: () => commit });
    return {
      commands: [resolve, init, ...settings, origin, ...land.commands],
      effects: [`write ${alternates} (${join(this.store, 'objects')})`],
      run: async (run) => {
        commit = (await run(resolve)).stdout.trim();
        await run(init);
        for (const c of settings) await run(c);
        await writeFile(alternates, `${join(this.store, 'objects')}\n`);
        await run(origin);
        await land.run(run);
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
  private adopt(dir: string): Procedure<void> {
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
        await writeFile(alternates, `${join(this.store, 'objects')}\n`);
        await run(origin);
        await run(repack);
      },
    };
  }

  private move(
    dir: string,
    to: { ref: string; kind: RefKind },
    site: string,
    notFound: () => Error,
  ): Procedure<UpdateOutcome> {
    const { ref, kind } = to;
    let before = '';
    let commit = '';
    const adopt = this.adopt(dir);
    const settle = this.settle(dir);
    const resolve = this.resolve(ref, kind, notFound);
    const head = this.git(['-C', dir, 'rev-parse', 'HEAD'], 'read the revision');
    const lost = this.git(
      ['-C', dir, 'rev-list', '--count', later('RANGE', () => `${commit}..${before}`)],
      'compare history',
      { when: 'when the head moved' },
    );
    // Local commits dropped by --force stay in the site, under a ref of their own.
    const save = this.git(
      [
        '--git-dir',
        join(dir, '.git'),
        'update-ref',
        later(
          'REF',
          () => `refs/karlstage/dropped/${new Date().toISOString().replace(/[:.]/g, '-')}`,
        ),
        'HEAD',
      ],
      'keep the local commits',
      { when: 'when local commits are dropped (--force)' },
    );
    const land = this.land({ dir, ref, kind, site, commit: () => commit });
    return {
      commands: [
        ...adopt.commands,
        ...settle.commands,
        resolve,
        head,
        lost,
        save,
        ...land.commands,
      ],
      effects: [...(adopt.effects ?? []), ...(settle.effects ?? [])],
      run: async (run) => {
        await adopt.run(run);
        await settle.run(run);
        commit = (await run(resolve)).stdout.trim();
        before = (await run(head)).stdout.trim();
        const gone = this.lostAt(dir);
        let note: string | undefined;
        if (gone)
          note = `its commit ${before.slice(0, 10)} was gone for good; now at ${commit.slice(0, 10)}`;
        // Commits of ours that the new head does not contain: history was rewritten upstream.
        else if (commit !== before && Number((await run(lost)).stdout.trim()) > 0)
          note = `history rewritten upstream: ${before.slice(0, 10)} is not in ${ref} any more; following ${commit.slice(0, 10)}`;
        if ((this.localCount.get(dir) ?? 0) > 0) await run(save);
        await land.run(run);
        return { revision: commit, note };
      },
    };
  }

  switchTo(dir: string, ref: string, kind: RefKind, site: string): Procedure<string> {
    const p = this.move(dir, { ref, kind }, site, this.missing(ref));
    return { ...p, run: async (run) => (await p.run(run)).revision };
  }

  update(dir: string, ref: string, kind: RefKind, site: string): Procedure<UpdateOutcome> {
    return this.move(dir, { ref, kind }, site, this.gone(ref));
  }

  isDirty(dir: string): Procedure<boolean> {
    const status = this.git(
      ['-C', dir, 'status', '--porcelain', '--untracked-files=no'],
      'check for local changes',
    );
    return {
      commands: [status],
      run: async (run) => {
        const gone = this.lostAt(dir);
        if (gone) throw gone;
        return (await run(status)).stdout.trim() !== '';
      },
    };
  }

  localCommits(dir: string, site: string): Procedure<number> {
    let kept = '';
    const keep = this.inStore(
      ['rev-parse', '--verify', '--quiet', keepRef(site)],
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
        const gone = this.lostAt(dir);
        if (gone) throw gone;
        if (storeLooksWhole(this.store)) kept = (await run(keep)).stdout.trim();
        const n = Number((await run(kept ? onTop : unpushed)).stdout.trim());
        this.localCount.set(dir, n);
        return n;
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
    let revision = '';
    const log = this.git(
      ['-C', dir, 'log', '-1', '--format=%H%x1f%s%x1f%an%x1f%aI', 'HEAD'],
      'read the commit',
    );
    // Counted in the store, which has the default branch as upstream has it: no network, and
    // no remote-tracking ref in the site.
    const range = later('RANGE', () => `refs/heads/${defaultRef}..${revision}`);
    const ahead = this.inStore(['rev-list', '--count', range], 'count commits ahead', {
      when: `when ${ref} is not ${defaultRef}`,
    });
    const changes = this.inStore(
      ['log', `--max-count=${CHANGES_SHOWN}`, '--format=%s%x1f%an%x1f%aI%x1e', range],
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
        if (out) {
          const [id = '', ...rest] = out.stdout.trim().split('\x1f');
          revision = id;
          facts.commit = commitOf(rest.join('\x1f'));
        }
        if (ref === defaultRef) facts.ahead = 0;
        else if (revision) {
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
    const drop = this.inStore(['update-ref', '-d', keepRef(site)], 'forget it in the store', {
      when: 'when the store exists',
    });
    return {
      commands: [drop],
      run: async (run) => {
        if (storeLooksWhole(this.store)) await run(drop).catch(() => undefined);
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
      this.inStore(['rev-list', '--count', `${from}..${to}`], 'count commits'),
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

  /**
   * Is the store whole, and how big (doctor)? fsck --connectivity-only reads every object it
   * reaches: more than the check before each run, which reads only what the sites need.
   */
  storeCheck(): Procedure<string> {
    const fsck = this.inStore(['fsck', '--connectivity-only', '--no-progress'], 'check the store');
    const count = this.inStore(['count-objects', '-v', '-H'], 'measure the store');
    const repairs = 'the next update, switch, create or poll --build repairs it';
    return {
      commands: [fsck, count],
      run: async (run) => {
        if (!existsSync(this.store))
          throw new KarlstageError(`${this.store} is missing: ${repairs}`);
        try {
          await run(fsck);
        } catch (e) {
          throw new KarlstageError(`${e instanceof Error ? e.message : String(e)}: ${repairs}`);
        }
        return /size-pack: (.*)/.exec((await run(count)).stdout)?.[1] ?? '?';
      },
    };
  }
}
