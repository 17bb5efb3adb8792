import { copyFile, readFile, rename } from 'node:fs/promises';
import writeFileAtomic from 'write-file-atomic';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { carryOut, dryRun, finishJobs } from '../context/report.js';
import type { Step } from '../core/plan.js';
import { layout } from '../model/layout.js';
import { LOCKS, withLocks } from '../model/locks.js';
import { sitesFromFolders } from '../model/sites.js';
import { parseState, type State } from '../model/state.js';

/**
 * A damaged state.json (truncated by a full disk, emptied, edited by hand):
 * put back the last good copy (state.json.last-good), or rebuild it from what
 * each branch site's folder says of itself. The damaged file is kept beside.
 */
export async function repair(opts: GlobalOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out, g } = ctx;
  const file = layout.state(cfg.root);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  if (text !== undefined && parseState(text).state) {
    out.line(`${file} is fine: nothing to repair`);
    return { ok: true, repaired: 'nothing' };
  }
  const why = text === undefined ? 'it is missing' : parseState(text).problem;
  const kept = `${file}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const previous = await readFile(layout.stateBackup(cfg.root), 'utf8').catch(() => undefined);
  const good = previous !== undefined ? parseState(previous).state : undefined;
  let how: string;
  let step: Step;
  if (good) {
    how = `put back the last good copy (${Object.keys(good.branches).length} branch sites)`;
    step = {
      title: how,
      effects: [
        ...(text !== undefined ? [`rename ${file} to ${kept}`] : []),
        `copy ${layout.stateBackup(cfg.root)} to ${file}`,
      ],
      run: async () => {
        if (text !== undefined) await rename(file, kept);
        await copyFile(layout.stateBackup(cfg.root), file);
      },
    };
  } else {
    const sites = await sitesFromFolders(cfg.root);
    const state: State = {
      version: 1,
      branches: Object.fromEntries(sites.map((s) => [s.name, s])),
    };
    how = `rebuild it from the branch sites' folders (${sites.map((s) => s.name).join(', ') || 'none found'}); each builds again on its next update`;
    step = {
      title: how,
      effects: [
        ...(text !== undefined ? [`rename ${file} to ${kept}`] : []),
        `write ${file} (${sites.length} branch sites)`,
      ],
      run: async () => {
        if (text !== undefined) await rename(file, kept);
        await writeFileAtomic(file, JSON.stringify(state, null, 2) + '\n');
      },
    };
  }
  const plan = { command: 'repair', jobs: [{ name: 'state.json', steps: [step] }] };
  if (g.dryRun) return dryRun(ctx, plan);
  return withLocks(
    cfg.root,
    [LOCKS.state],
    { command: 'repair', waitSeconds: g.wait },
    async () => {
      const result = { ok: true, repaired: how, damaged: why };
      finishJobs(ctx, await carryOut(ctx, plan), 'repair', result);
      out.line(`${file} was damaged (${why}): ${how}`);
      return result;
    },
  );
}
