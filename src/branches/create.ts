import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { writeFileAtomic } from '../core/files.js';
import type { Config } from '../config/config.js';
import { checkName } from '../config/names.js';
import { UsageError } from '../core/errors.js';
import type { Plan, Step } from '../core/plan.js';
import { portIsFree } from '../core/ports.js';
import { ProductionGuard } from '../db/guard.js';
import { goldenName, stagingDatabaseName, stagingDsn, withTwins } from '../db/names.js';
import { StagingServer } from '../db/staging.js';
import { renderInstancesIni } from '../instances/write.js';
import { layout } from '../model/layout.js';
import { writeAllowList } from '../model/mail-safety.js';
import { clearPending, markPending, readPending } from '../model/pending.js';
import { readState, updateState, type State } from '../model/state.js';
import { noteActivity } from '../model/activity.js';
import {
  deploymentCommand,
  startAndWait,
  stepArgv,
  stepEnv,
  type SiteIdentity,
} from '../model/steps.js';
import type { BuildFacts } from '../vcs/vcs.js';
import { skeletonStep } from './skeleton.js';
import { siteVcs, storeStep } from './source.js';

export interface CreateRequest {
  branch: string;
  ref?: string;
  customers?: string[];
}

/** A new site's etc/instances.ini; refused (exit 2, nothing changed) when a value cannot be written. */
export async function renderInstances(
  cfg: Config,
  branch: string,
  customers: string[],
): Promise<string> {
  return renderInstancesIni(
    layout.instancesIni(cfg.root, branch),
    branch,
    customers.map((name) => ({
      name,
      dsn: stagingDsn(cfg.staging.database, branch, name),
      host: cfg.staging.host,
      allowList: layout.allowList(cfg.root),
    })),
  );
}

/**
 * The smallest slot not taken whose port nothing listens on: slots (and
 * ports) are reused after destroy, and a port another program took is passed
 * over, not handed to a branch site that then cannot start.
 */
async function freeSlot(cfg: Config, state: State): Promise<number> {
  const used = new Set(Object.values(state.branches).map((b) => b.slot));
  for (let slot = 1; ; slot++)
    if (!used.has(slot) && (await portIsFree(cfg.staging.basePort + slot))) return slot;
}

/** Work out a create: every check that can fail on input runs here, before anything changes. */
export async function planCreate(cfg: Config, req: CreateRequest): Promise<Plan> {
  const branch = checkName('branch', req.branch);
  const { root } = cfg;
  const state = await readState(root);
  if (state.branches[branch])
    throw new UsageError(
      `branch site "${branch}" exists already: use "karlstage switch ${branch} REF" to change its code`,
    );
  const dir = layout.branch(root, branch);
  const leftover = await readPending(root, branch);
  if (!leftover && existsSync(dir))
    throw new UsageError(
      `${dir} exists but is not a karlstage branch site: move it away or choose another name`,
    );
  const customers = req.customers ?? cfg.customers.map((c) => c.name);
  if (customers.length === 0)
    throw new UsageError(
      'no customers: add a [customer:NAME] section to karlstage.ini or pass --customers a,b',
    );
  for (const c of customers)
    if (!cfg.customers.some((x) => x.name === checkName('customer', c)))
      throw new UsageError(
        `there is no [customer:${c}] in ${cfg.file}: add its section first, or leave it out of --customers`,
      );
  const ref = req.ref ?? cfg.source.default;
  const vcs = await siteVcs(cfg);
  vcs.validateRef(ref);
  for (const key of ['build', 'start', 'stop'] as const) stepArgv(cfg, key, dir);
  const skeleton = skeletonStep(cfg, dir, branch);
  // A read: also in --dry-run, so a ref that is not there fails before anything exists.
  const kind = await vcs.checkRef(ref);

  const slot = await freeSlot(cfg, state);
  const site: SiteIdentity = { name: branch, slot, port: cfg.staging.basePort + slot };
  const sourceDir = join(dir, cfg.source.path);
  const instancesFile = layout.instancesIni(root, branch);
  const instancesText = await renderInstances(cfg, branch, customers);
  let revision: string | undefined;
  let about: BuildFacts = {};
  const env = () => stepEnv(cfg, site, revision);
  const command = `create ${branch}`;

  const steps: Step[] = [];
  if (leftover) {
    const stop = deploymentCommand(cfg, 'stop', branch, env);
    steps.push({
      title: 'remove what an interrupted create left',
      commands: stop ? [{ ...stop, when: 'when the folder is there' }] : [],
      effects: [
        `remove ${dir}/ (${leftover.damaged ?? `left by pid ${leftover.pid} at ${leftover.started}`})`,
      ],
      run: async (ctx) => {
        if (stop && existsSync(dir)) await ctx.exec(stop).catch(() => undefined);
        await rm(dir, { recursive: true, force: true });
      },
    });
  }
  // git: one fetch into the shared store, before anything of the site exists; a commit id is
  // looked up there (it cannot be asked of the server without fetching).
  // Both only read (the store is a cache of upstream): a ref refused here changed nothing.
  const store = storeStep(cfg, vcs, command, { fetch: true, targets: [{ ref, kind }] });
  if (store) steps.push({ ...store, readOnly: true });
  const locate = vcs.locate(ref, kind);
  if (locate)
    steps.push({
      title: `find ${ref}`,
      commands: locate.commands,
      readOnly: true,
      run: (ctx) => locate.run(ctx.exec),
    });
  steps.push(
    {
      ...skeleton,
      run: async (ctx) => {
        await markPending(root, branch, 'create');
        ctx.onUndo(() => rm(dir, { recursive: true, force: true }));
        await skeleton.run(ctx);
        if (existsSync(sourceDir))
          throw new UsageError(
            `the skeleton already has ${cfg.source.path}: remove it there, karlstage checks the source out itself`,
          );
      },
    },
    ((): Step => {
      const checkout = vcs.checkout(ref, kind, sourceDir, branch);
      const describe = vcs.describeBuild(sourceDir, ref, cfg.source.default);
      return {
        title: `check out ${ref}`,
        commands: [...checkout.commands, ...describe.commands],
        run: async (ctx) => {
          await mkdir(dirname(sourceDir), { recursive: true });
          revision = await checkout.run(ctx.exec);
          about = await describe.run(ctx.exec);
          ctx.say(`checked out ${ref} at ${revision}`);
        },
      };
    })(),
    {
      title: 'write etc/instances.ini',
      effects: [
        `write ${instancesFile} (customers: ${customers.join(', ')})`,
        `write ${layout.allowList(root)}`,
      ],
      run: async () => {
        await mkdir(dirname(instancesFile), { recursive: true });
        await writeFileAtomic(instancesFile, instancesText, {
          mode: 0o600,
        });
        await writeAllowList(cfg);
      },
    },
  );
  if (cfg.staging.manageDatabases) {
    // Asked of the servers before anything exists: a read, so --dry-run asks too.
    const guard = await ProductionGuard.establish(cfg, { memory: layout.productions(root) });
    // A customer whose production cannot be asked gets no database on a guess: the sync makes it later.
    const unknown = customers.flatMap((c) => {
      const why = guard.unknown(c);
      return why
        ? [`no database for ${c} yet: ${why}; the nightly sync makes it once that server answers`]
        : [];
    });
    const made = customers.filter((c) => !guard.unknown(c));
    const names = made.map((c) => stagingDatabaseName(branch, c));
    await guard.refuseProduction([...withTwins(names), ...made.map(goldenName)]);
    const db = new StagingServer(cfg, guard);
    const make = db.siteDatabases(branch, made);
    const undo = db.dropWithTwins(names);
    steps.push({
      title: 'create the staging databases',
      commands: [...make.commands, ...undo.map((c) => ({ ...c, when: 'when a later step fails' }))],
      effects: unknown,
      run: async (ctx) => {
        await guard.remember();
        ctx.onUndo(async () => {
          for (const c of undo) await ctx.exec(c);
        });
        await make.run(ctx.exec);
        for (const line of unknown) ctx.warn(line);
      },
    });
  }
  const build = deploymentCommand(cfg, 'build', branch, env);
  if (build)
    steps.push({
      title: 'build',
      commands: [build],
      run: async (ctx) => void (await ctx.exec(build)),
    });
  const start = deploymentCommand(cfg, 'start', branch, env);
  const stop = deploymentCommand(cfg, 'stop', branch, env);
  let startedMs: number | undefined;
  if (start)
    steps.push({
      title: 'start',
      commands: [start, ...(stop ? [{ ...stop, when: 'when a later step fails' }] : [])],
      run: async (ctx) => {
        if (stop) ctx.onUndo(async () => void (await ctx.exec(stop)));
        // Started means answering on its port, within [deployment] start_timeout.
        startedMs = await startAndWait(cfg, site.port, () => ctx.exec(start));
      },
    });
  steps.push({
    title: 'record the branch site',
    effects: [
      `write ${layout.state(root)} (slot ${slot}, port ${site.port})`,
      `write ${layout.siteMarker(root, branch)}`,
    ],
    run: async () => {
      const now = new Date().toISOString();
      // state.json's update writes the site's marker too (.karlstage-site.json).
      await updateState(root, (s) => {
        s.branches[branch] = {
          name: branch,
          slot,
          port: site.port,
          vcs: cfg.source.vcs,
          ref,
          refKind: kind,
          createdAt: now,
          revision,
          built: revision ? { revision, ref, at: now, ...about } : undefined,
          run: {
            want: 'running',
            since: now,
            by: 'create',
            ...(startedMs !== undefined
              ? { lastStart: { at: now, ok: true, ms: startedMs, by: 'create' } }
              : {}),
          },
        };
      });
      await noteActivity(root, branch);
    },
  });

  return {
    command,
    jobs: [{ name: branch, steps, finally: () => clearPending(root, branch) }],
  };
}
