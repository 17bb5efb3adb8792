import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { later, type Arg, type Command } from '../core/command.js';
import { StepError } from '../core/errors.js';
import { withRetries } from '../core/retries.js';
import type { Exec, RefKind, StoreProcedure, StoreSite, StoreUse } from './vcs.js';

/**
 * The bare repository every git branch site takes its objects from
 * (.karlstage/git/source.git), kept whole: checked before every run that uses
 * it, repaired in place, fetched again, or rebuilt from the sites themselves.
 *
 * What keeps a site safe: a site holds no reference the store may drop. Its
 * HEAD, its branch and its one remote-tracking ref are the commit the store
 * keeps under refs/karlstage/keep/SITE; it has no tags, no other
 * remote-tracking refs and no reflogs (GitVcs makes it so). And nothing prunes
 * the store behind karlstage's back: `gc.auto = 0` there (and in every site),
 * so git's auto-gc (started by any fetch, detached, outside every lock) never
 * runs; karlstage runs the store's gc itself, under the store's lock, after it
 * has read what every site references.
 */
export type GitCommand = (args: Arg[], step: string, more?: Partial<Command>) => Command;

export const keepRef = (site: string) => `refs/karlstage/keep/${site}`;
const KEEP = 'refs/karlstage/keep/';
/** What a site references beyond its keep ref (a person's branch, a dropped local commit), held at gc. */
const HELD = 'refs/karlstage/held/';
/** A site's HEAD, fetched from the site when the store lost it (removed once the keep ref is back). */
const RESCUE = 'refs/karlstage/rescue/';

// git's own thresholds for `gc --auto` (gc.autoPackLimit, gc.auto): the store's gc is ours to run.
const PACK_LIMIT = 50;
const LOOSE_LIMIT = 6700;

/** HEAD as git writes it: a symbolic ref or a commit id. */
const HEAD_TEXT = /^(ref: refs\/\S+|[0-9a-f]{40}|[0-9a-f]{64})\n?$/;
const PACKED_REF = /^[0-9a-f]{40} refs\/\S+$/;
const PACKED_PEEL = /^\^[0-9a-f]{40}$/;
/** git's words for an object it cannot find or read. */
// (Not "Could not read from remote repository": that is the network, or the URL.)
const OBJECT_TROUBLE =
  /missing object|bad object|bad tree|missing (blob|tree|commit)|did not send all necessary objects|unable to read [0-9a-f]{7,}\b|is corrupt|could not read [0-9a-f]{7,}\b|invalid object/i;

/** What a ref names in the store: a branch or tag by its full name; a commit id as it is. */
export function storeSpec(ref: string, kind: RefKind): string {
  return kind === 'branch' ? `refs/heads/${ref}` : kind === 'tag' ? `refs/tags/${ref}` : ref;
}

/**
 * Without running anything (poll's nothing-new path): the store is there, git would open it,
 * and it has a keep ref for each of these sites (a loose ref file, or a line of packed-refs).
 */
export function storeLooksWhole(store: string, sites: string[] = []): boolean {
  try {
    if (!['config', 'objects', 'refs'].every((f) => existsSync(join(store, f)))) return false;
    if (!HEAD_TEXT.test(readFileSync(join(store, 'HEAD'), 'utf8'))) return false;
    const loose = sites.filter((s) => !existsSync(join(store, keepRef(s))));
    if (!loose.length) return true;
    const packed = readFileSync(join(store, 'packed-refs'), 'utf8');
    return loose.every((s) => packed.includes(` ${keepRef(s)}\n`));
  } catch {
    return false;
  }
}

/** The store's config leaves gc to karlstage (`gc.auto = 0` under [gc], as `git config` writes it). */
function gcIsOurs(store: string): boolean {
  try {
    const text = readFileSync(join(store, 'config'), 'utf8');
    return /^\[gc\]\n(?:\t.*\n)*?\tauto = 0$/m.test(text);
  } catch {
    return false;
  }
}

/** Enough packs or loose objects piled up for a gc (git's gc --auto estimate: objects/17 times 256). */
function gcDue(store: string): boolean {
  const count = (dir: string, test: (f: string) => boolean) => {
    try {
      return readdirSync(dir).filter(test).length;
    } catch {
      return 0;
    }
  };
  const packs = count(join(store, 'objects', 'pack'), (f) => f.endsWith('.pack'));
  const loose = count(join(store, 'objects', '17'), (f) => /^[0-9a-f]{38}$/.test(f)) * 256;
  return packs >= PACK_LIMIT || loose >= LOOSE_LIMIT;
}

const stamp = () => new Date().toISOString().replace(/[:.]/g, '-');
const fatal = (text: string): string =>
  text
    .split('\n')
    .map((l) => l.trim())
    .find((l) => /^(fatal|error):/.test(l)) ??
  text.trim().split('\n')[0] ??
  '';
const lines = (text: string) => text.split('\n').filter((l) => l.trim());
/** "SHA REFNAME" lines. */
const refsOf = (text: string) =>
  lines(text).map((l) => {
    const [sha = '', name = ''] = l.split(' ');
    return { sha, name };
  });

type Health =
  | { kind: 'ok'; keeps: Map<string, string> }
  | { kind: 'missing' }
  /** git will not open it: a damaged HEAD, config, refs/ or packed-refs. */
  | { kind: 'refused'; why: string }
  /** A kept commit is missing. */
  | { kind: 'objects'; why: string };

interface Commands {
  health: Command;
  readConfig: Command;
  init: Command;
  configure: Command;
  listRefs: Command;
  listKeeps: Command;
  present: Command;
  updateRefs: Command;
  fetch: Command;
  refetch: Command;
  targets?: Command;
  walk: Command;
  trees: Command;
  rescue: Command;
  siteRefs: Command;
  held: Command;
  repack: Command;
  expire: Command;
  prune: Command;
  packRefs: Command;
}

/** One run's view of the store: what it found, and what it learnt of each site. */
interface Visit {
  notes: string[];
  sites: StoreSite[];
  /** The store was made anew or repaired: it must be fetched and checked whatever the run. */
  repaired: boolean;
  fetched: boolean;
  refetched: boolean;
}

export class GitStore {
  /** Working copies whose checked-out commit is gone for good, and that commit (the last check's). */
  readonly lost = new Map<string, string>();
  private rescueFrom = '';
  private rescueInto = '';
  private siteGit = '';
  private expireAt = '2.weeks.ago';
  /** The refs of the run's targets (branches and tags) as the store names them. */
  private wanted = new Set<string>();

  constructor(
    private readonly o: {
      store: string;
      url: string;
      retries: number;
      git: GitCommand;
      fetchSpecs: string[];
    },
  ) {}

  /** A git command on the store itself: --git-dir, so a damaged store is never mistaken for a folder above it. */
  private g(args: Arg[], step: string, more: Partial<Command> = {}): Command {
    return this.o.git([`--git-dir=${this.o.store}`, ...args], step, more);
  }

  private commands(use: StoreUse): Commands {
    const s = this.o.store;
    const refused = {
      when: 'when git refuses the store (a damaged HEAD, config, refs/ or packed-refs)',
    };
    const objects = { when: 'when objects are missing from the store' };
    const perSite = {
      when: "when a site's commit is missing from the store, for each such site (its own objects)",
    };
    const gc = {
      when: `when ${PACK_LIMIT} packs or ${LOOSE_LIMIT} loose objects have piled up (after a fetch)`,
    };
    const refs = [
      ...new Set(
        use.targets.filter((t) => t.kind !== 'commit').map((t) => storeSpec(t.ref, t.kind)),
      ),
    ];
    this.wanted = new Set(refs);
    const fetchArgs = ['-q', '--prune', '--force', '--', this.o.url, ...this.o.fetchSpecs];
    return {
      health: this.g(
        ['for-each-ref', '--format=%(objectname) %(objecttype) %(refname)', KEEP],
        'check the shared object store',
        { okExitCodes: [128], when: 'when the store exists' },
      ),
      readConfig: this.o.git(
        ['config', '--file', join(s, 'config'), '--list'],
        "read the store's config",
        { okExitCodes: [1, 128], ...refused },
      ),
      init: this.o.git(['init', '-q', '--bare', '--', s], 'make the shared object store', {
        when: 'when the store is missing or damaged (kept objects stay)',
      }),
      configure: this.g(['config', 'gc.auto', '0'], 'leave gc to karlstage', {
        when: "when the store's config lacks gc.auto = 0",
      }),
      listRefs: this.g(['for-each-ref', '--format=%(objectname) %(refname)'], 'list the refs', {
        when: 'when the store was repaired or objects are missing',
      }),
      listKeeps: this.g(
        ['for-each-ref', '--format=%(objectname) %(refname)', KEEP],
        'list the keep refs',
        { when: 'when the store was repaired or fetched again' },
      ),
      present: this.g(['cat-file', '--batch-check'], 'look objects up', {
        when: 'when the store was repaired, objects are missing or a keep ref is missing',
      }),
      updateRefs: this.g(['update-ref', '--no-deref', '--stdin'], 'write the refs', {
        when: 'when a keep ref is missing, or refs name missing objects, or at gc',
      }),
      fetch: this.g(['fetch', ...fetchArgs], 'fetch into the shared object store', {
        ...(use.fetch
          ? {}
          : { when: "when the store was made anew or repaired, or lacks a site's commit" }),
      }),
      refetch: this.g(['fetch', '--refetch', ...fetchArgs], 'fetch every object again', objects),
      ...(refs.length
        ? {
            targets: this.g(
              ['for-each-ref', '--format=%(objectname) %(refname)', ...refs],
              'find what the sites will check out',
              { when: 'after a fetch' },
            ),
          }
        : {}),
      walk: this.g(['rev-list', '--quiet', '--stdin'], 'check the history the sites need', {
        when: 'after a fetch or a repair',
      }),
      trees: this.g(
        ['rev-list', '--quiet', '--objects', '--no-walk', '--stdin'],
        'check the files the sites need',
        { when: 'after a fetch or a repair' },
      ),
      rescue: this.g(
        [
          'fetch',
          '-q',
          '--no-tags',
          '--no-write-fetch-head',
          '--',
          later('SITE', () => this.rescueFrom),
          later('REFSPEC', () => this.rescueInto),
        ],
        "fetch a site's commit from the site",
        perSite,
      ),
      siteRefs: this.o.git(
        ['--git-dir', later('SITE_GIT', () => this.siteGit), 'rev-parse', '--all', 'HEAD'],
        'read what a site references',
        { when: `${gc.when}, for each site` },
      ),
      held: this.g(['for-each-ref', '--format=%(refname)', HELD], 'list what gc held', gc),
      repack: this.g(['repack', '-A', '-d', '-q'], 'pack the store', gc),
      expire: this.g(
        ['config', '--default', '2.weeks.ago', '--get', 'gc.pruneExpire'],
        'read how long unreferenced objects stay',
        gc,
      ),
      prune: this.g(
        ['prune', later('EXPIRE', () => `--expire=${this.expireAt}`)],
        'prune what nothing references',
        gc,
      ),
      packRefs: this.g(['pack-refs', '--all', '--prune'], 'pack the refs', gc),
    };
  }

  /**
   * Check the store before a run uses it (cheap: one `for-each-ref` that reads each kept
   * commit), repair what is wrong under the store's lock (the caller holds it), fetch it when
   * sites move, and after a fetch make sure what the sites need is there: the history of every
   * kept and wanted commit, and the files of each. What cannot be put back is said.
   */
  procedure(use: StoreUse): StoreProcedure {
    const c = this.commands(use);
    const s = this.o.store;
    return {
      healthy: async (run) => {
        const sites = await use.sites();
        const health = await this.health(run, c);
        return (
          health.kind === 'ok' &&
          gcIsOurs(s) &&
          sites.every((site) => !site.revision || health.keeps.has(site.name))
        );
      },
      commands: [
        c.health,
        c.readConfig,
        c.init,
        c.configure,
        c.listRefs,
        c.present,
        c.updateRefs,
        c.fetch,
        c.refetch,
        c.listKeeps,
        c.rescue,
        ...(c.targets ? [c.targets] : []),
        c.walk,
        c.trees,
        c.siteRefs,
        { ...c.present, when: `${c.held.when}: which of them the store has` },
        c.held,
        { ...c.updateRefs, when: `${c.held.when}: hold what the sites reference` },
        c.repack,
        c.expire,
        c.prune,
        c.packRefs,
      ],
      effects: [
        `move a damaged HEAD, config or packed-refs of ${s} aside (NAME.damaged-DATE; the valid lines of packed-refs stay) [when git refuses the store]`,
        `move ${s} aside (${s}.damaged-DATE) [when git refuses it even then]`,
      ],
      run: (run) => this.carryOut(run, use, c),
    };
  }

  private async carryOut(run: Exec, use: StoreUse, c: Commands): Promise<string[]> {
    const v: Visit = {
      notes: [],
      sites: await use.sites(),
      repaired: false,
      fetched: false,
      refetched: false,
    };
    this.lost.clear();
    let health = await this.health(run, c);
    if (health.kind === 'missing') {
      if (v.sites.length)
        v.notes.push(
          `${this.o.store} was missing: made anew and fetched; each site's commit put back`,
        );
      await run(c.init);
      v.repaired = true;
    } else if (health.kind === 'refused') {
      await this.repairInPlace(run, c, v, health.why);
      health = await this.health(run, c);
      if (health.kind === 'refused' || health.kind === 'missing') {
        const aside = `${this.o.store}.damaged-${stamp()}`;
        await rename(this.o.store, aside);
        await run(c.init);
        v.notes.push(
          `git still refused the store (${health.kind === 'refused' ? health.why : 'gone'}): moved it aside to ${aside} and made a new one`,
        );
      }
    }
    if (!gcIsOurs(this.o.store)) await run(c.configure);
    if (health.kind === 'objects') {
      v.notes.push(`objects were missing from the store (${health.why}): fetched again`);
      await this.dropDangling(run, c);
      await this.fetch(run, c, v, true);
    } else if (use.fetch || v.repaired) await this.fetch(run, c, v, false);

    // The keep refs as they are now (a store just made has none).
    const keeps =
      health.kind === 'ok' && !v.repaired && !v.refetched
        ? health.keeps
        : health.kind === 'missing'
          ? new Map<string, string>()
          : new Map(
              refsOf((await run(c.listKeeps)).stdout).map((r) => [
                r.name.slice(KEEP.length),
                r.sha,
              ]),
            );
    await this.restoreKeeps(run, c, v, keeps);
    if (use.fetch || v.repaired || v.fetched) await this.verify(run, c, v, keeps);
    if (use.fetch && gcDue(this.o.store)) await this.gc(run, c, v);
    return v.notes;
  }

  private async health(run: Exec, c: Commands): Promise<Health> {
    if (!existsSync(this.o.store)) return { kind: 'missing' };
    const r = await run(c.health);
    if (r.exitCode === 0)
      return {
        kind: 'ok',
        keeps: new Map(
          lines(r.stdout).map((l) => {
            const [sha = '', , name = ''] = l.split(' ');
            return [name.slice(KEEP.length), sha];
          }),
        ),
      };
    const why = fatal(r.stderr || r.all);
    return OBJECT_TROUBLE.test(why) ? { kind: 'objects', why } : { kind: 'refused', why };
  }

  /**
   * Put right what git refuses to open, keeping every object: a HEAD or config that is not
   * git's is moved aside, packed-refs keeps its valid lines, and `git init` makes again what
   * is missing (HEAD, config, refs/). The refs that are lost come back with the fetch (heads,
   * tags) and from state.json (each site's keep ref).
   */
  private async repairInPlace(run: Exec, c: Commands, v: Visit, why: string): Promise<void> {
    const s = this.o.store;
    const when = stamp();
    const aside = async (name: string) => {
      await rename(join(s, name), join(s, `${name}.damaged-${when}`));
      return `${name} (kept as ${name}.damaged-${when})`;
    };
    const fixed: string[] = [];
    const head = join(s, 'HEAD');
    if (existsSync(head) && !HEAD_TEXT.test(await readFile(head, 'utf8')))
      fixed.push(await aside('HEAD'));
    else if (!existsSync(head)) fixed.push('HEAD (missing)');
    if (existsSync(join(s, 'config'))) {
      if ((await run(c.readConfig)).exitCode !== 0) fixed.push(await aside('config'));
    } else fixed.push('config (missing)');
    const packed = join(s, 'packed-refs');
    if (existsSync(packed)) {
      const text = await readFile(packed, 'utf8');
      const good = validPackedRefs(text);
      if (good !== text) {
        fixed.push(await aside('packed-refs'));
        if (good) await writeFile(packed, good);
      }
    }
    if (!existsSync(join(s, 'refs'))) fixed.push('refs/ (missing)');
    if (!existsSync(join(s, 'objects')))
      fixed.push('objects/ (missing: everything is fetched again)');
    await run(c.init);
    v.repaired = true;
    v.notes.push(
      `git refused the store (${why}); repaired in place: ${fixed.join(', ') || 'made again what git needs'}`,
    );
  }

  private async fetch(run: Exec, c: Commands, v: Visit, refetch: boolean): Promise<void> {
    try {
      await withRetries(() => run(refetch ? c.refetch : c.fetch), this.o.retries);
      v.fetched = true;
      if (refetch) v.refetched = true;
    } catch (e) {
      // A ref to an object the store lost stops every fetch ("bad object", "did not send all
      // necessary objects"): drop such refs and fetch every object again, once.
      if (refetch || !(e instanceof StepError) || !OBJECT_TROUBLE.test(e.outputTail)) throw e;
      v.notes.push(`objects were missing from the store (${fatal(e.outputTail)}): fetched again`);
      await this.dropDangling(run, c);
      await withRetries(() => run(c.refetch), this.o.retries);
      v.fetched = v.refetched = true;
    }
  }

  /** Which of these objects the store lacks (one `cat-file --batch-check`). */
  private async missing(run: Exec, c: Commands, ids: string[]): Promise<Set<string>> {
    const unique = [...new Set(ids.filter(Boolean))];
    if (!unique.length) return new Set();
    const r = await run({ ...c.present, input: () => unique.join('\n') + '\n' });
    return new Set(
      lines(r.stdout)
        .filter((l) => / missing$/.test(l))
        .map((l) => l.split(' ')[0]!),
    );
  }

  /** Refs naming objects the store lost stop every fetch: drop them (keep refs come back below). */
  private async dropDangling(run: Exec, c: Commands): Promise<void> {
    const refs = refsOf((await run(c.listRefs)).stdout);
    const gone = await this.missing(
      run,
      c,
      refs.map((r) => r.sha),
    );
    const dropped = refs.filter((r) => gone.has(r.sha));
    if (dropped.length)
      await run({
        ...c.updateRefs,
        input: () => dropped.map((r) => `delete ${r.name}\n`).join(''),
      });
  }

  /**
   * Every site's keep ref, at the commit state.json says it has checked out: put back when
   * it is missing (a rebuilt store, refs/ or packed-refs lost). A commit the store lacks is
   * fetched from the site itself; one that cannot be found anywhere is lost, and said.
   */
  private async restoreKeeps(
    run: Exec,
    c: Commands,
    v: Visit,
    keeps: Map<string, string>,
  ): Promise<void> {
    const wanting = v.sites.filter((s) => s.revision && !keeps.has(s.name));
    if (!wanting.length) return;
    const revisions = wanting.map((s) => s.revision!);
    let gone = await this.missing(run, c, revisions);
    // Not fetched yet in this run (a store whose first fetch failed, say): upstream first.
    if (gone.size && !v.fetched) {
      await this.fetch(run, c, v, false);
      gone = await this.missing(run, c, revisions);
    }
    const rescued: string[] = [];
    for (const site of wanting.filter((s) => gone.has(s.revision!)))
      if (await this.rescue(run, c, site)) rescued.push(site.name);
    if (rescued.length) {
      gone = await this.missing(run, c, revisions);
      v.notes.push(`fetched the commit of ${rescued.join(', ')} from the site's own objects`);
    }
    const back = wanting.filter((s) => !gone.has(s.revision!));
    for (const site of wanting.filter((s) => gone.has(s.revision!))) this.loseSite(v, site);
    const input = [
      ...back.map((s) => `update ${keepRef(s.name)} ${s.revision}\n`),
      ...rescued.map((n) => `delete ${RESCUE}${n}\n`),
    ].join('');
    if (input) await run({ ...c.updateRefs, input: () => input });
    for (const s of back) keeps.set(s.name, s.revision!);
  }

  /** `git fetch` from a site: whatever of its HEAD it has itself (a store rebuilt from the sites). */
  private async rescue(run: Exec, c: Commands, site: StoreSite): Promise<boolean> {
    this.rescueFrom = site.dir;
    this.rescueInto = `+HEAD:${RESCUE}${site.name}`;
    return run(c.rescue).then(
      () => true,
      () => false,
    );
  }

  private loseSite(v: Visit, site: StoreSite): void {
    this.lost.set(site.dir, site.revision ?? '');
    v.notes.push(
      `${site.name}: its commit ${site.revision?.slice(0, 10)} is gone for good (not upstream, not in the store, not in the site): "karlstage update ${site.name} --force" or "switch ${site.name} REF --force" moves it onto a commit that exists`,
    );
  }

  /**
   * After a fetch or a repair: the history of every kept and wanted commit is there, and the
   * files of each (what a checkout, `git status` and counting commits read). Missing objects
   * are fetched again from upstream, then from the sites; a site whose commit is still broken
   * is lost, and its keep ref dropped (a ref to a broken commit would stop every fetch).
   */
  private async verify(
    run: Exec,
    c: Commands,
    v: Visit,
    keeps: Map<string, string>,
  ): Promise<void> {
    const tips = async () => [
      ...v.sites.filter((s) => keeps.has(s.name)).map((s) => keepRef(s.name)),
      // Branches and tags the sites will check out (a commit id is its site's keep ref, or
      // looked up by create itself).
      ...(c.targets ? refsOf((await run(c.targets)).stdout).map((r) => r.name) : []).filter((n) =>
        this.wanted.has(n),
      ),
    ];
    const whole = async (names: string[]) => {
      if (!names.length) return true;
      const input = () => names.join('\n') + '\n';
      try {
        await run({ ...c.walk, input });
        await run({ ...c.trees, input });
        return true;
      } catch (e) {
        if (e instanceof StepError && OBJECT_TROUBLE.test(e.outputTail)) return false;
        throw e;
      }
    };
    if (await whole(await tips())) return;
    if (!v.refetched) {
      v.notes.push('objects the sites need were missing from the store: fetched again');
      await this.fetch(run, c, v, true);
      if (await whole(await tips())) return;
    }
    // Still broken: which sites? Each is fetched from, and lost if that does not help.
    const input: string[] = [];
    for (const site of v.sites.filter((s) => keeps.has(s.name))) {
      if (await whole([keepRef(site.name)])) continue;
      if ((await this.rescue(run, c, site)) && (await whole([keepRef(site.name)]))) {
        v.notes.push(`fetched what ${site.name} needs from the site's own objects`);
        input.push(`delete ${RESCUE}${site.name}\n`);
      } else {
        this.loseSite(v, { ...site, revision: keeps.get(site.name) });
        keeps.delete(site.name);
        input.push(`delete ${keepRef(site.name)}\n`, `delete ${RESCUE}${site.name}\n`);
      }
    }
    if (input.length) await run({ ...c.updateRefs, input: () => input.join('') });
  }

  /**
   * The store's gc, which knows every site: whatever a site references (its refs and HEAD,
   * say a branch someone made there) is held by a ref before anything is pruned; then pack,
   * and prune what nothing references after gc.pruneExpire (git's default, two weeks). A site
   * that cannot be read puts the gc off: nothing is pruned on a guess.
   */
  private async gc(run: Exec, c: Commands, v: Visit): Promise<void> {
    const referenced: string[] = [];
    for (const site of v.sites) {
      this.siteGit = join(site.dir, '.git');
      try {
        referenced.push(...lines((await run(c.siteRefs)).stdout).map((l) => l.trim()));
      } catch {
        v.notes.push(`gc of the store put off: the refs of ${site.name} could not be read`);
        return;
      }
    }
    const gone = await this.missing(run, c, referenced);
    const want = new Set(referenced.filter((id) => /^[0-9a-f]{40,64}$/.test(id) && !gone.has(id)));
    const had = new Set(lines((await run(c.held)).stdout).map((n) => n.slice(HELD.length)));
    const input = [
      ...[...had].filter((id) => !want.has(id)).map((id) => `delete ${HELD}${id}\n`),
      ...[...want].filter((id) => !had.has(id)).map((id) => `create ${HELD}${id} ${id}\n`),
    ].join('');
    if (input) await run({ ...c.updateRefs, input: () => input });
    await run(c.repack);
    this.expireAt = (await run(c.expire)).stdout.trim() || '2.weeks.ago';
    await run(c.prune);
    await run(c.packRefs);
  }
}

/** packed-refs with only the lines git writes (a peeled line only after its own ref line). */
export function validPackedRefs(text: string): string {
  const out: string[] = [];
  let lastWasRef = false;
  for (const line of text.split('\n')) {
    if (out.length === 0 && line.startsWith('# pack-refs with:')) {
      out.push(line);
      lastWasRef = false;
    } else if (PACKED_REF.test(line)) {
      out.push(line);
      lastWasRef = true;
    } else if (PACKED_PEEL.test(line) && lastWasRef) {
      out.push(line);
      lastWasRef = false;
    } else lastWasRef = false;
  }
  return out.length ? out.join('\n') + '\n' : '';
}
