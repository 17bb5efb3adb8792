import { KarlstageError, StepError, UsageError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { commandLine, run, withRetries } from '../core/runner.js';
import {
  unreachable,
  type CommitInfo,
  type UpdateOutcome,
  type Vcs,
  type VcsOptions,
} from './vcs.js';

const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;
const URL = /^(svn|svn\+ssh|https?|file):\/\/\S+$/;

/** Subversion through the runner. Refs are trunk, branches/X, tags/X or a full URL. */
export class SvnVcs implements Vcs {
  readonly kind = 'svn' as const;
  constructor(private readonly opts: VcsOptions) {}

  private svn(args: string[], step: string, cwd?: string) {
    return run('svn', ['--non-interactive', ...args], {
      step,
      cwd,
      timeoutMs: this.opts.timeoutMs,
      log: this.opts.log,
    });
  }

  private net<T>(fn: () => Promise<T>): Promise<T> {
    return withRetries(fn, this.opts.retries);
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
    return URL.test(ref) ? ref : `${this.opts.url.replace(/\/+$/, '')}/${ref}`;
  }

  describeRef(ref: string): string {
    return redact(this.urlOf(ref));
  }

  async checkRef(ref: string): Promise<void> {
    if ((await unreachable(this.opts, () => this.remoteHead(ref))) === null)
      throw new UsageError(
        `ref "${ref}" does not exist: ${redact(this.urlOf(ref))} is not in the repository`,
      );
  }

  async checkout(ref: string, dest: string): Promise<string> {
    await this.net(() => this.svn(['checkout', '-q', '--', this.urlOf(ref), dest], 'check out'));
    return this.revision(dest);
  }

  async switchTo(dir: string, ref: string): Promise<string> {
    await this.net(() =>
      this.svn(['switch', '-q', '--ignore-ancestry', '--', this.urlOf(ref), dir], 'switch'),
    );
    return this.revision(dir);
  }

  async update(dir: string, ref: string): Promise<UpdateOutcome> {
    if ((await this.remoteHead(ref)) === null)
      throw new KarlstageError(
        `"${ref}" is gone upstream (${redact(this.urlOf(ref))} was deleted): switch this branch site to another ref`,
      );
    await this.net(() => this.svn(['update', '-q', '--', dir], 'update'));
    return { revision: await this.revision(dir) };
  }

  async revision(dir: string): Promise<string> {
    const { stdout } = await this.svn(
      ['info', '--show-item', 'last-changed-revision', '--', dir],
      'read revision',
    );
    return stdout.trim();
  }

  async remoteHead(ref: string): Promise<string | null> {
    const head = (await this.remoteHeads([ref])).get(ref);
    if (head instanceof Error) throw head;
    return head ?? null;
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
    const r = await this.net(() =>
      run('svn', ['--non-interactive', 'list', '--xml', '--', parent], {
        step: 'ask the repository',
        timeoutMs: this.opts.timeoutMs,
        log: this.opts.log,
        okExitCodes: [1],
        env: { LC_ALL: 'C' },
      }).then((res) => {
        if (res.exitCode !== 0 && !/W160013|W170000|E200009/.test(res.stderr))
          throw new StepError(
            'ask the repository',
            commandLine('svn', ['list', '--xml', '--', parent]),
            res.stderr.trim(),
            'exit status 1',
            this.opts.log,
          );
        return res;
      }),
    );
    if (r.exitCode !== 0) return undefined;
    const revisions = new Map<string, string>();
    const entry = /<entry\s+kind="dir">\s*<name>([^<]*)<\/name>\s*<commit\s+revision="(\d+)">/g;
    for (const m of r.stdout.matchAll(entry)) revisions.set(unescapeXml(m[1]!), m[2]!);
    return revisions;
  }

  async commitsBetween(_dir: string, from: string, to: string, ref?: string): Promise<number> {
    if (Number(from) >= Number(to)) return 0;
    const url = ref ? this.urlOf(ref) : _dir;
    const { stdout } = await this.svn(
      ['log', '-q', '-r', `${Number(from) + 1}:${to}`, '--', url],
      'count commits',
    );
    return stdout.split('\n').filter((l) => /^r\d+ /.test(l)).length;
  }

  async describeCommit(dir: string): Promise<CommitInfo> {
    const { stdout } = await this.svn(['log', '--xml', '-l', '1', '--', dir], 'read the commit');
    const pick = (tag: string) =>
      unescapeXml(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`).exec(stdout)?.[1] ?? '');
    return {
      subject: pick('msg').split('\n')[0] ?? '',
      author: pick('author'),
      date: pick('date'),
    };
  }

  async aheadOf(dir: string, ref: string, defaultRef: string): Promise<number | undefined> {
    if (ref === defaultRef) return 0;
    if (!ref.startsWith('branches/')) return undefined;
    // Commits since the branch was copied (the copy itself is not one).
    const { stdout } = await this.svn(
      ['log', '-q', '--stop-on-copy', '--', dir],
      'count commits ahead',
    );
    const n = stdout.split('\n').filter((l) => /^r\d+ /.test(l)).length;
    return Math.max(0, n - 1);
  }

  async isDirty(dir: string): Promise<boolean> {
    const { stdout } = await this.svn(['status', '-q', '--', dir], 'check for local changes');
    return stdout.trim() !== '';
  }

  async discardChanges(dir: string): Promise<void> {
    await this.svn(['revert', '-R', '-q', '--', dir], 'discard local changes');
  }

  async repair(dir: string): Promise<void> {
    await this.svn(['cleanup', '--', dir], 'clean up the working copy');
  }

  preview(action: 'checkout' | 'switch' | 'update', ref: string, dir: string): string[] {
    const url = redact(this.urlOf(ref));
    if (action === 'checkout') return [`$ svn --non-interactive checkout -q -- ${url} ${dir}`];
    if (action === 'switch')
      return [`$ svn --non-interactive switch -q --ignore-ancestry -- ${url} ${dir}`];
    return [`$ svn --non-interactive update -q -- ${dir}`];
  }
}

function unescapeXml(text: string): string {
  return text.replace(
    /&(lt|gt|quot|apos|amp);/g,
    (_, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e]!,
  );
}
