import { decideWatch, watchFacts, type WatchDecision } from '../branches/watch.js';
import { commandContext, type CommandContext, type GlobalOptions } from '../context/context.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/config.js';
import type { Job, Plan } from '../core/plan.js';
import { layout } from '../model/layout.js';
import { unprocessed } from '../model/maildir.js';
import { noteActivity, tidyActivity } from '../model/activity.js';
import { readState, updateState, type State } from '../model/state.js';

export interface WatchOptions extends GlobalOptions {
  /** @reboot: start every site that was running, a few at a time, and the wake service. */
  boot?: boolean;
  jobs?: number;
}

export interface WatchResult {
  actions: { branch?: string; kind: string; why?: string; ok?: boolean; error?: string }[];
  /** --dry-run: what it would do. */
  plan?: object;
}

/**
 * cron, every minute: a site that should run and does not answer is started again (with
 * backoff), idle sites are put to sleep, the wake service is kept up. Cheap when there is
 * nothing to do (bench/sites.mjs): its probes run in parallel, and nothing is written.
 */
export async function watch(opts: WatchOptions): Promise<WatchResult> {
  const ctx = await commandContext(opts);
  const { cfg, options } = ctx;
  const before = await readState(cfg.root);
  const sites = Object.values(before.branches).sort((a, b) => a.slot - b.slot);
  const decisions = decideWatch(cfg, await watchFacts(cfg, sites), { boot: opts.boot });
  for (const s of sites) await tidyActivity(cfg.root, s.name).catch(() => undefined);
  if (decisions.length === 0) {
    // The site list counts the staged mail waiting for mail-in: kept current, cheaply.
    if (!options.dryRun && (await mailCountsMoved(cfg, before))) {
      const { afterChange } = await import('../context/after-change.js');
      await afterChange(ctx, { routes: false });
    }
    return { actions: [] };
  }
  return act(ctx, before, decisions, opts);
}

async function act(
  ctx: CommandContext,
  before: State,
  decisions: WatchDecision[],
  opts: WatchOptions,
): Promise<WatchResult> {
  const { cfg, out, options } = ctx;
  const actions: WatchResult['actions'] = [];
  const { siteActionJob } = await import('../branches/lifecycle.js');
  const { dryRun, carryOut } = await import('../context/report.js');
  const command = opts.boot ? 'watch --boot' : 'watch';
  const wake = decisions.some((d) => d.kind === 'wake-service')
    ? await wakeServiceJob(cfg)
    : undefined;
  if (wake && !options.dryRun) {
    const [r] = await carryOut(ctx, { command, jobs: [wake.job] });
    actions.push({
      kind: 'wake-service',
      ok: Boolean(r?.ok),
      ...(r?.error ? { error: r.error.message } : {}),
    });
    if (r?.ok) out.progress(`watch: started the wake service (pid ${wake.pid()})`);
    else out.warn(`watch: the wake service did not start: ${r?.error?.message}`);
  }
  const records = decisions.filter((d) => d.kind === 'record' || d.kind === 'activity');
  if (records.length && !options.dryRun) {
    for (const d of records) if (d.kind === 'activity') await noteActivity(cfg.root, d.branch);
    await updateState(cfg.root, (s) => {
      for (const d of records) {
        const b = d.kind === 'record' ? s.branches[d.branch] : undefined;
        if (b && d.kind === 'record') b.run = d.change(b.run);
      }
    });
    for (const d of records)
      if (d.kind === 'record') actions.push({ branch: d.branch, kind: 'record', why: d.why });
  }
  const work = decisions.filter((d) => d.kind === 'start' || d.kind === 'sleep');
  const plan: Plan = {
    command,
    concurrency: opts.jobs ?? cfg.staging.jobs,
    jobs: work.map((d) => {
      const site = before.branches[d.branch!]!;
      return siteActionJob(
        cfg,
        site,
        d.kind === 'start' ? (opts.boot ? 'start' : 'restart') : 'sleep',
        {
          command,
          by: 'watch',
          skipIfLocked: true,
          // Looked at again under its lock: it may have been started, stopped or visited meanwhile.
          unless: (now, answers) =>
            d.kind === 'start'
              ? answers
                ? 'answers again'
                : now.run?.want && now.run.want !== 'running'
                  ? `${now.run.want} meanwhile`
                  : undefined
              : !answers || (now.run?.want ?? 'running') !== 'running'
                ? 'not running any more'
                : now.hold
                  ? 'held'
                  : undefined,
        },
      );
    }),
  };
  if (options.dryRun) {
    const { withPublishing } = await import('../context/after-change.js');
    const shown = { ...plan, jobs: [...(wake ? [wake.job] : []), ...plan.jobs] };
    // The site list shows the sites' new states: published after any site's job.
    const planned = plan.jobs.length
      ? dryRun(ctx, await withPublishing(ctx, shown, { routes: false }))
      : shown.jobs.length
        ? dryRun(ctx, shown)
        : undefined;
    return {
      actions: work.map((d) => ({ branch: d.branch, kind: d.kind, why: d.why })),
      ...(planned ? { plan: planned } : {}),
    };
  }
  if (plan.jobs.length) {
    for (const d of work) out.progress(`watch: ${d.kind} ${d.branch}: ${d.why}`);
    const results = await carryOut(ctx, plan);
    for (const [i, r] of results.entries())
      actions.push({
        branch: r.name,
        kind: work[i]!.kind,
        why: r.skipped ?? work[i]!.why,
        ok: r.ok,
        ...(r.error ? { error: r.error.message } : {}),
      });
    for (const r of results.filter((x) => !x.ok))
      out.warn(`watch: ${r.name}: ${r.error?.message ?? 'failed'}`);
  }
  if (actions.some((a) => a.branch)) {
    // Outside every lock: the site list shows the new states, people hear of downs and recoveries.
    const { afterChange, tellPeople } = await import('../context/after-change.js');
    await afterChange(ctx, { routes: false });
    await tellPeople(ctx, before);
  }
  const failed = actions.filter((a) => a.ok === false);
  if (failed.length) {
    const { KarlstageError } = await import('../core/errors.js');
    const { withResult } = await import('../context/report.js');
    throw withResult(
      new KarlstageError(
        `watch: ${failed.length} of ${actions.length} failed`,
        1,
        failed.map((a) => `${a.branch ?? a.kind}: ${a.error ?? 'failed'}`),
      ),
      { actions },
    );
  }
  return { actions };
}

/** Starting the wake service, as a job of watch's plan; its pid once started. */
async function wakeServiceJob(cfg: Config): Promise<{ job: Job; pid: () => number | undefined }> {
  const { startWakeService, wakeServiceCommand } = await import('../publish/wake-service.js');
  const { KarlstageError } = await import('../core/errors.js');
  let pid: number | undefined;
  const job: Job = {
    name: 'wake service',
    steps: [
      {
        title: 'start the wake service',
        commands: [wakeServiceCommand(cfg)],
        run: async (ctx) => {
          const r = await startWakeService(cfg, ctx.exec);
          if (!r.ok) throw new KarlstageError(r.error ?? 'it did not start');
          pid = r.pid;
        },
      },
    ],
  };
  return { job, pid: () => pid };
}

/** Whether a mail branch's count of waiting mail-in differs from what the site list says. */
async function mailCountsMoved(cfg: Config, state: State): Promise<boolean> {
  const listed = await readFile(join(layout.sites(cfg.root), 'all', 'sites.json'), 'utf8')
    .then(
      (t) =>
        JSON.parse(t) as {
          branches?: { name: string; customers: { name: string; mailWaiting: number | null }[] }[];
        },
    )
    .catch(() => undefined);
  if (!listed?.branches) return false;
  for (const c of cfg.customers) {
    if (!state.branches[c.mailBranch]) continue;
    const shown = listed.branches
      .find((b) => b.name === c.mailBranch)
      ?.customers.find((x) => x.name === c.name)?.mailWaiting;
    if (shown === undefined) continue;
    const now = await unprocessed(join(cfg.root, c.mailBranch, cfg.deployment.maildir, c.name));
    if ((now ?? null) !== shown) return true;
  }
  return false;
}
