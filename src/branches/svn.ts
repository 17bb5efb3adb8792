import { KarlstageError, StepError, UsageError } from '../core/errors.js';
import { redact } from '../core/redact.js';
import { run, withRetries } from '../core/runner.js';
import { unreachable, type UpdateOutcome, type Vcs, type VcsOptions } from './vcs.js';

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
    const result = new Map<string, string | null | Error>();
    const byServer = new Map<string, string[]>();
    for (const ref of refs) {
      const u = new globalThis.URL(this.urlOf(ref));
      const server = `${u.protocol}//${u.host}`; // (origin is "null" for svn: and file: URLs)
      byServer.set(server, [...(byServer.get(server) ?? []), ref]);
    }
    await Promise.all(
      [...byServer.values()].map(async (group) => {
        try {
          for (const [ref, head] of await this.infoMany(group)) result.set(ref, head);
        } catch (e) {
          for (const ref of group) result.set(ref, e as Error);
        }
      }),
    );
    return result;
  }

  /** One `svn info` for several URLs of one server: "REV  URL" per line; a missing one is a W170000 warning. */
  private async infoMany(refs: string[]): Promise<Map<string, string | null>> {
    const urls = refs.map((r) => this.urlOf(r));
    const r = await this.net(() =>
      run(
        'svn',
        ['--non-interactive', 'info', '--show-item', 'last-changed-revision', '--', ...urls],
        {
          step: 'ask the repository',
          timeoutMs: this.opts.timeoutMs,
          log: this.opts.log,
          okExitCodes: [1],
          env: { LC_ALL: 'C' },
        },
      ).then((res) => {
        const unexpected = res.stderr
          .split('\n')
          .filter((l) => l.trim() && !/W170000|E200009|^\s*$/.test(l));
        if (res.exitCode !== 0 && unexpected.length)
          throw new StepError(
            'ask the repository',
            `svn info ${urls.join(' ')}`,
            res.stderr.trim(),
            'exit status 1',
            this.opts.log,
          );
        return res;
      }),
    );
    const heads = new Map<string, string | null>();
    const found = new Map<string, string>();
    for (const line of r.stdout.split('\n')) {
      const m =
        /^(\d+)\s+(\S+)$/.exec(line.trim()) ?? (urls.length === 1 && /^(\d+)$/.exec(line.trim()));
      if (m) found.set(m[2] ?? urls[0]!, m[1]!);
    }
    refs.forEach((ref, i) => heads.set(ref, found.get(urls[i]!) ?? null));
    return heads;
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
