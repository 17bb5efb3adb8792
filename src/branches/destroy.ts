import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import type { Config } from '../core/config.js';
import { layout } from '../core/layout.js';
import type { Plan, StepContext } from '../core/plan.js';
import { stagingDatabaseName } from '../instances/databases.js';
import { readInstances } from '../instances/instances-file.js';
import { dropStagingDatabases, guardStagingNames } from '../sync/staging-databases.js';
import { updateState, type BranchState } from '../core/state.js';
import { clearPending, markPending } from './pending.js';
import { deploymentStep, stepEnv } from './steps.js';

/** Stop the app, remove the folder, forget the site. A site whose stop fails is still removed. */
export function planDestroy(cfg: Config, b: BranchState): Plan {
  const dir = layout.branch(cfg.root, b.name);
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
          ...(cfg.staging.manageDatabases
            ? [
                {
                  title: 'drop the staging databases',
                  preview: [
                    `DROP DATABASE ${stagingDatabaseName(b.name, 'CUSTOMER')} for each customer it serves`,
                  ],
                  run: async (ctx: StepContext) => {
                    await markPending(cfg.root, b.name, 'destroy');
                    // The customers it serves; every configured one when its instances.ini is unreadable.
                    const served = await readInstances(layout.instancesIni(cfg.root, b.name))
                      .then((list) => list.map((i) => i.name))
                      .catch(() => cfg.customers.map((c) => c.name));
                    const names = served.map((c) => stagingDatabaseName(b.name, c));
                    guardStagingNames(cfg, names);
                    await dropStagingDatabases(cfg, names, ctx.log);
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
