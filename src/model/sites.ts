import { existsSync } from 'node:fs';
import { KarlstageError, UsageError } from '../core/errors.js';
import { BrokenSiteError, readInstances, type Instance } from '../instances/instances.js';
import { layout } from './layout.js';
import { readMarkers, siteOf, writeMarker } from './marker.js';
import { readState, type BranchState } from './state.js';

/** The one way to say a branch site does not exist. */
export const noSuchSite = (branch: string) =>
  new UsageError(`there is no branch site "${branch}": "karlstage status" lists them`);

/** A branch site's record, or the error that says there is none. */
export async function knownSite(root: string, branch: string): Promise<BranchState> {
  const b = (await readState(root)).branches[branch];
  if (!b) throw noSuchSite(branch);
  return b;
}

/**
 * A branch site's customers, or why it is broken: its folder removed by hand, or
 * its instances.ini missing, refused (src/instances/) or left with no customer.
 * One cause, one message: status, doctor, update, switch and sync all say this.
 */
export async function siteCustomers(root: string, branch: string): Promise<Instance[]> {
  const dir = layout.branch(root, branch);
  if (!existsSync(dir))
    throw new BrokenSiteError(
      `${dir} is missing (removed by hand?): "karlstage destroy ${branch} --yes" forgets the site, then create it again`,
      'site folder missing',
    );
  return readInstances(layout.instancesIni(root, branch));
}

/**
 * What keeps a recorded branch site from being worked on (see siteCustomers).
 * Checked per site, so one broken site fails alone and the others go on.
 */
export async function siteProblem(
  root: string,
  branch: string,
): Promise<KarlstageError | undefined> {
  return siteCustomers(root, branch).then(
    () => undefined,
    (e: unknown) => (e instanceof KarlstageError ? e : new KarlstageError(String(e))),
  );
}

/** A source checkout removed by hand (the site's folder is there): the next update checks it out again. */
export function sourceProblem(root: string, branch: string, path: string): string | undefined {
  const dir = layout.branch(root, branch);
  const source = `${dir}/${path}`;
  if (!existsSync(dir) || existsSync(source)) return undefined;
  return `${source} is missing (removed by hand?): "karlstage update ${branch}" checks it out again`;
}

/** Write a site's marker now (state.json's updates write it whenever what it keeps changes). */
export async function writeSiteMarker(root: string, b: BranchState): Promise<void> {
  await writeMarker(root, b);
}

/** Commits made in a working copy that are not upstream: an update would drop them. */
export const localCommits = (dir: string, n: number) =>
  new UsageError(
    `${dir} has ${n} local commit${n > 1 ? 's' : ''} that ${n > 1 ? 'are' : 'is'} not upstream: push ${n > 1 ? 'them' : 'it'}, or pass --force to drop ${n > 1 ? 'them' : 'it'}`,
  );

/** Local changes in a working copy: the same refusal for switch and update (exit 2, nothing changed). */
export const localChanges = (dir: string) =>
  new UsageError(
    `${dir} has local changes: commit or revert them, or pass --force to discard them`,
  );

/**
 * The branch sites as their folders tell them (each folder's .karlstage-site.json):
 * the state rebuilt when state.json and its last good copy are both damaged, or
 * the sites a state.json has lost. Each keeps its hold and its dates; a marker
 * older than that knows only when the site was made, and such a site is never
 * taken for stale until its next update. What was built is not known from a
 * folder, so each site's next update builds it again. Damaged markers are
 * left out, and named.
 */
export async function sitesFromFolders(
  root: string,
): Promise<{ sites: BranchState[]; damaged: string[] }> {
  const sites: BranchState[] = [];
  const damaged: string[] = [];
  for (const { name, marker: m } of await readMarkers(root)) {
    if (!m) {
      damaged.push(name);
      continue;
    }
    sites.push(siteOf(m));
  }
  return { sites: sites.sort((a, b) => a.slot - b.slot), damaged: damaged.sort() };
}
