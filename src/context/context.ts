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
  g: GlobalOptions;
}

export function outputFor(g: GlobalOptions): Promise<Output> {
  return Output.create({ json: g.json, quiet: g.quiet, verbose: g.verbose, color: g.color });
}

/** The configuration (checked whole), the one printer, and the options: what every command starts from. */
export async function commandContext(g: GlobalOptions): Promise<CommandContext> {
  const out = await outputFor(g);
  if (g.verbose) traceCommands((t) => out.debug(t));
  // A lock whose holder cannot be alive is taken over at once, and the operator is told.
  onTakeover((t) => out.warn(t));
  onWait((t) => out.progress(t));
  const cfg = loadConfig(g.config, g.cwd ?? process.cwd());
  if (!g.dryRun) recordChildrenIn(layout.runs(cfg.root)); // a dry run takes no lock, and writes nothing
  return { cfg, out, g };
}
