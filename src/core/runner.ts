import { closeSync, openSync } from 'node:fs';
import { StepError } from './errors.js';
import { childEnded, childStarted, signalTree } from './children.js';
import { commandLine, tailWithCause } from './command-line.js';
import { logLine, trace } from './logs.js';
import { redact } from './redact.js';

/**
 * What starts an external program: an argument array (never a shell string), a
 * timeout, output appended to the run's log file, and on failure a StepError
 * with the step, the masked command line and the tail of the output. Secrets go
 * in `env`, never in `args`. Only core/command.ts imports this file (checked by
 * scripts/check-layers.mjs): everyone else runs a `Command` value, in a plan's
 * step (ctx.exec) or, outside any plan, through exec() of core/command.ts.
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
  /** A service started in the background (startDetached): its process id. */
  pid?: number;
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
  trace(`$ ${redact(line)}`);
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
  trace(
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
    throw new StepError({
      step: opts.step,
      commandLine: redact(line),
      outputTail: redact(tailWithCause(all)),
      reason,
      ...(opts.log ? { logFile: opts.log } : {}),
    });
  }
  return {
    stdout: String(result.stdout),
    stderr: String(result.stderr),
    all,
    exitCode: result.exitCode ?? 0,
  };
}

/**
 * Start a service that outlives this run (karlstage's wake service): its own session, no
 * terminal, its output appended to `log`. Returns its pid; whether it came up is for the
 * caller to see (it holds its own lock). Secrets go in `env`, never in `args`.
 */
export async function startDetached(
  cmd: string,
  args: readonly string[],
  opts: { step: string; log: string; cwd?: string; env?: Record<string, string | undefined> },
): Promise<number> {
  const { spawn } = await import('node:child_process');
  await logLine(
    opts.log,
    `\n### ${new Date().toISOString()} ${opts.step}\n$ ${commandLine(cmd, args)}`,
  );
  trace(`$ ${redact(commandLine(cmd, args))}   (detached)`);
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
        reject(
          new StepError({
            step: opts.step,
            commandLine: redact(commandLine(cmd, args)),
            outputTail: '',
            reason: e.message,
            logFile: opts.log,
          }),
        ),
      );
    });
    child.unref();
    return pid;
  } finally {
    closeSync(fd);
  }
}
