import type { Config } from '../config/config.js';
import { layout } from './layout.js';
import type { BranchState, State } from './state.js';
import { describePoll, upstreamState } from './upstream.js';
import { BrokenSiteError } from '../instances/instances.js';
import { siteCustomers, sourceProblem } from './sites.js';
import { readChecked } from './checked.js';
import { unprocessed } from './maildir.js';
import { join } from 'node:path';

/**
 * What is known of each branch site, read from state.json and each site's
 * instances.ini only (no VCS, no network). `status` and the site list are two
 * views of it.
 */
export interface BranchView {
  site: BranchState;
  customers: string[];
  /** Why the site is broken (one line, the same everywhere), and a few words of it for a column. */
  customersProblem?: string;
  customersShort?: string;
  /** Its source checkout removed by hand: the next update checks it out again. */
  sourceProblem?: string;
  /** Customers whose staged mail goes to this branch site. */
  mail: string[];
  /** Per mail customer: messages waiting in its Maildir's new/ for mail-in (absent: no Maildir yet). */
  mailWaiting: Record<string, number>;
  upstream: string;
  url: string;
  /** Why the site is stale ("karlstage prune" lists it), if it is. */
  stale?: string;
  /** When its upstream was last asked (a poll that found nothing new writes only this). */
  checkedAt?: string;
}

/**
 * Stale: its ref is gone upstream, or nothing has happened to it (created,
 * updated, held) for [staging] stale_after days. A site whose dates are not
 * known (rebuilt by repair from an old marker, not updated since) is never
 * stale by age: prune must not remove a site updated minutes before the repair.
 */
export function staleness(cfg: Config, site: BranchState, now = Date.now()): string | undefined {
  // Gone, as the last poll saw it: a poll that failed (network, login) says nothing of that.
  if (upstreamState(site.poll) === 'gone upstream') return `${site.ref} is gone upstream`;
  if (site.datesUnknown && !site.lastUpdate) return undefined;
  const last = [site.lastUpdate?.at, site.built?.at, site.createdAt, site.hold?.since]
    .filter((x): x is string => Boolean(x))
    .sort()
    .at(-1);
  if (!last) return undefined;
  const days = Math.floor((now - new Date(last).getTime()) / 86_400_000);
  return days >= cfg.staging.staleAfter
    ? `not updated for ${days} days (stale after ${cfg.staging.staleAfter})`
    : undefined;
}

export async function branchViews(cfg: Config, state: State): Promise<BranchView[]> {
  const views: BranchView[] = [];
  const checked = await readChecked(cfg.root);
  for (const site of Object.values(state.branches).sort((a, b) => a.slot - b.slot)) {
    let customers: string[] = [];
    let customersProblem: string | undefined;
    let customersShort: string | undefined;
    try {
      customers = (await siteCustomers(cfg.root, site.name)).map((i) => i.name);
    } catch (e) {
      customersProblem = (e as Error).message;
      customersShort = e instanceof BrokenSiteError ? e.short : 'broken';
    }
    const source = sourceProblem(cfg.root, site.name, cfg.source.path);
    const mail = cfg.customers
      .filter((c) => c.mailBranch === site.name && customers.includes(c.name))
      .map((c) => c.name);
    const mailWaiting: Record<string, number> = {};
    for (const c of mail) {
      const n = await unprocessed(
        join(layout.branch(cfg.root, site.name), cfg.deployment.maildir, c),
      );
      if (n !== undefined) mailWaiting[c] = n;
    }
    views.push({
      site,
      customers,
      ...(customersProblem ? { customersProblem, customersShort } : {}),
      ...(source ? { sourceProblem: source } : {}),
      mail,
      mailWaiting,
      upstream: describePoll(site.poll),
      ...((s) => (s ? { stale: s } : {}))(staleness(cfg, site)),
      url: `${publicBase(cfg)}/${site.name}/`,
      ...((at) => (at ? { checkedAt: at } : {}))(
        [site.poll?.at, checked[site.name]].filter(Boolean).sort().at(-1),
      ),
    });
  }
  return views;
}

/** https://HOST, with the port when it is not 443. */
export function publicBase(cfg: Config): string {
  return `https://${cfg.staging.host}${cfg.staging.httpsPort === 443 ? '' : `:${cfg.staging.httpsPort}`}`;
}
