import type { Config } from '../config/config.js';
import { LockedError, messageOf, UsageError } from '../core/errors.js';
import { answersHttp } from '../core/http-probe.js';
import type { Job, Step } from '../core/plan.js';
import { noteActivity } from '../model/activity.js';
import { acquireLock, branchLock, type Release } from '../model/locks.js';
import { wantOf } from '../model/site-state.js';
import { readState, updateState, type BranchState, type RunRecord } from '../model/state.js';
import { deploymentCommand, startAndWait, stepEnv } from '../model/steps.js';

/**
 * Starting and stopping a branch site's app: the deployment's start, stop and restart steps,
 * run under the site's lock, and what became of them written into its run record. `start`,
 * `stop`, `restart` and `sleep` (commands/run-control.ts), watch and the wake service all
 * come through here.
 */
export type SiteAction = 'start' | 'stop' | 'restart' | 'sleep';

export interface ActionRequest {
  /** Shown to whoever meets the lock: "start branch1", "watch", "wake branch1". */
  command: string;
  /** Who decided it: a user name, "watch", "a visitor (anna)". */
  by: string;
  waitSeconds?: number;
  /** watch: a site whose lock another run holds (an update, a sync) is left alone. */
  skipIfLocked?: boolean;
  /** Asked under the lock: a reason to leave it as it is after all (it answers by now). */
  unless?: (site: BranchState, answers: boolean) => string | undefined;
}

/** After n failed starts in a row the next one waits 1, 2, 4 … minutes, at most an hour. */
export const retryDelayMs = (failures: number): number =>
  Math.min(60, 2 ** Math.max(0, failures - 1)) * 60_000;

/** The run record after a start that answered in `ms`, or failed with `error`. */
export function afterStart(
  run: RunRecord | undefined,
  start: { at: string; by: string; ms: number; error?: string },
): RunRecord {
  const base: RunRecord = {
    ...run,
    want: 'running',
    since: run?.want === 'running' ? run.since : start.at,
    by: start.by,
    lastStart: { at: start.at, ok: !start.error, ms: start.ms, by: start.by },
  };
  if (!start.error) {
    // Answering again: a "down" told to people is followed by "recovered" (notify.ts).
    for (const k of ['failures', 'retryAt', 'downSince', 'toldDown'] as const) delete base[k];
    return base;
  }
  const failures = (run?.failures ?? 0) + 1;
  return {
    ...base,
    lastStart: { ...base.lastStart!, error: start.error },
    failures,
    retryAt: new Date(Date.parse(start.at) + retryDelayMs(failures)).toISOString(),
    downSince: run?.downSince ?? start.at,
  };
}

/** The run record once the app was stopped: by the operator, or asleep. */
export function afterStop(
  run: RunRecord | undefined,
  want: 'stopped' | 'sleeping',
  at: string,
  by: string,
): RunRecord {
  const next: RunRecord = { ...run, want, since: at, by };
  delete next.failures;
  delete next.retryAt;
  delete next.downSince;
  return next;
}

/** Write a site's new run record (the site may be gone meanwhile: then nothing). */
export async function recordRun(
  root: string,
  branch: string,
  change: (run: RunRecord | undefined, site: BranchState) => RunRecord,
): Promise<void> {
  await updateState(root, (s) => {
    const b = s.branches[branch];
    if (b) b.run = change(b.run, b);
  });
}

/** The commands an action runs; a missing deployment key is refused before anything. */
function commandsOf(cfg: Config, site: BranchState, action: SiteAction) {
  const env = () => stepEnv(cfg, site, site.built?.revision ?? site.revision);
  const of = (key: 'start' | 'stop' | 'restart') => deploymentCommand(cfg, key, site.name, env);
  const start = of('start');
  const stop = of('stop');
  if (action === 'stop' || action === 'sleep') {
    if (!stop)
      throw new UsageError(`[deployment] stop is not set in ${cfg.file}: nothing stops an app`);
    return { stop };
  }
  if (!start)
    throw new UsageError(`[deployment] start is not set in ${cfg.file}: nothing starts an app`);
  return { start, restart: action === 'restart' ? (of('restart') ?? undefined) : undefined, stop };
}

/** One site's start, stop, restart or sleep, as a job of a plan (dry-run shows its commands). */
export function siteActionJob(
  cfg: Config,
  site: BranchState,
  action: SiteAction,
  req: ActionRequest,
): Job {
  const cmds = commandsOf(cfg, site, action);
  let release: Release | undefined;
  let now: BranchState = site;
  let acted = false;
  let startedMs: number | undefined;
  const steps: Step[] = [
    {
      title: 'lock and look',
      effects: [`lock ${site.name}`],
      run: async () => {
        try {
          release = await acquireLock(cfg.root, branchLock(site.name), {
            command: req.command,
            waitSeconds: req.waitSeconds,
          });
        } catch (e) {
          if (req.skipIfLocked && e instanceof LockedError)
            return { skipRest: `left alone: ${e.message}` };
          throw e;
        }
        const found = (await readState(cfg.root)).branches[site.name];
        if (!found) throw new LockedError(`${site.name} was destroyed meanwhile`);
        now = found;
        const answers = await answersHttp(now.port);
        const unless = req.unless?.(now, answers);
        if (unless) return { skipRest: unless };
        // Started by hand meanwhile: it runs, and is wanted running from now on (finally).
        if (action === 'start' && answers) return { skipRest: 'already running' };
      },
    },
  ];
  if (action === 'stop' || action === 'sleep')
    steps.push({
      title: action === 'sleep' ? 'put it to sleep (stop)' : 'stop',
      commands: [cmds.stop!],
      run: async (ctx) => {
        acted = true;
        await ctx.exec(cmds.stop!);
      },
    });
  else {
    const sequence = cmds.restart
      ? [cmds.restart]
      : action === 'restart' && cmds.stop
        ? [cmds.stop, cmds.start!]
        : [cmds.start!];
    steps.push({
      title: action === 'restart' ? 'restart' : 'start',
      commands: sequence,
      run: async (ctx) => {
        acted = true;
        startedMs = await startAndWait(cfg, now.port, async () => {
          for (const c of sequence) await ctx.exec(c);
        });
        ctx.say(`answers on 127.0.0.1:${now.port} after ${(startedMs / 1000).toFixed(1)} s`);
      },
    });
  }
  return {
    name: site.name,
    steps,
    finally: async (result) => {
      if (!release) return;
      try {
        const at = new Date().toISOString();
        if (action === 'start' || action === 'restart') {
          if (!acted && result.ok && wantOf(now) !== 'running')
            // It answered already (started by hand): it is wanted running from now on.
            await recordRun(cfg.root, site.name, (run) =>
              afterStart(run, { at, by: req.by, ms: 0 }),
            );
          else if (acted) {
            const error = result.ok ? undefined : messageOf(result.error ?? 'failed');
            await recordRun(cfg.root, site.name, (run) =>
              afterStart(run, { at, by: req.by, ms: startedMs ?? 0, ...(error ? { error } : {}) }),
            );
            if (!error) await noteActivity(cfg.root, site.name);
          }
        } else if (acted && (action === 'stop' || result.ok))
          // The operator's stop counts even when the stop step failed: nothing starts it again.
          await recordRun(cfg.root, site.name, (run) =>
            afterStop(run, action === 'sleep' ? 'sleeping' : 'stopped', at, req.by),
          );
      } finally {
        await release();
      }
    },
  };
}
