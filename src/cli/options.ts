import { InvalidArgumentError, type Command } from 'commander';
import type { GlobalOptions } from '../context/context.js';

/** Hands the running command's result to main(), which prints it as the JSON document. */
export type Done = (result: unknown) => void;

export function seconds(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number of seconds');
  return n;
}

export function positive(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1)
    throw new InvalidArgumentError('expected a whole number of at least 1');
  return n;
}

/** The options every command takes, from commander's parse. */
export function globals(cmd: Command): GlobalOptions {
  const o = cmd.optsWithGlobals() as Record<string, unknown>;
  return {
    config: o.config as string | undefined,
    dryRun: Boolean(o.dryRun),
    json: Boolean(o.json),
    quiet: Boolean(o.quiet),
    verbose: Boolean(o.verbose),
    color: o.color !== false,
    wait: o.wait as number | undefined,
  };
}
