import { Option, type Command } from 'commander';
import type { GlobalOptions } from '../context/context.js';
import { globals, positive, type Done } from './options.js';

/**
 * A command of the command line as data: its usage, what it does, its own flags, and how it
 * runs (its module loaded only then, so --help and cron's poll start fast). The groups in
 * this folder list them; register() makes commander's commands of them.
 */
export interface CommandSpec {
  /** Its name and positional arguments, as commander reads them: "create <branch>". */
  use: string;
  about: string;
  options?: (Option | [flags: string, description: string])[];
  hidden?: boolean;
  run(given: Given): Promise<unknown>;
}

/** What a command is given: its positional arguments, its own flags, the flags every command takes. */
export interface Given {
  args: (string | string[] | undefined)[];
  // commander's parse: each command knows its own flags' types.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  o: Record<string, any>;
  g: GlobalOptions;
}

export function register(parent: Command, specs: CommandSpec[], done: Done): void {
  for (const spec of specs) {
    const cmd = parent
      .command(spec.use, spec.hidden ? { hidden: true } : {})
      .description(spec.about);
    for (const o of spec.options ?? [])
      if (o instanceof Option) cmd.addOption(o);
      else cmd.option(o[0], o[1]);
    cmd.action(async (...parsed: unknown[]) => {
      const command = parsed.at(-1) as Command;
      const o = parsed.at(-2) as Given['o'];
      const args = parsed.slice(0, -2) as Given['args'];
      done(await spec.run({ args, o, g: globals(command) }));
    });
  }
}

/** A flag whose value must be a whole number of at least 1. */
export const count = (flags: string, description: string): Option =>
  new Option(flags, description).argParser(positive);

/** A flag whose value is one of these. */
export const oneOf = (flags: string, description: string, choices: string[]): Option =>
  new Option(flags, description).choices(choices);

/** The parsed --customers list, or undefined when the flag was not given. */
export async function customersOf(o: Given['o']): Promise<string[] | undefined> {
  if (o.customers === undefined) return undefined;
  const { parseCustomerList } = await import('../config/names.js');
  return parseCustomerList(o.customers as string);
}
