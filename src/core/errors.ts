/** Exit statuses, as DESIGN.md fixes them. */
export const EXIT = { ok: 0, failure: 1, usage: 2, locked: 75 } as const;

/** An error the user can act on: printed as one line (plus details), never as a stack. */
export class KarlstageError extends Error {
  /** What the command got done before it failed: part of the JSON document with --json. */
  result?: object;

  constructor(
    message: string,
    readonly exitCode: number = EXIT.failure,
    readonly details: string[] = [],
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** Bad input, bad usage or bad configuration: exit 2, and nothing was changed. */
export class UsageError extends KarlstageError {
  constructor(message: string, details: string[] = []) {
    super(message, EXIT.usage, details);
  }
}

/** Another run holds a lock and --wait ran out: exit 75 (EX_TEMPFAIL). */
export class LockedError extends KarlstageError {
  constructor(message: string) {
    super(message, EXIT.locked);
  }
}

/** A bug in karlstage, not a problem the operator can fix: shown with its stack and a request to report it. */
export class InternalError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InternalError';
  }
}

/** An external program failed: carries the step, its command line and the tail of its output. */
export class StepError extends KarlstageError {
  constructor(
    readonly step: string,
    readonly commandLine: string,
    readonly outputTail: string,
    reason: string,
    readonly logFile?: string,
  ) {
    const details = [`$ ${commandLine}`];
    if (outputTail.trim())
      details.push(
        ...outputTail
          .trimEnd()
          .split('\n')
          .map((l) => `  ${l}`),
      );
    if (logFile) details.push(`full output: ${logFile}`);
    super(`${step} failed: ${reason}`, EXIT.failure, details);
  }
}

/**
 * One line for a status table: the message and, for a failed program, the
 * last line it printed that reads like an error (a hint often follows it).
 */
export function briefly(e: unknown): string {
  const lines = e instanceof StepError ? e.outputTail.trim().split('\n') : [];
  const said = (lines.filter((l) => /error|fatal|failed/i.test(l)).at(-1) ?? lines.at(-1))?.trim();
  return said ? `${messageOf(e)} (${said})` : messageOf(e);
}

export function isKarlstageError(e: unknown): e is KarlstageError {
  return e instanceof KarlstageError;
}

export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
