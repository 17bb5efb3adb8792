import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { Config } from '../config/config.js';
import { layout } from '../model/layout.js';
import { publicBase, upstreamState, type UpstreamState } from '../model/views.js';
import type { BranchState } from '../model/state.js';
import { renderTemplate } from '../core/templates.js';
import { readUsers, scopeFolder, scopeKey } from './access.js';
import { shortRevision, type BranchView } from '../model/views.js';

/**
 * The site list the customer reads: which branch sites exist, what code and
 * data each runs, and where to click. Public by design: it carries no DSN,
 * password, server path or error text (those can hold paths), only what is
 * listed in templates/sites.schema.json.
 */
export const SITE_LIST_VERSION = 1;

export interface SiteListEntry {
  name: string;
  url: string;
  ref: string;
  defaultRef: string;
  revision: string | null;
  commit: { subject: string; author: string; date: string } | null;
  aheadOfDefault: number | null;
  lastUpdate: { at: string; result: 'ok' | 'failed' } | null;
  builtAt: string | null;
  data: { asOf: string | null; sourceDump: string | null };
  customers: { name: string; url: string; mailDomain: string | null }[];
  upstream: {
    state: UpstreamState;
    newCommits: number | null;
    checkedAt: string | null;
  };
  heldOutOfSync: boolean;
}

export interface SiteList {
  version: typeof SITE_LIST_VERSION;
  generatedAt: string;
  host: string;
  /** https://HOST/ (with the port when it is not 443). */
  url: string;
  branches: SiteListEntry[];
}

export function collectSiteList(cfg: Config, views: BranchView[]): SiteList {
  return {
    version: SITE_LIST_VERSION,
    generatedAt: new Date().toISOString(),
    host: cfg.staging.host,
    url: `${publicBase(cfg)}/`,
    branches: views.map(({ site, customers, mail, url }) => ({
      name: site.name,
      url,
      ref: site.ref,
      defaultRef: cfg.source.default,
      revision: site.built ? shortRevision(site.built.revision, site.vcs) : null,
      commit: site.built?.commit ?? null,
      aheadOfDefault: site.built?.ahead ?? null,
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
      })),
      upstream: {
        state: upstreamState(site.poll),
        newCommits: site.poll?.newCommits ?? null,
        checkedAt: site.poll?.at ?? null,
      },
      heldOutOfSync: Boolean(site.hold),
    })),
  };
}

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
    lines.push(
      `  code:     ${b.ref} at ${b.revision ?? 'not built yet'}${b.commit ? ` "${b.commit.subject}" (${b.commit.author}, ${when(b.commit.date)})` : ''}`,
    );
    if (b.aheadOfDefault !== null && b.ref !== b.defaultRef)
      lines.push(`            ${b.aheadOfDefault} commit(s) ahead of ${b.defaultRef}`);
    lines.push(
      `  updated:  ${when(b.lastUpdate?.at ?? b.builtAt) ?? 'never'}${b.lastUpdate ? ` (${b.lastUpdate.result})` : ''}; upstream: ${b.upstream.state}${b.upstream.newCommits ? ` (${b.upstream.newCommits} new)` : ''}`,
    );
    lines.push(
      `  data:     ${b.data.asOf ? `as of ${when(b.data.asOf)}` : 'no production copy yet'}${b.heldOutOfSync ? ' (held out of the nightly sync)' : ''}`,
    );
    for (const c of b.customers)
      lines.push(
        `  ${c.name}: ${c.url}${c.mailDomain ? `  (staged mail: *@${c.mailDomain})` : ''}`,
      );
    lines.push('');
  }
  return lines.join('\n');
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
        mailTo: b.customers
          .filter((c) => c.mailDomain)
          .map((c) => ({ name: c.name, domain: c.mailDomain })),
        updateFailed: b.lastUpdate?.result === 'failed',
        upstreamText: `${b.upstream.state}${b.upstream.newCommits ? ` (${b.upstream.newCommits} new)` : ''}`,
        upstreamClass: b.upstream.state.replace(/ /g, '-'),
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
  return {
    ...list,
    branches: list.branches
      .map((b) => ({ ...b, customers: b.customers.filter((c) => customers.includes(c.name)) }))
      .filter((b) => b.customers.length > 0),
  };
}

async function writeFolder(dir: string, list: SiteList): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFileAtomic(join(dir, SITE_FILES.html), await renderHtml(list), { mode: 0o644 });
  await writeFileAtomic(join(dir, SITE_FILES.json), JSON.stringify(list, null, 2) + '\n', {
    mode: 0o644,
  });
  await writeFileAtomic(join(dir, SITE_FILES.text), renderText(list), { mode: 0o644 });
  // The friendly page nginx shows when a branch site's app is down (see templates/nginx.conf).
  await writeFileAtomic(join(dir, 'down.html'), await renderTemplate('down.html', {}), {
    mode: 0o644,
  });
}

/**
 * Regenerate .karlstage/sites/ (each file atomically): all/ lists everything,
 * and each scope in use (users limited to some customers) gets scope-A_B/ with
 * only its customers. The routes serve the folder of the logged-in user's scope at /.
 */
export async function refreshSiteList(cfg: Config, views: BranchView[]): Promise<SiteList> {
  const list = collectSiteList(cfg, views);
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
