import type { Config } from '../config/config.js';
import { answersHttp } from '../core/http-probe.js';
import { memoryOfListeners } from '../core/listeners.js';
import { liveHolder } from '../core/lock.js';
import { branchLock, lockRoom } from './locks.js';
import type { BranchState, RunRecord } from './state.js';

/**
 * A branch site's state, as status, doctor and the site list show it. "Running" means its
 * port answers HTTP, not that a pid exists: the state is worked out from what its run
 * record wants, what its port answers, and who holds its lock (a start or a build under way).
 */
export type SiteState = 'running' | 'starting' | 'building' | 'sleeping' | 'down' | 'stopped';

export interface SiteRun {
  state: SiteState;
  /** Since when (null when not known: a site made before states were kept). */
  since: string | null;
  /** Who stopped it, or what put it to sleep. */
  by?: string;
  /** Running: the resident memory of the processes serving its port (only when asked for). */
  memoryBytes?: number;
  /** Sleeping: about how long waking it takes (its last start). */
  wakeSeconds?: number;
  /** Down: why its last start failed, and when it is tried again. */
  error?: string;
  retryAt?: string;
}

/** What a site should be doing; a site recorded before run records existed should run. */
export const wantOf = (site: BranchState): RunRecord['want'] => site.run?.want ?? 'running';

/** What the lock's holder is doing to the site, by its command (see the commands' names). */
export function busyWith(command: string | undefined): 'starting' | 'building' | undefined {
  if (!command) return undefined;
  if (/^(start|restart|wake|watch)\b/.test(command)) return 'starting';
  if (/^(create|update|switch|poll --build)\b/.test(command)) return 'building';
  return undefined;
}

export interface RunFacts {
  answers: boolean;
  /** The live holder of its lock: its command and since when. */
  holder?: { command: string; since: string };
  memoryBytes?: number;
}

/** The state of one site from its record and the facts (pure: unit-tested). */
export function siteRun(site: BranchState, facts: RunFacts): SiteRun {
  const run = site.run;
  const want = wantOf(site);
  const last = run?.lastStart;
  if (facts.answers)
    return {
      state: 'running',
      since: (last?.ok ? last.at : undefined) ?? site.built?.at ?? site.createdAt ?? null,
      ...(facts.memoryBytes !== undefined ? { memoryBytes: facts.memoryBytes } : {}),
    };
  const busy = busyWith(facts.holder?.command);
  if (busy) return { state: busy, since: facts.holder!.since };
  if (want === 'stopped')
    return { state: 'stopped', since: run?.since ?? null, ...(run?.by ? { by: run.by } : {}) };
  if (want === 'sleeping')
    return {
      state: 'sleeping',
      since: run?.since ?? null,
      ...(run?.by ? { by: run.by } : {}),
      ...(last?.ok ? { wakeSeconds: Math.max(1, Math.ceil(last.ms / 1000)) } : {}),
    };
  return {
    state: 'down',
    since: run?.downSince ?? null,
    ...(last && !last.ok && last.error ? { error: last.error } : {}),
    ...(run?.retryAt ? { retryAt: run.retryAt } : {}),
  };
}

/** Every site's state: their ports asked and their locks read in parallel. */
export async function siteRuns(
  cfg: Config,
  sites: BranchState[],
  opts: { memory?: boolean; probeMs?: number } = {},
): Promise<Map<string, SiteRun>> {
  const room = lockRoom(cfg.root);
  const [facts, memory] = await Promise.all([
    Promise.all(
      sites.map(async (s) => ({
        answers: await answersHttp(s.port, opts.probeMs ?? 1_000),
        holder: await liveHolder(room, branchLock(s.name)),
      })),
    ),
    opts.memory ? memoryOfListeners(sites.map((s) => s.port)) : undefined,
  ]);
  return new Map(
    sites.map((s, i) => [
      s.name,
      siteRun(s, {
        ...facts[i]!,
        ...(memory ? { memoryBytes: memory.get(s.port)?.bytes ?? 0 } : {}),
      }),
    ]),
  );
}

/** The state in words a customer understands (the site list). */
export function stateWords(run: SiteRun, when: (iso: string | null) => string | null): string {
  switch (run.state) {
    case 'running':
      return 'ready';
    case 'starting':
      return 'starting';
    case 'building':
      return 'building a new version';
    case 'sleeping':
      return `asleep: opens in about ${run.wakeSeconds ?? 5} s when you visit`;
    case 'down':
      return `down${run.since ? ` since ${when(run.since)}` : ''}, being restarted`;
    case 'stopped':
      return 'stopped by the operator';
  }
}
