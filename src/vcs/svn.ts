import { KarlstageError, StepError, UsageError } from '../core/errors.js';
import { exec, later, type Arg, type Command } from '../core/command.js';
import { redact } from '../core/redact.js';
import { withRetries } from '../core/retries.js';
import { splitCredentials, type Credentials } from './credentials.js';
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

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const URL = /^(svn|svn\+ssh|https?|file):\/\/\S+$/;
// svn's words for "that path is not in the repository (any more)".
const NOT_THERE = /W160013|W170000|E170000|E160013|E160005|E200009/;
// What trying again cannot cure: no repository at that URL (E180001 local, E210005 svnserve),
// a URL svn cannot read (E125002), a login refused (E170001, E215004, E175013), a path not
// readable (E220001). A file:// URL involves no network: whatever failed, failed for good.
const FINAL = /\b(E180001|E210005|E125002|E170001|E215004|E175013|E220001):/;

/**
 * Subversion through the one runner. Refs are trunk, branches/X, tags/X or a
 * full URL. A user name and password from [source] url go as --username and
 * on standard input (--password-from-stdin), never in an argument or svn's
 * credential cache.
 */
export class SvnVcs implements Vcs {
  readonly kind = 'svn' as const;
  private readonly root: string;
  private readonly credentials?: Credentials;

  constructor(private readonly opts: VcsOptions) {
    const split = splitCredentials(opts.url);
    this.root = split.url.replace(/\/+$/, '');
    this.credentials = split.credentials;
  }

  private svn(args: Arg[], step: string, more: Partial<Command> = {}): Command {
    const c = this.credentials;
    const auth = c?.username || c?.password ? ['--no-auth-cache'] : [];
    if (c?.username) auth.push('--username', c.username);
    if (c?.password) auth.push('--password-from-stdin');
    return {
      program: 'svn',
      args: ['--non-interactive', ...auth, ...args],
      step,
      env: () => ({ LC_ALL: 'C' }),
      ...(c?.password ? { input: () => `${c.password}\n` } : {}),
      timeoutMs: this.opts.timeoutMs,
      explain: (e) => this.why(e),
      ...more,
    };
  }

  /** svn's failure in svn's words: its last "svn: E…" line; final when retrying cannot help. */
  private why(e: StepError, url?: string): StepError {
    const said = e.outputTail
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => /^svn: E\d+:/.test(l))
      .at(-1);
    const told = said ? e.because(said) : e;
    if (FINAL.test(e.outputTail) || url?.startsWith('file://'))
      Object.assign(told, { final: true });
    return told;
  }

  validateRef(ref: string): void {
    if (ref === 'trunk' || URL.test(ref)) return;
    const [kind, name, ...rest] = ref.split('/');
    if ((kind === 'branches' || kind === 'tags') && name && SEGMENT.test(name) && rest.length === 0)
      return;
    throw new UsageError(
      `svn ref ${JSON.stringify(ref)} is not allowed: give trunk, branches/NAME, tags/NAME or a full URL`,
    );
  }

  urlOf(ref: string): string {
    this.validateRef(ref);
    return URL.test(ref) ? splitCredentials(ref).url : `${this.root}/${ref}`;
  }

  describeRef(ref: string): string {
    return redact(this.urlOf(ref));
  }

  async checkRef(ref: string): Promise<RefKind> {
    // A ref given as a full URL is named in the message: it, not [source] url, is what to check.
    const named = URL.test(ref) ? ref : undefined;
    const head = (await unreachable(this.opts, () => this.remoteHeads([ref]), named)).get(ref);
    if (head instanceof Error) await unreachable(this.opts, () => Promise.reject(head), named);
    if (head === null || head === undefined)
      throw new UsageError(
        `ref "${ref}" does not exist: ${redact(this.urlOf(ref))} is not in the repository`,
      );
    return 'path';
  }

  locate(): undefined {
    return undefined; // checkRef asked the server already
  }

  prepare(): undefined {
    return undefined; // svn working copies cannot share a store
  }

  private revision(dir: string): Command {
    return this.svn(
      ['info', '--show-item', 'last-changed-revision', '--', dir],
      'read the revision',
    );
  }

  checkout(ref: string, _kind: RefKind, dest: string): Procedure<string> {
    const co = this.svn(['checkout', '-q', '--', this.urlOf(ref), dest], 'check out');
    const rev = this.revision(dest);
    return {
      commands: [co, rev],
      run: async (run) => {
        await withRetries(() => run(co), this.opts.retries);
        return (await run(rev)).stdout.trim();
      },
    };
  }

  /**
   * A working copy whose repository root is not [source] url any more (the
   * repository moved) is relocated first; otherwise update would keep asking
   * the old server for ever.
   */
  private follow(dir: string): {
    commands: Command[];
    run: (run: (c: Command) => Promise<{ stdout: string }>) => Promise<void>;
  } {
    let from = '';
    const root = this.svn(
      ['info', '--show-item', 'repos-root-url', '--', dir],
      'read the repository root',
    );
    const relocate = this.svn(
      ['relocate', '--', later('OLD ROOT', () => from), this.root, dir],
      'follow [source] url',
      { when: 'when [source] url changed' },
    );
    return {
      commands: [root, relocate],
      run: async (run) => {
        from = (await run(root)).stdout.trim();
        if (from && from !== this.root) await run(relocate);
      },
    };
  }

  switchTo(dir: string, ref: string): Procedure<string> {
    const sw = this.svn(
      ['switch', '-q', '--ignore-ancestry', '--', this.urlOf(ref), dir],
      'switch',
    );
    return this.moving(dir, sw, (revision) => revision);
  }

  update(dir: string, ref: string): Procedure<UpdateOutcome> {
    const up = this.svn(['update', '-q', '--', dir], 'update', {
      explain: (e) =>
        NOT_THERE.test(e.outputTail)
          ? new KarlstageError(
              `"${ref}" is gone upstream (${redact(this.urlOf(ref))} was deleted): switch this branch site to another ref`,
            )
          : this.why(e),
    });
    return this.moving(dir, up, (revision) => ({ revision }));
  }

  /** A working copy moved by one svn command (retried), its repository followed first: its revision. */
  private moving<T>(dir: string, move: Command, outcome: (revision: string) => T): Procedure<T> {
    const follow = this.follow(dir);
    const rev = this.revision(dir);
    return {
      commands: [...follow.commands, move, rev],
      run: async (run) => {
        await follow.run(run);
        await withRetries(() => run(move), this.opts.retries);
        return outcome((await run(rev)).stdout.trim());
      },
    };
  }

  isDirty(dir: string): Procedure<boolean> {
    const status = this.svn(['status', '-q', '--', dir], 'check for local changes');
    return { commands: [status], run: async (run) => (await run(status)).stdout.trim() !== '' };
  }

  localCommits(): Procedure<number> {
    return { commands: [], run: async () => 0 }; // an svn commit goes to the server at once
  }

  discardChanges(dir: string): Procedure<void> {
    const revert = this.svn(['revert', '-R', '-q', '--', dir], 'discard local changes');
    return { commands: [revert], run: async (run) => void (await run(revert)) };
  }

  repair(dir: string): Procedure<void> {
    const cleanup = this.svn(['cleanup', '--', dir], 'clean up the working copy');
    return { commands: [cleanup], run: async (run) => void (await run(cleanup)) };
  }

  describeBuild(dir: string, ref: string, defaultRef: string): Procedure<BuildFacts> {
    const log = this.svn(['log', '--xml', '-l', '1', '--', dir], 'read the commit');
    // Commits since the branch was copied (the copy itself is not one).
    const ahead = this.svn(
      ['log', '--xml', '--stop-on-copy', '--', dir],
      'list the commits ahead',
      {
        when: `when ${ref} is a branch other than ${defaultRef}`,
      },
    );
    return {
      commands: [log, ahead],
      run: async (run) => {
        const facts: BuildFacts = {};
        const out = await run(log).catch(() => undefined);
        if (out) facts.commit = commitsOf(out.stdout)[0];
        if (ref === defaultRef) facts.ahead = 0;
        else if (ref.startsWith('branches/')) {
          const n = await run(ahead).catch(() => undefined);
          if (n) {
            // Newest first; the oldest is the copy that made the branch, not a change.
            const all = commitsOf(n.stdout).slice(0, -1);
            facts.ahead = all.length;
            facts.changes = all.slice(0, CHANGES_SHOWN);
          }
        }
        return facts;
      },
    };
  }

  forget(): Procedure<void> {
    return { commands: [], run: async () => undefined };
  }

  async remoteHeads(refs: string[]): Promise<Map<string, string | null | Error>> {
    // One `svn list` per parent folder: all of branches/ in one request and one
    // session (several URLs given to `svn info` would open a session each).
    const result = new Map<string, string | null | Error>();
    const byParent = new Map<string, string[]>();
    for (const ref of refs) {
      const parent = this.urlOf(ref)
        .replace(/\/+$/, '')
        .replace(/\/[^/]+$/, '');
      byParent.set(parent, [...(byParent.get(parent) ?? []), ref]);
    }
    await Promise.all(
      [...byParent].map(async ([parent, group]) => {
        try {
          const revisions = await this.listRevisions(parent);
          for (const ref of group) {
            const name = decodeURIComponent(
              this.urlOf(ref).replace(/\/+$/, '').split('/').at(-1) ?? '',
            );
            result.set(ref, revisions?.get(name) ?? null);
          }
        } catch (e) {
          for (const ref of group) result.set(ref, e as Error);
        }
      }),
    );
    return result;
  }

  /** The last-changed revision of each folder in `parent`; undefined when `parent` itself is gone. */
  private async listRevisions(parent: string): Promise<Map<string, string> | undefined> {
    const list = this.svn(['list', '--xml', '--', parent], 'ask the repository', {
      okExitCodes: [1],
    });
    const r = await withRetries(async () => {
      const res = await exec(list, this.opts.log);
      if (res.exitCode !== 0 && !NOT_THERE.test(res.stderr))
        throw this.why(
          new StepError({
            step: 'ask the repository',
            commandLine: `svn list --xml -- ${redact(parent)}`,
            outputTail: res.stderr.trim(),
            reason: 'exit status 1',
            ...(this.opts.log ? { logFile: this.opts.log } : {}),
          }),
          parent,
        );
      return res;
    }, this.opts.retries);
    if (r.exitCode !== 0) return undefined;
    const revisions = new Map<string, string>();
    const entry = /<entry\s+kind="dir">\s*<name>([^<]*)<\/name>\s*<commit\s+revision="(\d+)">/g;
    for (const m of r.stdout.matchAll(entry)) revisions.set(unescapeXml(m[1]!), m[2]!);
    return revisions;
  }

  async commitsBetween(_dir: string, from: string, to: string, ref: string): Promise<number> {
    if (Number(from) >= Number(to)) return 0;
    const r = await exec(
      this.svn(
        ['log', '-q', '-r', `${Number(from) + 1}:${to}`, '--', this.urlOf(ref)],
        'count commits',
      ),
      this.opts.log,
    );
    return r.stdout.split('\n').filter((l) => /^r\d+ /.test(l)).length;
  }
}

function unescapeXml(text: string): string {
  return text.replace(
    /&(lt|gt|quot|apos|amp);/g,
    (_, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e]!,
  );
}

/** The commits of `svn log --xml`, in its order (newest first). */
function commitsOf(xml: string): CommitInfo[] {
  return [...xml.matchAll(/<logentry[\s\S]*?<\/logentry>/g)].map(([entry]) => {
    const pick = (tag: string) =>
      unescapeXml(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(entry)?.[1] ?? '');
    return {
      subject: pick('msg').split('\n')[0] ?? '',
      author: pick('author'),
      date: pick('date'),
    };
  });
}
