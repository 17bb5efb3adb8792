import {
  acquireLock as acquireIn,
  withLocks as withLocksIn,
  type LockOptions,
  type LockRoom,
  type Release,
} from '../core/lock.js';
import { layout } from './layout.js';

/**
 * The locks of a staging root. One per branch site (its changes run one at a
 * time), and a few for what is shared: the layout (slots and ports are handed
 * out under it), state.json, the nightly sync, the routes, the mail setup and
 * the git object store. Branch locks are "branch-NAME", so no branch name can
 * collide with the others.
 */
export const LOCKS = {
  layout: 'layout',
  state: 'state',
  sync: 'sync',
  routes: 'routes',
  mail: 'mail',
  access: 'access',
  store: 'git-store',
  /** Held by the wake service for as long as it runs: watch knows it is up, a second one exits. */
  wake: 'wake-service',
} as const;

export const branchLock = (branch: string) => `branch-${branch}`;

export const lockRoom = (root: string): LockRoom => ({
  locks: layout.locks(root),
  runs: layout.runs(root),
});

export function acquireLock(root: string, name: string, opts: LockOptions): Promise<Release> {
  return acquireIn(lockRoom(root), name, opts);
}

/** Run fn while holding every named lock of this staging root. */
export function withLocks<T>(
  root: string,
  names: string[],
  opts: LockOptions,
  fn: () => Promise<T>,
): Promise<T> {
  return withLocksIn(lockRoom(root), names, opts, fn);
}

export type { Release };
