import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import type { Config } from '../config/config.js';
import { layout } from '../model/layout.js';
import { publicBase } from '../model/views.js';
import type { BranchState } from '../model/state.js';
import { renderTemplate } from '../core/templates.js';
import { redact } from '../core/redact.js';
import { readUsers, scopeFolder, scopeKey } from './access.js';
import { shortRevision, upstreamState, type UpstreamState } from '../model/upstream.js';
import type { BranchView } from '../model/views.js';
import { siteRuns, stateWords, type SiteRun, type SiteState } from '../model/site-state.js';

/**
 * The site list the customer reads: which branch sites exist, what code and
 * data each runs, and where to click. Public by design: it carries no DSN,
 * password, server path or error text (those can hold paths), only what is
 * listed in templates/sites.schema.json.
 */
export const SITE_LIST_VERSION = 2;

type Commit = { subject: string; author: string; date: string };

export interface SiteListEntry {
  name: string;
  url: string;
  ref: string;
  defaultRef: string;
  revision: string | null;
  commit: Commit | null;
  aheadOfDefault: number | null;
  /** What changed: the newest commits the default ref has not (at most 20), and how many more. */
  changes: Commit[];
  moreChanges: number;
  /** What needs a look, most important first. */
  problems: string[];
  lastUpdate: { at: string; result: 'ok' | 'failed' } | null;
  builtAt: string | null;
  data: { asOf: string | null; sourceDump: string | null };
  customers: {
    name: string;
    url: string;
    mailDomain: string | null;
    /** Staged mail-in waiting in its Maildir for mail-in (as the list was made); null: no Maildir. */
    mailWaiting: number | null;
    data: {
      asOf: string | null;
      checkedPatterns: number | null;
      lastSync: { at: string; result: 'ok' | 'failed'; problem: string | null } | null;
    };
    /** Does this branch's migrate work on the customer's production data? */
    migrate: {
      result: 'ok' | 'failed';
      dataOf: string | null;
      durationMs: number;
      problem: string | null;
    } | null;
  }[];
  upstream: {
    state: UpstreamState;
    newCommits: number | null;
    checkedAt: string | null;
  };
  heldOutOfSync: boolean;
  /** Why the site is stale (it may be removed), if it is. */
  stale: string | null;
  /** Whether its app runs, as asked of its port when the list was made. */
  state: { name: SiteState; since: string | null; text: string; wakeSeconds: number | null };
}

export interface SiteList {
  version: typeof SITE_LIST_VERSION;
  generatedAt: string;
  host: string;
  /** https://HOST/ (with the port when it is not 443). */
  url: string;
  branches: SiteListEntry[];
}

const UNKNOWN: SiteRun = { state: 'down', since: null };

export function collectSiteList(
  cfg: Config,
  views: BranchView[],
  runs: Map<string, SiteRun> = new Map(),
  now = new Date(),
): SiteList {
  return {
    version: SITE_LIST_VERSION,
    generatedAt: now.toISOString(),
    host: cfg.staging.host,
    url: `${publicBase(cfg)}/`,
    branches: sortByProblems(
      views
        .map(({ site, customers, mail, mailWaiting, url, stale, checkedAt }) => ({
          name: site.name,
          url,
          ref: site.ref,
          defaultRef: cfg.source.default,
          revision: site.built ? shortRevision(site.built.revision, site.vcs) : null,
          commit: site.built?.commit ?? null,
          aheadOfDefault: site.built?.ahead ?? null,
          changes: site.ref === cfg.source.default ? [] : (site.built?.changes ?? []),
          moreChanges:
            site.ref === cfg.source.default
              ? 0
              : Math.max(0, (site.built?.ahead ?? 0) - (site.built?.changes?.length ?? 0)),
          problems: [] as string[], // from the entry itself, below (and again per scope)
          lastUpdate: site.lastUpdate
            ? { at: site.lastUpdate.at, result: site.lastUpdate.result }
            : null,
          builtAt: site.built?.at ?? null,
          data: dataOf(site, customers),
          customers: customers.map((name) => ({
            name,
            url: `${url}${name}/`,
            mailDomain:
              mail.includes(name) && cfg.staging.mailDomain
                ? `${name}.${cfg.staging.mailDomain}`
                : null,
            mailWaiting: mailWaiting[name] ?? null,
            ...customerData(site, name),
          })),
          upstream: {
            state: upstreamState(site.poll),
            newCommits: site.poll?.newCommits ?? null,
            checkedAt: checkedAt ?? null,
          },
          heldOutOfSync: Boolean(site.hold),
          stale: stale ?? null,
          state: ((run: SiteRun) => ({
            name: run.state,
            since: run.since,
            text: stateWords(run, when),
            wakeSeconds: run.wakeSeconds ?? null,
          }))(runs.get(site.name) ?? UNKNOWN),
        }))
        .map(withProblems),
    ),
  };
}

/** One line for the public page: passwords masked, paths cut to their last part. */
export function publicProblem(text: string | undefined): string | null {
  if (!text) return null;
  const line = redact(text).split('\n')[0] ?? '';
  // Any absolute path, wherever it starts ("psql:/srv/x.sql:12", "[/srv/…]", "file:///…"): its last part only.
  return line.replace(/\/(?:[^\s/'"()[\],:;`]+\/)+([^\s/'"()[\],:;`]*)/g, '…/$1').slice(0, 300);
}

function customerData(site: BranchState, name: string) {
  const d = site.data?.[name];
  return {
    data: {
      asOf: d?.asOf ?? null,
      checkedPatterns: d?.checkedPatterns ?? null,
      lastSync: d?.lastSync
        ? {
            at: d.lastSync.at,
            result: d.lastSync.result,
            problem: publicProblem(d.lastSync.error),
          }
        : null,
    },
    migrate: d?.migrate
      ? {
          result: d.migrate.result,
          dataOf: d.migrate.dataOf,
          durationMs: d.migrate.durationMs,
          problem: publicProblem(d.migrate.error),
        }
      : null,
  };
}

/** What needs a look on this site, most important first: the code failing on real data leads. */
function withProblems(b: SiteListEntry): SiteListEntry {
  const problems: string[] = [];
  for (const c of b.customers)
    if (c.migrate?.result === 'failed')
      problems.push(
        `migrate fails on ${c.name}'s production data${c.migrate.dataOf ? ` of ${when(c.migrate.dataOf)}` : ''}`,
      );
  for (const c of b.customers) {
    const s = c.data.lastSync;
    if (s?.result === 'failed' && c.migrate?.result !== 'failed')
      problems.push(
        `${c.name}'s data was not refreshed on ${when(s.at)}: ${s.problem ?? 'the sync failed'}`,
      );
  }
  if (b.lastUpdate?.result === 'failed')
    problems.push(`the last update failed (${when(b.lastUpdate.at)}): it runs the last good build`);
  if (b.upstream.state === 'gone upstream') problems.push(`${b.ref} is gone upstream`);
  if (b.state.name === 'down') problems.push(`the site is ${b.state.text}`);
  return { ...b, problems };
}

/** The sites that need a look first; otherwise in slot order. */
const sortByProblems = (branches: SiteListEntry[]) =>
  [...branches].sort((a, b) => Number(b.problems.length > 0) - Number(a.problems.length > 0));

/** Any ISO date (git gives +02:00 offsets, svn microseconds) as "YYYY-MM-DD HH:MM UTC". */
function when(iso: string | null): string | null {
  if (!iso) return null;
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toISOString().slice(0, 16).replace('T', ' ') + ' UTC';
}

/** The site's data is as old as its oldest customer copy; null until every customer has been synced. */
function dataOf(site: BranchState, customers: string[]): SiteListEntry['data'] {
  const records = customers.map((c) => site.data?.[c]);
  if (records.length === 0 || records.some((r) => !r?.asOf))
    return { asOf: null, sourceDump: null };
  const oldest = records.reduce((a, b) => (a!.asOf! <= b!.asOf! ? a : b))!;
  return {
    asOf: oldest.asOf,
    sourceDump: oldest.dump ? oldest.dump.replace(/^.*-(\d{8}T\d{6}Z)\.dump$/, '$1') : null,
  };
}

export function renderText(list: SiteList): string {
  const lines = [`Branch sites on ${list.url} (as of ${when(list.generatedAt)})`, ''];
  if (list.branches.length === 0) lines.push('No branch sites yet.');
  for (const b of list.branches) {
    lines.push(`${b.name}  ${b.url}`);
    lines.push(`  state:    ${b.state.text}`);
    lines.push(
      `  code:     ${b.ref} at ${b.revision ?? 'not built yet'}${b.commit ? ` "${b.commit.subject}" (${b.commit.author}, ${when(b.commit.date)})` : ''}`,
    );
    for (const p of b.problems) lines.push(`  PROBLEM:  ${p}`);
    if (b.stale) lines.push(`  stale:    ${b.stale}; it may be removed`);
    if (b.aheadOfDefault !== null && b.ref !== b.defaultRef)
      lines.push(`  changes:  ${b.aheadOfDefault} commit(s) not in ${b.defaultRef}`);
    for (const c of b.changes)
      lines.push(`            - ${c.subject} (${c.author}, ${when(c.date)})`);
    if (b.moreChanges) lines.push(`            … and ${b.moreChanges} more`);
    lines.push(
      `  updated:  ${when(b.lastUpdate?.at ?? b.builtAt) ?? 'never'}${b.lastUpdate ? ` (${b.lastUpdate.result})` : ''}; upstream: ${b.upstream.state}${b.upstream.newCommits ? ` (${b.upstream.newCommits} new)` : ''}`,
    );
    lines.push(
      `  data:     ${b.data.asOf ? `as of ${when(b.data.asOf)}` : 'no production copy yet'}${b.heldOutOfSync ? ' (held out of the nightly sync)' : ''}`,
    );
    for (const c of b.customers) {
      lines.push(
        `  ${c.name}: ${c.url}${c.mailDomain ? `  (staged mail: *@${c.mailDomain}${c.mailWaiting !== null ? `, ${c.mailWaiting} waiting` : ''})` : ''}`,
      );
      lines.push(`      ${customerLine(c)}`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** The customer's data and verdict, in words: "data as of …, sanitized, checked for 2 patterns; migrates on …: ok". */
function customerLine(c: SiteListEntry['customers'][number]): string {
  const data = c.data.asOf
    ? `data as of ${when(c.data.asOf)}${c.data.checkedPatterns ? `, sanitized, checked for ${c.data.checkedPatterns} pattern${c.data.checkedPatterns === 1 ? '' : 's'}` : ''}`
    : 'no production copy yet';
  const sync =
    c.data.lastSync?.result === 'failed'
      ? `; the last sync failed (${when(c.data.lastSync.at)}), so the data is older: ${c.data.lastSync.problem ?? ''}`
      : '';
  const m = c.migrate;
  const verdict = m
    ? `; migrates on production data${m.dataOf ? ` of ${when(m.dataOf)}` : ''}: ${m.result === 'ok' ? `ok (${(m.durationMs / 1000).toFixed(1)} s)` : `FAILED${m.problem ? `: ${m.problem}` : ''}`}`
    : '';
  return data + sync + verdict;
}

export async function renderHtml(list: SiteList): Promise<string> {
  return renderTemplate(
    'sites.html',
    {
      host: list.host,
      generated: when(list.generatedAt),
      empty: list.branches.length === 0,
      branches: list.branches.map((b) => ({
        ...b,
        revisionText: b.revision ?? 'not built yet',
        commitDate: b.commit ? when(b.commit.date) : null,
        ahead:
          b.aheadOfDefault !== null && b.ref !== b.defaultRef
            ? `${b.aheadOfDefault} commit${b.aheadOfDefault === 1 ? '' : 's'} ahead of ${b.defaultRef}`
            : null,
        updated: when(b.lastUpdate?.at ?? b.builtAt),
        changeList: b.changes.map((c) => ({ ...c, when: when(c.date) })),
        hasChanges: b.changes.length > 0,
        needsLook: b.problems.length > 0,
        customerRows: b.customers.map((c) => ({
          ...c,
          dataText: c.data.asOf ? `as of ${when(c.data.asOf)}` : 'no production copy yet',
          checked: c.data.checkedPatterns
            ? `sanitized, checked for ${c.data.checkedPatterns} pattern${c.data.checkedPatterns === 1 ? '' : 's'}`
            : null,
          // A failed migrate says it once, in its own column.
          syncFailed:
            c.data.lastSync?.result === 'failed' && c.migrate?.result !== 'failed'
              ? c.data.lastSync
              : null,
          syncWhen: when(c.data.lastSync?.at ?? null),
          migrateOk: c.migrate?.result === 'ok',
          migrateFailed: c.migrate?.result === 'failed',
          migrateOf: when(c.migrate?.dataOf ?? null),
          migrateSeconds: c.migrate ? (c.migrate.durationMs / 1000).toFixed(1) : null,
        })),
        mailTo: b.customers
          .filter((c) => c.mailDomain)
          .map((c) => ({
            name: c.name,
            domain: c.mailDomain,
            waiting: c.mailWaiting !== null ? `${c.mailWaiting} waiting` : null,
          })),
        updateFailed: b.lastUpdate?.result === 'failed',
        upstreamText: `${b.upstream.state}${b.upstream.newCommits ? ` (${b.upstream.newCommits} new)` : ''}`,
        upstreamClass: b.upstream.state.replace(/ /g, '-'),
        stateClass: b.state.name,
        dataText: b.data.asOf ? `as of ${when(b.data.asOf)}` : 'no production copy yet',
      })),
    },
    'html',
  );
}

export const SITE_FILES = { html: 'index.html', json: 'sites.json', text: 'sites.txt' } as const;

/** Regenerate .karlstage/sites/ (each file atomically); routes serve this folder at /. */
/** The list as one scope's users see it: only their customers, only the sites that serve one. */
export function listForScope(list: SiteList, customers: string[] | '*'): SiteList {
  if (customers === '*') return list;
  // A scope's users hear only of their customers: the problems are worked out again.
  return {
    ...list,
    branches: sortByProblems(
      list.branches
        .map((b) =>
          withProblems({ ...b, customers: b.customers.filter((c) => customers.includes(c.name)) }),
        )
        .filter((b) => b.customers.length > 0),
    ),
  };
}

/** The files of one site-list folder, by name, as written. */
export async function siteFiles(list: SiteList): Promise<Record<string, string>> {
  return {
    [SITE_FILES.html]: await renderHtml(list),
    [SITE_FILES.json]: JSON.stringify(list, null, 2) + '\n',
    [SITE_FILES.text]: renderText(list),
    // The friendly page nginx shows when a branch site's app is down (see templates/nginx.conf).
    'down.html': await renderTemplate('down.html', {}),
  };
}

async function writeFolder(dir: string, list: SiteList): Promise<void> {
  await mkdir(dir, { recursive: true });
  for (const [name, text] of Object.entries(await siteFiles(list)))
    await writeFileAtomic(join(dir, name), text, { mode: 0o644 });
}

/**
 * Regenerate .karlstage/sites/ (each file atomically): all/ lists everything,
 * and each scope in use (users limited to some customers) gets scope-A_B/ with
 * only its customers. The routes serve the folder of the logged-in user's scope at /.
 */
/** The site list as of now: each site's state asked of its port. */
export async function currentSiteList(cfg: Config, views: BranchView[]): Promise<SiteList> {
  const runs = await siteRuns(
    cfg,
    views.map((v) => v.site),
  );
  return collectSiteList(cfg, views, runs);
}

export async function refreshSiteList(cfg: Config, views: BranchView[]): Promise<SiteList> {
  const list = await currentSiteList(cfg, views);
  const dir = layout.sites(cfg.root);
  const scopes = new Map<string, string[] | '*'>([['*', '*']]);
  for (const u of await readUsers(cfg.root)) scopes.set(scopeKey(u), u.customers);
  for (const [key, customers] of scopes)
    await writeFolder(join(dir, scopeFolder(key)), listForScope(list, customers));
  // Folders of scopes no user has any more go (nobody may read them, and nobody should).
  const keep = new Set([...scopes.keys()].map(scopeFolder));
  for (const entry of await readdir(dir, { withFileTypes: true }))
    if (!keep.has(entry.name)) await rm(join(dir, entry.name), { recursive: true, force: true });
  return list;
}
