import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Config } from '../config/config.js';
import { layout } from '../core/layout.js';
import type { Plan, StepContext } from '../core/plan.js';
import { KarlstageError } from '../core/errors.js';
import { ProductionGuard } from '../db/guard.js';
import { stagingDatabaseName, withTwins } from '../db/names.js';
import { StagingServer } from '../db/staging.js';
import { readInstances } from '../instances/instances-file.js';
import { updateState, type BranchState } from '../core/state.js';
import { clearPending, markPending } from './pending.js';
import { deploymentStep, stepEnv } from './steps.js';

/** Stop the app, remove the folder, forget the site. A site whose stop fails is still removed. */
export async function planDestroy(cfg: Config, b: BranchState): Promise<Plan> {
  const dir = layout.branch(cfg.root, b.name);
  let drop: { names: string[]; guard: ProductionGuard } | undefined;
  if (cfg.staging.manageDatabases) {
    // The customers it serves; every configured one when its instances.ini is unreadable.
    const served = await readInstances(layout.instancesIni(cfg.root, b.name))
      .then((list) => list.map((i) => i.name))
      .catch(() => cfg.customers.map((c) => c.name));
    const guard = await ProductionGuard.establish(cfg, { memory: layout.productions(cfg.root) });
    for (const c of served) {
      const unknown = guard.unknown(c);
      if (unknown) throw new KarlstageError(`${unknown}: nothing was removed`);
    }
    const names = served.map((c) => stagingDatabaseName(b.name, c));
    await guard.refuseProduction(withTwins(names));
    drop = { names, guard };
  }
  const stop = deploymentStep(cfg, 'stop', b.name, () => stepEnv(cfg, b, b.revision));
  return {
    command: `destroy ${b.name}`,
    jobs: [
      {
        name: b.name,
        steps: [
          ...(stop && existsSync(dir)
            ? [
                {
                  ...stop,
                  run: async (ctx: Parameters<typeof stop.run>[0]) => {
                    await markPending(cfg.root, b.name, 'destroy');
                    await stop
                      .run(ctx)
                      .catch((e: Error) => ctx.say(`stop failed, removing anyway: ${e.message}`));
                  },
                },
              ]
            : []),
          ...(drop
            ? [
                {
                  title: 'drop the staging databases',
                  preview: withTwins(drop.names).map((db) => `DROP DATABASE IF EXISTS ${db}`),
                  run: async (ctx: StepContext) => {
                    await markPending(cfg.root, b.name, 'destroy');
                    await new StagingServer(cfg, drop!.guard, ctx.log).dropWithTwins(drop!.names);
                  },
                },
              ]
            : []),
          {
            title: `remove ${dir}`,
            preview: [`remove ${dir}/`],
            run: async () => {
              await markPending(cfg.root, b.name, 'destroy');
              await rm(dir, { recursive: true, force: true });
            },
          },
          {
            title: 'forget the branch site',
            preview: [`write ${layout.state(cfg.root)} (frees slot ${b.slot}, port ${b.port})`],
            run: async () => {
              await updateState(cfg.root, (s) => {
                delete s.branches[b.name];
              });
              await clearPending(cfg.root, b.name);
            },
          },
        ],
      },
    ],
  };
}
