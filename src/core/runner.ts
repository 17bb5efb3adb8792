import { closeSync, openSync } from 'node:fs';
import { appendFile } from 'node:fs/promises';
import { parseArgsStringToArgv } from 'string-argv';
import { causeOf, StepError, UsageError } from './errors.js';
import { childEnded, childStarted, signalTree } from './children.js';
import { printable } from './printable.js';
import { redact } from './redact.js';

/**
 * The one way karlstage runs an external program: an argument array (never a
 * shell string), a timeout, output appended to the run's log file, and on
 * failure a StepError with the step, the masked command line and the tail of
 * the output. Secrets go in `env`, never in `args`.
 */
export interface RunOptions {
  step: string;
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Inherit no environment: `env` is all of it. */
  cleanEnv?: boolean;
  timeoutMs?: number;
  log?: string;
  input?: string;
  /** Exit statuses that are not a failure (the caller reads the output). */
  okExitCodes?: number[];
}

export interface RunResult {
  stdout: string;
  stderr: string;
  all: string;
  exitCode: number;
}

const TAIL_LINES = 20;

export function commandLine(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map(quoteForDisplay).join(' ');
}

function quoteForDisplay(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
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

/** A line for a run's log: masked, and with no control character raw (logs are read in terminals). */
export async function logLine(log: string | undefined, text: string): Promise<void> {
  if (log)
    await appendFile(log, printable(redact(text), { layout: true }) + '\n').catch(() => undefined);
}

let trace: ((text: string) => void) | undefined;

/** With --verbose: each program's command line (masked) as it starts, and how it ended. */
export function traceCommands(fn: (text: string) => void): void {
  trace = fn;
}

export async function run(
  cmd: string,
  args: readonly string[],
  opts: RunOptions,
): Promise<RunResult> {
  const { execa } = await import('execa');
  const line = commandLine(cmd, args);
  await logLine(
    opts.log,
    `\n### ${new Date().toISOString()} ${opts.step}${opts.cwd ? ` (in ${opts.cwd})` : ''}\n$ ${line}`,
  );
  trace?.(`$ ${redact(line)}`);
  const started = Date.now();
  const child = execa(cmd, [...args], {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: !opts.cleanEnv,
    reject: false,
    all: true,
    stripFinalNewline: false,
    ...(opts.input !== undefined ? { input: opts.input } : { stdin: 'ignore' as const }),
  });
  // Our own timeout: SIGTERM to the program and everything it started (a grandchild such as
  // git's remote helper must not live on holding the pipes), then SIGKILL 2 s later.
  let timedOut = false;
  const timers: NodeJS.Timeout[] = [];
  const stop = (signal: NodeJS.Signals) => (child.pid ? signalTree([child.pid], signal) : []);
  if (opts.timeoutMs)
    timers.push(
      setTimeout(() => {
        timedOut = true;
        stop('SIGTERM');
        timers.push(
          setTimeout(() => {
            stop('SIGKILL');
            // Whatever still holds the output pipes open: stop waiting for it.
            for (const stream of [child.stdout, child.stderr, child.all]) stream?.destroy();
          }, 2000),
        );
      }, opts.timeoutMs),
    );
  childStarted(child.pid);
  const result = await child.finally(() => timers.forEach(clearTimeout));
  childEnded(child.pid);
  trace?.(
    `  ${opts.step}: exit status ${result.exitCode ?? result.signal} in ${Date.now() - started} ms`,
  );
  const all = String(result.all ?? '');
  await logLine(opts.log, all.trimEnd());
  const accepted =
    result.exitCode !== undefined &&
    (opts.okExitCodes ?? []).includes(result.exitCode) &&
    !timedOut;
  if (result.failed && !accepted) {
    const short = (result as { shortMessage?: string }).shortMessage;
    const reason = timedOut
      ? `timed out after ${Math.round((opts.timeoutMs ?? 0) / 1000)} s`
      : result.exitCode !== undefined
        ? `exit status ${result.exitCode}`
        : /ENOENT/.test(short ?? '')
          ? `${cmd} is not installed or not on PATH`
          : (result.signal ?? short ?? 'failed');
    await logLine(opts.log, `--- ${reason}`);
    throw new StepError(opts.step, redact(line), redact(tailWithCause(all)), reason, opts.log);
  }
  return {
    stdout: String(result.stdout),
    stderr: String(result.stderr),
    all,
    exitCode: result.exitCode ?? 0,
  };
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

/** An error that trying again cannot cure (a URL that names no repository, a refused address). */
export const isFinal = (e: unknown): boolean =>
  e instanceof UsageError || (e instanceof Error && (e as { final?: boolean }).final === true);

/**
 * Network reads (clone, fetch, ls-remote, svn info URL) get a few retries with
 * backoff: a staging server's cron job should ride out a short outage. What
 * cannot succeed (isFinal) is not tried again; `signal` ends the waiting.
 */
export async function withRetries<T>(
  fn: () => Promise<T>,
  retries: number,
  opts: { signal?: AbortSignal } = {},
): Promise<T> {
  const { default: pRetry } = await import('p-retry');
  return pRetry(fn, {
    retries,
    minTimeout: 500,
    factor: 2,
    shouldRetry: ({ error }) => !isFinal(error),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
}

/**
 * Start a service that outlives this run (karlstage's wake service): its own session, no
 * terminal, its output appended to `log`. Returns its pid; whether it came up is for the
 * caller to see (it holds its own lock). Secrets go in `env`, never in `args`.
 */
export async function startDetached(
  cmd: string,
  args: readonly string[],
  opts: { step: string; log: string; cwd?: string; env?: Record<string, string> },
): Promise<number> {
  const { spawn } = await import('node:child_process');
  await logLine(
    opts.log,
    `\n### ${new Date().toISOString()} ${opts.step}\n$ ${commandLine(cmd, args)}`,
  );
  trace?.(`$ ${redact(commandLine(cmd, args))}   (detached)`);
  const fd = openSync(opts.log, 'a');
  try {
    const child = spawn(cmd, [...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid!));
      child.once('error', (e) =>
        reject(new StepError(opts.step, redact(commandLine(cmd, args)), '', e.message, opts.log)),
      );
    });
    child.unref();
    return pid;
  } finally {
    closeSync(fd);
  }
}
