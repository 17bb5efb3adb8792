import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Config } from '../config/config.js';
import { KarlstageError } from '../core/errors.js';
import type { Plan, Step } from '../core/plan.js';
import { ProductionGuard } from '../db/guard.js';
import { stagingDatabaseName, withTwins } from '../db/names.js';
import { StagingServer } from '../db/staging.js';
import { readInstances } from '../instances/instances.js';
import { layout } from '../model/layout.js';
import { clearPending, markPending } from '../model/pending.js';
import { updateState, type BranchState } from '../model/state.js';
import { deploymentCommand, stepEnv } from '../model/steps.js';
import { siteVcs } from './source.js';

/**
 * Stop the app, drop its databases, remove the folder, forget the site. A site
 * whose stop fails is still removed; a killed destroy is finished by the next.
 */
export async function planDestroy(cfg: Config, b: BranchState): Promise<Plan> {
  const { root } = cfg;
  const dir = layout.branch(root, b.name);
  const steps: Step[] = [];
  const stop = deploymentCommand(cfg, 'stop', b.name, () => stepEnv(cfg, b, b.revision));
  if (stop && existsSync(dir))
    steps.push({
      title: 'stop',
      commands: [stop],
      run: async (ctx) => {
        await markPending(root, b.name, 'destroy');
        await ctx
          .exec(stop)
          .catch((e: Error) => ctx.say(`stop failed, removing anyway: ${e.message}`));
      },
    });
  if (cfg.staging.manageDatabases) {
    // The customers it serves; every configured one when its instances.ini is unreadable.
    const served = await readInstances(layout.instancesIni(root, b.name))
      .then((list) => list.map((i) => i.name))
      .catch(() => cfg.customers.map((c) => c.name));
    const guard = await ProductionGuard.establish(cfg, { memory: layout.productions(root) });
    for (const c of served) {
      const unknown = guard.unknown(c);
      if (unknown) throw new KarlstageError(`${unknown}: nothing was removed`);
    }
    const names = served.map((c) => stagingDatabaseName(b.name, c));
    await guard.refuseProduction(withTwins(names));
    const drops = new StagingServer(cfg, guard).dropWithTwins(names);
    steps.push({
      title: 'drop the staging databases',
      commands: drops,
      run: async (ctx) => {
        await markPending(root, b.name, 'destroy');
        await guard.remember();
        for (const d of drops) await ctx.exec(d);
      },
    });
  }
  const forget = (await siteVcs(cfg)).forget(b.name);
  steps.push(
    {
      title: `remove ${dir}`,
      commands: forget.commands,
      effects: [`remove ${dir}/`, `remove ${layout.activity(root, b.name)}`],
      run: async (ctx) => {
        await markPending(root, b.name, 'destroy');
        await rm(dir, { recursive: true, force: true });
        await rm(layout.activity(root, b.name), { force: true });
        await forget.run(ctx.exec);
      },
    },
    {
      title: 'forget the branch site',
      effects: [`write ${layout.state(root)} (frees slot ${b.slot}, port ${b.port})`],
      run: async () => {
        await updateState(root, (s) => {
          delete s.branches[b.name];
        });
        await clearPending(root, b.name);
      },
    },
  );
  return { command: `destroy ${b.name}`, jobs: [{ name: b.name, steps }] };
}
