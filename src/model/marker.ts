import { existsSync, lstatSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { writeFileAtomic } from '../core/files.js';
import { layout } from './layout.js';
import type { BranchState, RunRecord } from './records.js';

/**
 * What a branch site says of itself, in its own folder (.karlstage-site.json):
 * state.json can be rebuilt from it ("karlstage repair"). Beside who the site
 * is (slot, port, ref), it keeps what must survive a rebuild: its hold and its
 * dates, so that a repaired site is neither synced over while someone tests on
 * it nor taken for stale. Written whenever one of these changes in state.json.
 */
export interface SiteMarker extends Pick<
  BranchState,
  'name' | 'slot' | 'port' | 'vcs' | 'ref' | 'refKind' | 'createdAt' | 'hold' | 'lastUpdate'
> {
  /** 2: the hold and the dates are kept here. Absent (older markers): only createdAt is known. */
  version?: 2;
  /** Whether its app should run (a site stopped by the operator stays stopped after a repair). */
  run?: Pick<RunRecord, 'want' | 'since' | 'by'>;
}

/** What a marker keeps of a site's record, field for field. */
const KEPT = [
  'name',
  'slot',
  'port',
  'vcs',
  'ref',
  'refKind',
  'createdAt',
  'hold',
  'lastUpdate',
] as const satisfies readonly (keyof BranchState)[];

/** These fields of a record, those that are set. */
function kept<T extends Partial<Record<(typeof KEPT)[number], unknown>>>(from: T) {
  return Object.fromEntries(KEPT.filter((k) => from[k] !== undefined).map((k) => [k, from[k]]));
}

/** A site's marker as its record in state.json makes it (extra fields of the record left out). */
export function markerOf(b: Omit<SiteMarker, 'version'>): SiteMarker {
  return {
    version: 2,
    ...(kept(b) as Omit<SiteMarker, 'version' | 'run'>),
    ...(b.run
      ? { run: { want: b.run.want, since: b.run.since, ...(b.run.by ? { by: b.run.by } : {}) } }
      : {}),
  };
}

/** The site's record as its marker tells it (repair); a marker of no version kept no dates. */
export function siteOf(m: SiteMarker): BranchState {
  return {
    ...(kept(m) as Omit<BranchState, 'run'>),
    ...(m.run ? { run: m.run } : {}),
    ...(m.version === 2 ? {} : { datesUnknown: true as const }),
  };
}

const markerText = (b: Omit<SiteMarker, 'version'>) => JSON.stringify(markerOf(b), null, 2) + '\n';

export async function writeMarker(root: string, b: Omit<SiteMarker, 'version'>): Promise<void> {
  // Only into the site's own folder: never one removed by hand (it is not made again), never
  // through a link put in its place.
  const dir = layout.branch(root, b.name);
  if (!lstatSync(dir, { throwIfNoEntry: false })?.isDirectory()) return;
  await writeFileAtomic(layout.siteMarker(root, b.name), markerText(b), { noFollow: true });
}

/**
 * The markers a change of state.json makes out of date: `before` is each
 * site's marker text before the change (markerTexts), `after` the records now.
 */
export const markerTexts = (sites: Omit<SiteMarker, 'version'>[]): Map<string, string> =>
  new Map(sites.map((b) => [b.name, markerText(b)]));

export async function writeChangedMarkers(
  root: string,
  before: Map<string, string>,
  after: Omit<SiteMarker, 'version'>[],
): Promise<void> {
  for (const b of after) if (before.get(b.name) !== markerText(b)) await writeMarker(root, b);
}

/** A marker's text as karlstage wrote it for the folder `name`; undefined if it is not one. */
export function parseMarker(name: string, text: string): SiteMarker | undefined {
  let m: SiteMarker;
  try {
    m = JSON.parse(text) as SiteMarker;
  } catch {
    return undefined;
  }
  if (
    typeof m !== 'object' ||
    m === null ||
    m.name !== name ||
    !Number.isInteger(m.slot) ||
    !Number.isInteger(m.port) ||
    (m.vcs !== 'git' && m.vcs !== 'svn') ||
    typeof m.ref !== 'string' ||
    typeof m.createdAt !== 'string'
  )
    return undefined;
  return m;
}

/** Every folder of the staging root with a marker, and the marker (undefined when it is damaged). */
export async function readMarkers(root: string): Promise<{ name: string; marker?: SiteMarker }[]> {
  const found = [];
  for (const entry of await readdir(root, { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory() || entry.name.startsWith('.')) continue;
    const text = await readFile(layout.siteMarker(root, entry.name), 'utf8').catch(() => undefined);
    if (text === undefined) continue;
    found.push({ name: entry.name, marker: parseMarker(entry.name, text) });
  }
  return found;
}

/**
 * What says that a staging root whose state.json is missing has had one: its
 * last good copy, or branch site folders with markers. Undefined for a fresh
 * root. Asked only when state.json is missing: one stat and one read of the
 * root folder (and of the markers found).
 */
export async function traces(
  root: string,
): Promise<{ lastGood: boolean; sites: string[] } | undefined> {
  const lastGood = existsSync(layout.stateBackup(root));
  const sites = (await readMarkers(root)).map((m) => m.name).sort();
  return lastGood || sites.length ? { lastGood, sites } : undefined;
}
