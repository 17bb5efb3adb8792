import { loadConfig, type Config } from '../config/config.js';
import { recordChildrenIn } from '../core/children.js';
import { onTakeover, onWait } from '../core/lock.js';
import { Output } from '../core/output.js';
import { traceCommands } from '../core/logs.js';
import { layout } from '../model/layout.js';

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
  /** The options every command takes (--dry-run, --json, --wait …). */
  options: GlobalOptions;
}

export function outputFor(options: GlobalOptions): Promise<Output> {
  return Output.create({
    json: options.json,
    quiet: options.quiet,
    verbose: options.verbose,
    color: options.color,
  });
}

/** The configuration (checked whole), the one printer, and the options: what every command starts from. */
export async function commandContext(options: GlobalOptions): Promise<CommandContext> {
  const out = await outputFor(options);
  if (options.verbose) traceCommands((t) => out.debug(t));
  // A lock whose holder cannot be alive is taken over at once, and the operator is told.
  onTakeover((t) => out.warn(t));
  onWait((t) => out.progress(t));
  const cfg = loadConfig(options.config, options.cwd ?? process.cwd());
  if (!options.dryRun) recordChildrenIn(layout.runs(cfg.root)); // a dry run takes no lock, and writes nothing
  return { cfg, out, options };
}
