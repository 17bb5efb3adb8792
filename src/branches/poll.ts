import type { Config } from '../config/config.js';
import { layout } from '../model/layout.js';
import type { BranchState, PollRecord } from '../model/state.js';
import { whyFailed } from '../vcs/failures.js';
import { sourceVcs } from '../vcs/open.js';
import { siteVcs } from './source.js';

/**
 * Ask upstream for the head of every branch site's ref without fetching code
 * or touching a working copy, and compare it with the revision last built.
 * All refs go in one request per repository server, so polling 8 branch sites
 * costs about what polling one does.
 */
export async function pollBranches(
  cfg: Config,
  sites: BranchState[],
): Promise<Map<string, PollRecord>> {
  const vcs = await siteVcs(cfg);
  const heads = await vcs.remoteHeads([...new Set(sites.map((s) => s.ref))]);
  const at = new Date().toISOString();
  const records = new Map<string, PollRecord>();
  await Promise.all(
    sites.map(async (site) => {
      const head = heads.get(site.ref);
      if (head instanceof Error || head === undefined) {
        records.set(site.name, {
          at,
          remote: site.poll?.remote ?? null,
          behind: false,
          error: head ? whyFailed(head) : 'no answer',
        });
        return;
      }
      if (head === null) {
        records.set(site.name, { at, remote: null, behind: false });
        return;
      }
      const built = site.built?.ref === site.ref ? site.built.revision : undefined;
      const behind = head !== built;
      const record: PollRecord = { at, remote: head, behind };
      if (behind && built) record.newCommits = await countNew(cfg, site, built, head);
      records.set(site.name, record);
    }),
  );
  return records;
}

/** svn: one `svn log` of the range; git: only when the commits are already local (no fetch). */
async function countNew(
  cfg: Config,
  site: BranchState,
  from: string,
  to: string,
): Promise<number | undefined> {
  const vcs = await sourceVcs(cfg, { retries: 0, store: layout.gitStore(cfg.root) });
  const dir = `${layout.branch(cfg.root, site.name)}/${cfg.source.path}`;
  try {
    return await vcs.commitsBetween(dir, from, to, site.ref);
  } catch {
    return undefined;
  }
}
