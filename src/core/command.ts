import { AsyncLocalStorage } from 'node:async_hooks';
import { commandLine } from './command-line.js';
import { StepError } from './errors.js';
import { run, startDetached, type RunResult } from './runner.js';

export type { RunResult } from './runner.js';

/**
 * A program to run, as a value: the one description that both a dry run's
 * preview and the real run are made from, so the preview cannot drift from
 * what runs. An argument known only when the command runs (the commit a fetch
 * found, the name of tonight's dump) is a `later(LABEL, value)`: the preview
 * shows <LABEL>, the run uses the value.
 *
 * Every external program karlstage starts is a Command, run in one of two ways:
 * - inside a plan, by the step that declared it (`ctx.exec`, core/plan.ts):
 *   anything that changes something, so the dry run shows it;
 * - outside any plan, by `exec` below: the reads that decide a plan or report
 *   (doctor's checks, the production guard's questions, du, nginx -V, versions)
 *   and the demo's throwaway fixtures.
 * Nothing else imports core/runner.ts (scripts/check-layers.mjs refuses it).
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
  /**
   * A service that outlives this run (its own session, no terminal), its output appended to
   * `log`: it is started, not waited for; the result carries its pid.
   */
  detached?: { log: string };
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
    c.detached ? `   (in the background, output to ${c.detached.log})` : '',
    c.when ? `   [${c.when}]` : '',
  ].join('');
}

/** Where a program ran, for tests that compare a real run with its dry run. */
export interface CommandRun {
  argv: string[];
  cwd?: string;
  /** The command's own step name ("postmap"). */
  step: string;
  /** Inside a plan's step: which; `declared` when it ran through that step's ctx.exec. */
  within?: { job: string; step: string; declared: boolean };
}

const current = new AsyncLocalStorage<{ job: string; step: string; declared: boolean }>();
let observer: ((r: CommandRun) => void) | undefined;

/** See every program as it starts (tests: a program run inside a step but not through ctx.exec). */
export function observeCommands(fn: ((r: CommandRun) => void) | undefined): void {
  observer = fn;
}

/**
 * Carry out `fn` as a plan's step (core/plan.ts): a program started meanwhile is counted as
 * that step's, declared when `declared` (it came through ctx.exec).
 */
export function withinStep<T>(
  where: { job: string; step: string; declared: boolean },
  fn: () => Promise<T>,
): Promise<T> {
  return current.run(where, fn);
}

/**
 * Run it now. Outside a plan this is the one way in: for reads (and the demo's fixtures);
 * what changes something belongs in a plan's step, which a dry run shows. A failure is
 * explained when the command knows better words.
 */
export async function exec(c: Command, log?: string): Promise<RunResult> {
  const argv = argvOf(c);
  const within = current.getStore();
  observer?.({
    argv: [c.program, ...argv],
    ...(c.cwd ? { cwd: c.cwd } : {}),
    step: c.step,
    ...(within ? { within } : {}),
  });
  try {
    if (c.detached) {
      const pid = await startDetached(c.program, argv, {
        step: c.step,
        log: c.detached.log,
        cwd: c.cwd,
        env: c.env?.(),
      });
      return { stdout: '', stderr: '', all: '', exitCode: 0, pid };
    }
    return await run(c.program, argv, {
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

/** How a step (or a read outside any plan) runs a command it declared: ctx.exec, or exec. */
export type Exec = (command: Command) => Promise<RunResult>;

/**
 * A unit of work smaller than a plan step, as a value: the commands it may run (a dry run
 * shows them), what else it changes, and how it runs them with the step's Exec. The VCS,
 * the staging server and others hand these to the step that carries them out.
 */
export interface Procedure<T> {
  commands: Command[];
  /** What it changes besides running programs ("remove …/index.lock"). */
  effects?: string[];
  run(exec: Exec): Promise<T>;
}
