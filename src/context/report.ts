import { EXIT, KarlstageError, LockedError } from '../core/errors.js';
import { formatDuration } from '../core/format.js';
import { executePlan, planAsJson, printPlan, type JobResult, type Plan } from '../core/plan.js';
import { layout } from '../model/layout.js';
import type { CommandContext } from './context.js';

/**
 * The one reporter of a command: what it prints for people while it runs,
 * and the one result it returns — which the CLI prints as the one JSON
 * document with --json (a failure carries its result the same way).
 */

export type DryRunResult = ReturnType<typeof planAsJson>;

/** --dry-run: print the plan for people (nothing for --json) and return it as the result. */
export function dryRun(ctx: CommandContext, plan: Plan): DryRunResult {
  if (!ctx.out.json) printPlan(plan, ctx.out);
  return planAsJson(plan);
}

/** Carry a plan out, logging to this staging root's run logs. */
export function carryOut(ctx: CommandContext, plan: Plan): Promise<JobResult[]> {
  return executePlan(plan, { out: ctx.out, logs: layout.logs(ctx.cfg.root) });
}

export function jobsAsJson(results: JobResult[]) {
  return results.map((r) => ({
    name: r.name,
    ok: r.ok,
    ...(r.skipped ? { skipped: r.skipped } : {}),
    ...(r.error ? { error: r.error.message, details: r.error.details } : {}),
    ...(r.warnings ? { warnings: r.warnings } : {}),
    durationMs: r.durationMs,
  }));
}

/** An error that also carries the command's result, for the JSON document. */
export function withResult<E extends KarlstageError>(e: E, result: object): E {
  return Object.assign(e, { result });
}

/**
 * Every job was refused (exit 2) before it changed anything: then the command
 * writes nothing after them either (no state record, no site list, no mail map).
 */
export function refused(results: JobResult[]): boolean {
  return results.length > 0 && results.every((r) => !r.ok && r.error?.exitCode === EXIT.usage);
}

/**
 * After jobs ran: one line each, then fail if any failed. A single job's error
 * is passed on as it is (its exit status and details); several are summed up,
 * naming each failure. Exit 75 when every failure was a held lock, 2 when
 * every job was refused (nothing was changed); a mixed result (some done, some
 * refused) is 1. The returned (or carried) result is `result`.
 */
/** How a command with its own words sums its jobs up (the sync: per customer and site). */
export interface Summary {
  what: string;
  /** Lines printed instead of one per job. */
  lines?: string[];
  /** The error's first line, from the failed jobs (instead of "WHAT: N of M failed"). */
  headline?: (failed: JobResult[]) => string;
  /** A failed job's lines among the error's details (instead of its message). */
  details?: (r: JobResult) => string[];
}

export function finishJobs<T extends object>(
  ctx: CommandContext,
  results: JobResult[],
  what: string | Summary,
  result: T,
): T {
  const { out } = ctx;
  const s: Summary = typeof what === 'string' ? { what } : what;
  const failed = results.filter((r) => !r.ok);
  if (!s.headline && results.length === 1 && failed[0]?.error)
    throw withResult(failed[0].error, result);
  for (const line of s.lines ?? results.map((r) => jobLine(r, out))) out.line(line);
  if (failed.length === 0) return result;
  const code = failed.every((r) => r.error instanceof LockedError)
    ? EXIT.locked
    : refused(results)
      ? EXIT.usage
      : EXIT.failure;
  throw withResult(
    new KarlstageError(
      s.headline?.(failed) ?? `${s.what}: ${failed.length} of ${results.length} failed`,
      code,
      failed.flatMap((r) => s.details?.(r) ?? [`${r.name}: ${r.error?.message}`]),
    ),
    result,
  );
}

/** A job's line for people: ok or failed, what it said, how long it took. */
function jobLine(r: JobResult, out: CommandContext['out']): string {
  const took = formatDuration(r.durationMs);
  return r.ok
    ? `${out.c.green('ok')}      ${r.name}${r.skipped ? `: ${r.skipped}` : ''} (${took})`
    : `${out.c.red('failed')}  ${r.name}: ${r.error?.message} (${took})`;
}
