import type { Config } from '../config/config.js';
import type { Step } from '../core/plan.js';
import { layout } from '../model/layout.js';
import { LOCKS, withLocks } from '../model/locks.js';
import { sourceVcs } from '../vcs/open.js';
import type { Vcs } from '../vcs/vcs.js';

/** The source repository as branch sites use it: git sites share the object store under .karlstage/. */
export const siteVcs = (cfg: Config, log?: string): Promise<Vcs> =>
  sourceVcs(cfg, { log, store: layout.gitStore(cfg.root) });

/**
 * The step that fetches the shared object store (git), once per run and under
 * the store's lock (two runs must not fetch into it at once); none for svn.
 */
export function storeStep(cfg: Config, vcs: Vcs, command: string): Step | undefined {
  const fetch = vcs.prepare();
  if (!fetch) return undefined;
  return {
    title: 'fetch into the shared object store',
    commands: fetch.commands,
    effects: fetch.effects,
    run: (ctx) =>
      withLocks(cfg.root, [LOCKS.store], { command, waitSeconds: 600 }, () => fetch.run(ctx.exec)),
  };
}
