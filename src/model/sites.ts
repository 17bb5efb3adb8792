import { existsSync } from 'node:fs';
import { KarlstageError, UsageError } from '../core/errors.js';
import { readInstances } from './instances.js';
import { layout } from './layout.js';
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
 * What keeps a recorded branch site from being worked on: its folder removed
 * by hand, or its instances.ini missing or malformed. Checked per site, so
 * one broken site fails alone and the others go on.
 */
export async function siteProblem(
  root: string,
  branch: string,
): Promise<KarlstageError | undefined> {
  const dir = layout.branch(root, branch);
  if (!existsSync(dir))
    return new KarlstageError(
      `${dir} is missing (removed by hand?): "karlstage destroy ${branch} --yes" forgets the site, then create it again`,
    );
  return readInstances(layout.instancesIni(root, branch)).then(
    () => undefined,
    (e: unknown) => (e instanceof KarlstageError ? e : new KarlstageError(String(e))),
  );
}

/** Local changes in a working copy: the same refusal for switch and update (exit 2, nothing changed). */
export const localChanges = (dir: string) =>
  new UsageError(
    `${dir} has local changes: commit or revert them, or pass --force to discard them`,
  );
