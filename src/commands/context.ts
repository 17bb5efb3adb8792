import { formatDuration } from '../core/format.js';
import { loadConfig, type Config } from '../config/config.js';
import { EXIT, KarlstageError, LockedError, UsageError } from '../core/errors.js';
import { Output } from '../core/output.js';
import { traceCommands } from '../core/runner.js';
import { recordChildrenUnder } from '../core/children.js';
import type { JobResult } from '../core/plan.js';

/** Options every command takes (DESIGN.md: Commands). */
export interface GlobalOptions {
  config?: string;
  dryRun?: boolean;
  json?: boolean;
  quiet?: boolean;
  verbose?: boolean;
  color?: boolean;
  wait?: number;
  /** Where to look for karlstage.ini; the process's folder by default (tests pass their own). */
  cwd?: string;
}

export interface CommandContext {
  cfg: Config;
  out: Output;
  g: GlobalOptions;
}

export function outputFor(g: GlobalOptions): Promise<Output> {
  return Output.create({ json: g.json, quiet: g.quiet, verbose: g.verbose, color: g.color });
}

export async function commandContext(g: GlobalOptions): Promise<CommandContext> {
  const out = await outputFor(g);
  if (g.verbose) traceCommands((t) => out.debug(t));
  const cfg = loadConfig(g.config, g.cwd ?? process.cwd());
  if (!g.dryRun) recordChildrenUnder(cfg.root); // a dry run takes no lock, and writes nothing
  return { cfg, out, g };
}

/**
 * After jobs ran: one line each, then fail if any failed. A single job's error
 * is passed on as it is (its exit status and details); several are summed up,
 * naming each failure. Exit 75 when every failure was a held lock.
 */
export function finishJobs(out: Output, results: JobResult[], what: string): void {
  const failed = results.filter((r) => !r.ok);
  if (results.length === 1 && failed[0]?.error) throw failed[0].error;
  for (const r of results) {
    const took = formatDuration(r.durationMs);
    if (r.ok)
      out.line(`${out.c.green('ok')}      ${r.name}${r.skipped ? `: ${r.skipped}` : ''} (${took})`);
    else out.line(`${out.c.red('failed')}  ${r.name}: ${r.error?.message} (${took})`);
  }
  if (failed.length === 0) return;
  const names = failed.map((r) => `${r.name}: ${r.error?.message}`);
  const code = failed.every((r) => r.error instanceof LockedError)
    ? EXIT.locked
    : failed.every((r) => r.error instanceof UsageError)
      ? EXIT.usage
      : EXIT.failure;
  throw new KarlstageError(`${what}: ${failed.length} of ${results.length} failed`, code, names);
}

export function jobsAsJson(results: JobResult[]) {
  return results.map((r) => ({
    name: r.name,
    ok: r.ok,
    ...(r.skipped ? { skipped: r.skipped } : {}),
    ...(r.error ? { error: r.error.message, details: r.error.details } : {}),
    durationMs: r.durationMs,
  }));
}

/**
 * After a change to the branch sites: regenerate the site list (a failure to
 * write it is a warning), and with [staging] routes = auto, the routes (a
 * failure there fails the command: the change stands, but is not reachable).
 */
export async function afterChange(ctx: CommandContext, opts: { routes: boolean }): Promise<void> {
  if (ctx.g.dryRun) return;
  const { refreshSiteList } = await import('../web/site-list.js');
  await refreshSiteList(ctx.cfg).catch((e: Error) =>
    ctx.out.warn(`could not refresh the site list: ${e.message}`),
  );
  if (ctx.cfg.staging.mailDomain) {
    // A created or destroyed site can start or end a customer's staged mail route.
    const { writeTransport } = await import('../web/mail.js');
    const { readState } = await import('../core/state.js');
    await writeTransport(ctx.cfg, await readState(ctx.cfg.root)).catch((e: Error) =>
      ctx.out.warn(`could not write the mail transport map: ${e.message}`),
    );
  }
  if (!opts.routes || ctx.cfg.staging.routes !== 'auto') return;
  const { installRoutes } = await import('./routes.js');
  try {
    await installRoutes(ctx);
  } catch (e) {
    const err = e as KarlstageError;
    throw new KarlstageError(
      `the change is made, but the routes were not updated: ${err.message}; fix that, then run "karlstage routes"`,
      EXIT.failure,
      err.details ?? [],
    );
  }
}
