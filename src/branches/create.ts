import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { Config } from '../config/config.js';
import { UsageError } from '../core/errors.js';
import { layout } from '../core/layout.js';
import { checkName } from '../config/names.js';
import type { Plan, Step } from '../core/plan.js';
import { freeSlot, readState, updateState } from '../core/state.js';
import { renderTemplate } from '../core/templates.js';
import { ProductionGuard } from '../db/guard.js';
import { goldenName, stagingDatabaseName, stagingDsn, withTwins } from '../db/names.js';
import { StagingServer } from '../db/staging.js';
import { clearPending, markPending, readPending } from './pending.js';
import { copySkeleton, skeletonPreview } from './skeleton.js';
import { deploymentStep, stepCommand, stepEnv, type SiteIdentity } from './steps.js';
import { run } from '../core/runner.js';
import { describeBuild, sourceVcs } from './vcs.js';
import { writeAllowList } from '../web/mail.js';

export interface CreateRequest {
  branch: string;
  ref?: string;
  customers?: string[];
}

export async function renderInstances(
  cfg: Config,
  branch: string,
  customers: string[],
): Promise<string> {
  return renderTemplate('instances.ini', {
    branch,
    customers: customers.map((name) => ({
      name,
      dsn: stagingDsn(cfg.staging.database, branch, name),
      host: cfg.staging.host,
      allow_list: layout.allowList(cfg.root),
    })),
  });
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
  customers.forEach((c) => checkName('customer', c));
  const ref = req.ref ?? cfg.source.default;
  const probe = await sourceVcs(cfg);
  probe.validateRef(ref);
  for (const key of ['build', 'start', 'stop'] as const) stepCommand(cfg, key, dir);
  await probe.checkRef(ref); // a read: also runs in --dry-run, so a bad ref fails before anything exists

  const slot = freeSlot(state);
  const site: SiteIdentity = { name: branch, slot, port: cfg.staging.basePort + slot };
  const sourceDir = join(dir, cfg.source.path);
  const instancesFile = layout.instancesIni(root, branch);
  let revision: string | undefined;
  let about: Awaited<ReturnType<typeof describeBuild>> = {};

  const steps: Step[] = [];
  if (leftover) {
    steps.push({
      title: 'remove what an interrupted create left',
      preview: [`remove ${dir}/ (left by pid ${leftover.pid} at ${leftover.started})`],
      run: async (ctx) => {
        const argv = existsSync(dir) ? stepCommand(cfg, 'stop', dir) : undefined;
        if (argv) {
          const [program, ...args] = argv as [string, ...string[]];
          await run(program, args, {
            step: `${branch}: stop`,
            cwd: dir,
            env: stepEnv(cfg, site),
            timeoutMs: cfg.deployment.timeout * 1000,
            log: ctx.log,
          }).catch(() => undefined);
        }
        await rm(dir, { recursive: true, force: true });
      },
    });
  }
  steps.push(
    {
      title: 'copy the deployment skeleton',
      preview: skeletonPreview(cfg, dir),
      run: async (ctx) => {
        await markPending(root, branch, 'create');
        ctx.onUndo(() => rm(dir, { recursive: true, force: true }));
        await copySkeleton(cfg, dir, ctx.log);
        if (existsSync(sourceDir))
          throw new UsageError(
            `the skeleton already has ${cfg.source.path}: remove it there, karlstage checks the source out itself`,
          );
      },
    },
    {
      title: `check out ${ref}`,
      preview: probe.preview('checkout', ref, sourceDir),
      run: async (ctx) => {
        await mkdir(dirname(sourceDir), { recursive: true });
        const vcs = await sourceVcs(cfg, ctx.log);
        revision = await vcs.checkout(ref, sourceDir);
        about = await describeBuild(vcs, sourceDir, ref, cfg.source.default);
        ctx.say(`checked out ${ref} at ${revision}`);
      },
    },
    {
      title: 'write etc/instances.ini',
      preview: [
        `write ${instancesFile} (customers: ${customers.join(', ')})`,
        `write ${layout.allowList(root)} if missing`,
      ],
      run: async () => {
        await mkdir(dirname(instancesFile), { recursive: true });
        await writeFileAtomic(instancesFile, await renderInstances(cfg, branch, customers), {
          mode: 0o600,
        });
        await writeAllowList(cfg);
      },
    },
  );
  const env = () => stepEnv(cfg, site, revision);
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
    steps.push({
      title: 'create the staging databases',
      preview: [
        ...made.map(
          (c) =>
            `CREATE DATABASE ${stagingDatabaseName(branch, c)} (TEMPLATE ${goldenName(c)} STRATEGY FILE_COPY when that golden copy exists)`,
        ),
        ...unknown,
      ],
      run: async (ctx) => {
        await guard.remember();
        const db = new StagingServer(cfg, guard, ctx.log);
        ctx.onUndo(() => db.dropWithTwins(names));
        await db.createSiteDatabases(branch, made);
        for (const line of unknown) ctx.warn(line);
      },
    });
  }
  const build = deploymentStep(cfg, 'build', branch, env);
  if (build) steps.push(build);
  const start = deploymentStep(cfg, 'start', branch, env);
  const stop = deploymentStep(cfg, 'stop', branch, env);
  if (start)
    steps.push({
      ...start,
      run: async (ctx) => {
        if (stop) ctx.onUndo(async () => void (await stop.run(ctx)));
        await start.run(ctx);
      },
    });
  steps.push({
    title: 'record the branch site',
    preview: [`write ${layout.state(root)} (slot ${slot}, port ${site.port})`],
    run: async () => {
      const now = new Date().toISOString();
      await updateState(root, (s) => {
        s.branches[branch] = {
          name: branch,
          slot,
          port: site.port,
          vcs: cfg.source.vcs,
          ref,
          createdAt: now,
          revision,
          built: revision ? { revision, ref, at: now, ...about } : undefined,
        };
      });
    },
  });

  return {
    command: `create ${branch}`,
    jobs: [{ name: branch, steps, finally: () => clearPending(root, branch) }],
  };
}
