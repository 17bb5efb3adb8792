import { parseArgsStringToArgv } from 'string-argv';
import { causeOf, UsageError } from './errors.js';

/**
 * The text of programs, without running any: a command line as people read it
 * (in previews, logs and errors), a configured step split into an argument
 * array, and the tail of a program's output that an error quotes.
 */

const TAIL_LINES = 20;

export function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map(quoteForDisplay).join(' ');
}

function quoteForDisplay(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/** A configured step such as `bin/buildout -N`, split into an argument array without a shell. */
export function splitCommand(text: string, key: string): string[] {
  if (/[;&|<>`$]/.test(text))
    throw new UsageError(
      `${key} = ${text}: shell syntax is not run; put it in a script and name the script`,
    );
  const argv = parseArgsStringToArgv(text);
  if (argv.length === 0) throw new UsageError(`${key} is empty`);
  return argv;
}

export function tail(text: string, lines = TAIL_LINES): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * The tail of a failed program's output, led by the line that says why when that line came
 * earlier (pg_dump's cause, then a long query it quotes): the error names the real cause.
 */
export function tailWithCause(text: string): string {
  const last = tail(text);
  const cause = causeOf(text);
  return cause && !causeOf(last)?.startsWith(cause.slice(0, 200)) ? `${cause}\n…\n${last}` : last;
}
