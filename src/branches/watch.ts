import type { Config } from '../config/config.js';
import { answersHttp } from '../core/http-probe.js';
import { liveHolder } from '../core/lock.js';
import { lastActivity } from '../model/activity.js';
import { branchLock, LOCKS, lockRoom } from '../model/locks.js';
import { wantOf } from '../model/site-state.js';
import type { BranchState, RunRecord } from '../model/state.js';

/**
 * What watch does, as a pure function of what it found (unit-tested without a process): a
 * site that should run and does not answer is started again (restart: a hung app holds its
 * port), with backoff after failed starts, and people are told after two in a row; a site
 * with no logged-in request for idle_after sleeps; the wake service is started when it is
 * not running. With nothing to do it decides nothing, and nothing is written.
 */
export interface SiteFacts {
  site: BranchState;
  answers: boolean;
  /** Another run holds its lock (an update, a sync, a start): left alone. */
  busy: boolean;
  /** When it was last used (its activity file); undefined when there is no such file yet. */
  activity?: number;
}

export interface WatchFacts {
  now: number;
  sites: SiteFacts[];
  wakeServiceUp: boolean;
}

export type WatchDecision =
  | { kind: 'start'; branch: string; why: string }
  | { kind: 'sleep'; branch: string; why: string }
  /** A change of its run record only: nothing runs. */
  | {
      kind: 'record';
      branch: string;
      why: string;
      change: (run: RunRecord | undefined) => RunRecord;
    }
  /** Its activity file is missing: made now, which starts its idle clock. */
  | { kind: 'activity'; branch: string }
  | { kind: 'wake-service' };

/** Failed starts in a row after which people are told ("down"); "recovered" follows. */
export const TELL_AFTER = 2;

export function decideWatch(
  cfg: Config,
  facts: WatchFacts,
  opts: { boot?: boolean } = {},
): WatchDecision[] {
  const decisions: WatchDecision[] = [];
  if (!facts.wakeServiceUp) decisions.push({ kind: 'wake-service' });
  const at = new Date(facts.now).toISOString();
  for (const { site, answers, busy, activity } of facts.sites) {
    if (busy) continue;
    const run = site.run;
    const want = wantOf(site);
    const branch = site.name;
    if (want === 'stopped') continue;
    if (answers) {
      if (want === 'sleeping')
        decisions.push({
          kind: 'record',
          branch,
          why: 'it answers: started by someone',
          change: (r) => ({ ...r!, want: 'running', since: at, by: 'found answering' }),
        });
      else if (run?.downSince || run?.failures || run?.toldDown)
        decisions.push({
          kind: 'record',
          branch,
          why: 'it answers again',
          change: (r) => {
            const next = { ...r!, want: 'running' as const };
            for (const k of ['downSince', 'failures', 'retryAt', 'toldDown'] as const)
              delete next[k];
            return next;
          },
        });
      else if (activity === undefined) decisions.push({ kind: 'activity', branch });
      else if (!opts.boot && cfg.deployment.stop && idle(cfg, site, activity, facts.now))
        decisions.push({
          kind: 'sleep',
          branch,
          why: `no logged-in request for ${Math.floor((facts.now - activity) / 60_000)} min`,
        });
      continue;
    }
    // Nothing to start it with ([deployment] start unset): its app is somebody else's business.
    if (want === 'sleeping' || !cfg.deployment.start) continue;
    // It should run and does not answer.
    if (opts.boot || !run?.retryAt || Date.parse(run.retryAt) <= facts.now)
      decisions.push({
        kind: 'start',
        branch,
        why: opts.boot ? 'it ran before the reboot' : 'it does not answer',
      });
    else if (!run.downSince || ((run.failures ?? 0) >= TELL_AFTER && !run.toldDown))
      decisions.push({
        kind: 'record',
        branch,
        why: `down; tried again at ${run.retryAt}`,
        change: (r) => ({
          ...r!,
          downSince: r?.downSince ?? at,
          ...((r?.failures ?? 0) >= TELL_AFTER ? { toldDown: true } : {}),
        }),
      });
  }
  return decisions;
}

/** Idle: sleeping is on, no login is needed to wake it (never when the host is public), not held. */
function idle(cfg: Config, site: BranchState, activity: number, now: number): boolean {
  const after = cfg.staging.idleAfterMs;
  // A public host has no login, and only a login wakes a site: there, nothing sleeps by itself.
  if (after === undefined || cfg.access.public || site.hold) return false;
  // A start, an update, a switch, a reset or a hold touches the file too (model/activity.ts).
  return now - activity >= after;
}

/** Gather the facts: every port asked, every lock and activity file read, in parallel. */
export async function watchFacts(cfg: Config, sites: BranchState[]): Promise<WatchFacts> {
  const room = lockRoom(cfg.root);
  const [facts, wake] = await Promise.all([
    Promise.all(
      sites.map(async (site) => {
        const [answers, holder, activity] = await Promise.all([
          answersHttp(site.port),
          liveHolder(room, branchLock(site.name)),
          lastActivity(cfg.root, site.name),
        ]);
        return { site, answers, busy: Boolean(holder), ...(activity ? { activity } : {}) };
      }),
    ),
    liveHolder(room, LOCKS.wake),
  ]);
  return { now: Date.now(), sites: facts, wakeServiceUp: Boolean(wake) };
}
