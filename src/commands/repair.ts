import { readFile, rename } from 'node:fs/promises';
import { writeFileAtomic } from '../core/files.js';
import { commandContext, type GlobalOptions } from '../context/context.js';
import { carryOut, dryRun, finishJobs } from '../context/report.js';
import type { Step } from '../core/plan.js';
import { layout } from '../model/layout.js';
import { LOCKS, withLocks } from '../model/locks.js';
import { sitesFromFolders } from '../model/sites.js';
import { parseState, type BranchState, type State } from '../model/state.js';

/**
 * A damaged or missing state.json (truncated by a full disk, emptied, edited
 * or deleted by hand): put back the last good copy (state.json.last-good), or
 * rebuild it from what each branch site's folder says of itself; either way,
 * a site whose folder has a marker but that the state lacks is added from its
 * marker (with its hold and its dates), so no site is left without its routes.
 * The damaged file is kept beside. A state.json that reads well and lacks no
 * site is left alone.
 */
export async function repair(opts: GlobalOptions) {
  const ctx = await commandContext(opts);
  const { cfg, out } = ctx;
  const file = layout.state(cfg.root);
  const text = await readFile(file, 'utf8').catch(() => undefined);
  const current = text !== undefined ? parseState(text) : undefined;
  const previous = await readFile(layout.stateBackup(cfg.root), 'utf8').catch(() => undefined);
  const good = previous !== undefined ? parseState(previous).state : undefined;
  const folders = await sitesFromFolders(cfg.root);
  for (const name of folders.damaged)
    out.warn(`${layout.siteMarker(cfg.root, name)} is damaged: ${name} is left out`);

  if (current?.state || (!current && !good && folders.sites.length === 0)) {
    const base = current?.state ?? { version: 1, branches: {} };
    const { added, skipped } = adopt(base, folders.sites);
    for (const s of skipped) out.warn(s);
    if (added.length === 0) {
      out.line(
        current
          ? `${file} is fine: nothing to repair`
          : `${file} is not there yet, and no branch site either: nothing to repair (a new staging root)`,
      );
      return { ok: true, repaired: 'nothing' };
    }
    const how = `add ${added.join(', ')} from ${added.length > 1 ? 'their folders' : 'its folder'} (the state had lost ${added.length > 1 ? 'them' : 'it'}); each builds again on its next update`;
    return carry(ctx, {
      how,
      why: `${added.length} branch site(s) missing from it`,
      step: {
        title: how,
        effects: [`write ${file} (${Object.keys(base.branches).length} branch sites)`],
        run: () => writeFileAtomic(file, JSON.stringify(base, null, 2) + '\n'),
      },
    });
  }

  const why = current?.problem ?? 'it is missing';
  const kept = `${file}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  const state: State = good ?? { version: 1, branches: {} };
  const had = Object.keys(state.branches).length;
  const { added, skipped } = adopt(state, folders.sites);
  for (const s of skipped) out.warn(s);
  const how = good
    ? `put back the last good copy (${had} branch sites)${added.length ? `, and add ${added.join(', ')} from their folders` : ''}`
    : `rebuild it from the branch sites' folders (${added.join(', ') || 'none found'}); each builds again on its next update`;
  const step: Step = {
    title: how,
    effects: [
      ...(text !== undefined ? [`rename ${file} to ${kept}`] : []),
      `write ${file} (${Object.keys(state.branches).length} branch sites)`,
    ],
    run: async () => {
      if (text !== undefined) await rename(file, kept);
      await writeFileAtomic(file, JSON.stringify(state, null, 2) + '\n');
    },
  };
  return carry(ctx, { how, why, step });
}

const plan = (step: Step) => ({ command: 'repair', jobs: [{ name: 'state.json', steps: [step] }] });

async function carry(
  ctx: Awaited<ReturnType<typeof commandContext>>,
  r: { how: string; why: string; step: Step },
) {
  const { cfg, out, options } = ctx;
  if (options.dryRun) return dryRun(ctx, plan(r.step));
  return withLocks(
    cfg.root,
    [LOCKS.state],
    { command: 'repair', waitSeconds: options.wait },
    async () => {
      const result = { ok: true, repaired: r.how, damaged: r.why };
      finishJobs(ctx, await carryOut(ctx, plan(r.step)), 'repair', result);
      out.line(`${layout.state(cfg.root)} was damaged (${r.why}): ${r.how}`);
      return result;
    },
  );
}

/**
 * Add to `state` the sites of `found` it lacks; one whose slot or port another
 * site has is left out (two apps cannot share a port), and said so.
 */
function adopt(state: State, found: BranchState[]): { added: string[]; skipped: string[] } {
  const added: string[] = [];
  const skipped: string[] = [];
  for (const site of found) {
    if (state.branches[site.name]) continue;
    const clash = Object.values(state.branches).find(
      (b) => b.slot === site.slot || b.port === site.port,
    );
    if (clash) {
      skipped.push(
        `${site.name}'s folder says slot ${site.slot} (port ${site.port}), which ${clash.name} has: ${site.name} is left out; move its folder away, or destroy ${clash.name} and run repair again`,
      );
      continue;
    }
    state.branches[site.name] = site;
    added.push(site.name);
  }
  return { added, skipped };
}
