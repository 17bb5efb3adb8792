import type { Config } from '../config/config.js';
import type { Step } from '../core/plan.js';
import { layout } from '../model/layout.js';
import { LOCKS, withLocks } from '../model/locks.js';
import { readState } from '../model/state.js';
import { sourceVcs } from '../vcs/open.js';
import type { RefKind, StoreSite, Vcs } from '../vcs/vcs.js';

/** The source repository as branch sites use it: git sites share the object store under .karlstage/. */
export const siteVcs = (cfg: Config, log?: string): Promise<Vcs> =>
  sourceVcs(cfg, { log, store: layout.gitStore(cfg.root) });

/** Every git branch site as the store knows it: read when the store step runs, under its lock. */
async function storeSites(cfg: Config): Promise<StoreSite[]> {
  const state = await readState(cfg.root);
  return Object.values(state.branches)
    .filter((b) => b.vcs === 'git')
    .map((b) => ({
      name: b.name,
      dir: `${layout.branch(cfg.root, b.name)}/${cfg.source.path}`,
      revision: b.revision,
    }));
}

export interface StoreStepOptions {
  /** Some site moves in this run: fetch from upstream. Otherwise only check, and repair. */
  fetch: boolean;
  /** The refs the run's sites will check out. */
  targets?: { ref: string; kind: RefKind }[];
}

/**
 * The step that makes the shared object store (git) ready before any site of
 * the run uses it: checked (one cheap git command, without the lock while it
 * is well), repaired when it is missing or damaged, fetched once per run when
 * sites move; the repair and the fetch under the store's lock (two runs must
 * not work on it at once). None for svn.
 */
export function storeStep(
  cfg: Config,
  vcs: Vcs,
  command: string,
  opts: StoreStepOptions,
): Step | undefined {
  const store = vcs.prepare({
    fetch: opts.fetch,
    sites: () => storeSites(cfg),
    targets: opts.targets ?? [],
  });
  if (!store) return undefined;
  return {
    title: opts.fetch ? 'fetch into the shared object store' : 'check the shared object store',
    commands: store.commands,
    effects: store.effects,
    run: async (ctx) => {
      if (!opts.fetch && (await store.healthy(ctx.exec))) return;
      const notes = await withLocks(cfg.root, [LOCKS.store], { command, waitSeconds: 600 }, () =>
        store.run(ctx.exec),
      );
      for (const note of notes) ctx.warn(note);
    },
  };
}
