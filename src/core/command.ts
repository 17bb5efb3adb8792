import { StepError } from './errors.js';
import { commandLine, run, type RunResult } from './runner.js';

/**
 * A program to run, as a value: the one description that both a dry run's
 * preview and the real run are made from, so the preview cannot drift from
 * what runs. An argument known only when the command runs (the commit a fetch
 * found, the name of tonight's dump) is a `later(LABEL, value)`: the preview
 * shows <LABEL>, the run uses the value.
 */
export class Later {
  constructor(
    readonly label: string,
    readonly value: () => string,
  ) {}
}

export const later = (label: string, value: () => string) => new Later(label, value);

export type Arg = string | Later;

export interface Command {
  program: string;
  args: readonly Arg[];
  /** Names it in progress lines, the log and errors: "branch1: build". */
  step: string;
  cwd?: string;
  /** Its environment beyond the inherited one; computed when it runs (it may hold secrets, or values known only then). */
  env?: () => Record<string, string | undefined>;
  /** Inherit nothing: `env` is the whole environment. */
  cleanEnv?: boolean;
  /** Its standard input (for example a password, which must never be an argument). */
  input?: () => string;
  timeoutMs?: number;
  /** Exit statuses that are not a failure (the caller reads the output). */
  okExitCodes?: number[];
  /** It runs only sometimes: said in the preview ("when the head moved"). */
  when?: string;
  /** Turn a failure into the error the operator should read (a refusal, "gone upstream"). */
  explain?: (e: StepError) => Error | undefined;
}

const resolve = (a: Arg) => (typeof a === 'string' ? a : a.value());
const shown = (a: Arg) => (typeof a === 'string' ? a : `<${a.label}>`);

/** The argument list it runs with. */
export const argvOf = (c: Command): string[] => c.args.map(resolve);

/** The argument list as a dry run shows it (placeholders as <LABEL>). */
export const plannedArgv = (c: Command): string[] => c.args.map(shown);

/** One preview line: "$ program args   (in DIR)   [when …]". */
export function previewOf(c: Command): string {
  return [
    `$ ${commandLine(c.program, plannedArgv(c))}`,
    c.cwd ? `   (in ${c.cwd})` : '',
    c.when ? `   [${c.when}]` : '',
  ].join('');
}

/** Run it through the one runner; a failure explained when the command knows better words. */
export async function exec(c: Command, log?: string): Promise<RunResult> {
  try {
    return await run(c.program, argvOf(c), {
      step: c.step,
      cwd: c.cwd,
      env: c.env?.(),
      cleanEnv: c.cleanEnv,
      input: c.input?.(),
      timeoutMs: c.timeoutMs,
      okExitCodes: c.okExitCodes,
      log,
    });
  } catch (e) {
    if (e instanceof StepError && c.explain) throw c.explain(e) ?? e;
    throw e;
  }
}
