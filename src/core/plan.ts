import { logLine, tidyLogs } from './logs.js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  argvOf,
  exec,
  plannedArgv,
  previewOf,
  withinStep,
  type Command,
  type RunResult,
} from './command.js';
import {
  asFailure,
  EXIT,
  InternalError,
  isKarlstageError,
  KarlstageError,
  messageOf,
  osError,
} from './errors.js';
import { forPeople, type Output } from './output.js';

/**
 * A command first works out its plan: jobs (usually one per branch site), each
 * a list of steps. A step declares the programs it runs (commands, as values:
 * core/command.ts) and what else it changes (effects: files written, folders
 * removed). --dry-run prints exactly that; a real run carries the steps out,
 * and a step can run no program it did not declare. One plan, two uses.
 */
export interface StepContext {
  log: string;
  /** Run one of this step's declared commands (any other is refused: the preview would have lied). */
  exec(command: Command): Promise<RunResult>;
  /** Register how to remove what this step created, if a later step fails. */
  onUndo(fn: () => Promise<void>): void;
  /** Report progress within a step (shown live on a terminal, as a line in cron). */
  say(text: string): void;
  /** Something the operator must hear even though the job goes on: printed on stderr after the run, logged. */
  warn(text: string): void;
}

export interface Step {
  title: string;
  /** The programs it runs, in order (some only `when` something holds). */
  commands?: Command[];
  /** What else it changes: "write FILE", "remove DIR/". */
  effects?: string[];
  /**
   * It changes nothing (a read, or a cache such as the git store): a refusal after it still
   * leaves everything as it was (exit 2). A refusal after any other step is a failure (exit 1).
   */
  readOnly?: boolean;
  /** Return skipRest to end the job early and successfully (e.g. "already built"). */
  run(ctx: StepContext): Promise<void | { skipRest: string }>;
}

/** Everything a step would do, as the dry run prints it. */
export const previewOfStep = (step: Step): string[] => [
  ...(step.commands ?? []).map(previewOf),
  ...(step.effects ?? []),
];

export interface Job {
  name: string;
  steps: Step[];
  /** Runs after the job, success or failure, and cannot fail it (records state). */
  finally?(result: JobResult): Promise<void>;
}

export interface JobResult {
  name: string;
  ok: boolean;
  skipped?: string;
  error?: KarlstageError;
  durationMs: number;
  warnings?: string[];
}

export interface Plan {
  command: string;
  /** Runs first, alone (e.g. one fetch for every branch site); if it fails, no job starts. */
  before?: Job;
  jobs: Job[];
  concurrency?: number;
}

/** The jobs in the order a dry run shows them. */
const allJobs = (plan: Plan): Job[] => [...(plan.before ? [plan.before] : []), ...plan.jobs];

export interface ExecuteOptions {
  out: Output;
  /** The folder of the run logs. */
  logs: string;
}

export function printPlan(plan: Plan, out: Output): void {
  out.line(out.c.bold(`Dry run: ${plan.command} would do this (nothing is changed):`));
  for (const job of allJobs(plan)) {
    out.line(`${job.name}:`);
    for (const step of job.steps) {
      out.line(`  ${step.title}`);
      for (const p of previewOfStep(step)) out.line(out.c.dim(`    ${p}`));
    }
  }
}

export function planAsJson(plan: Plan) {
  return {
    dryRun: true,
    command: plan.command,
    jobs: allJobs(plan).map((j) => ({
      name: j.name,
      steps: j.steps.map((s) => ({
        title: s.title,
        preview: previewOfStep(s),
        commands: (s.commands ?? []).map((c) => ({
          argv: [c.program, ...plannedArgv(c)],
          ...(c.cwd ? { cwd: c.cwd } : {}),
          ...(c.when ? { when: c.when } : {}),
        })),
        effects: s.effects ?? [],
      })),
    })),
  };
}

/** What ran, step by step: for tests that compare a real run with its dry run. */
export interface StepRun {
  job: string;
  step: string;
  argv: string[];
  cwd?: string;
}
let observer: ((run: StepRun) => void) | undefined;
export function observeSteps(fn: ((run: StepRun) => void) | undefined): void {
  observer = fn;
}

export async function newLogFile(dir: string, command: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await tidyLogs(dir).catch(() => undefined); // housekeeping must never stop a run
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return join(dir, `${stamp}-${command.split(' ')[0]}-${process.pid}.log`);
}

/** The same program with the same argument list in the same folder (a `when` note aside). */
const sameCommand = (a: Command, b: Command) =>
  a === b ||
  (a.program === b.program &&
    a.cwd === b.cwd &&
    plannedArgv(a).join('\0') === plannedArgv(b).join('\0'));

async function runJob(job: Job, log: string, say: (t: string) => void): Promise<JobResult> {
  const started = Date.now();
  const undo: (() => Promise<void>)[] = [];
  const warnings: string[] = [];
  // Each step gets its own context: an undo it registers runs later, with its own commands.
  const contextOf = (step: Step): StepContext => ({
    log,
    exec: (command) => {
      if (!step.commands?.some((declared) => sameCommand(declared, command)))
        throw new InternalError(
          `step "${step.title}" ran a program it did not declare: ${previewOf(command)}`,
        );
      observer?.({
        job: job.name,
        step: step.title,
        argv: [command.program, ...argvOf(command)],
        ...(command.cwd ? { cwd: command.cwd } : {}),
      });
      return withinStep({ job: job.name, step: step.title, declared: true }, () =>
        exec(command, log),
      );
    },
    onUndo: (fn) => undo.push(fn),
    say,
    warn: (text) => {
      warnings.push(text);
      void logLine(log, `warning: ${text}`);
    },
  });
  let result: JobResult;
  let changed = false; // a step that may change something has run
  try {
    let skipped: string | undefined;
    for (const step of job.steps) {
      say(step.title);
      await logLine(log, `## ${job.name}: ${step.title}`);
      const r = await withinStep({ job: job.name, step: step.title, declared: false }, () =>
        step.run(contextOf(step)),
      );
      changed ||= !step.readOnly;
      if (typeof r === 'object' && r !== null && 'skipRest' in r) {
        skipped = r.skipRest;
        break;
      }
    }
    result = { name: job.name, ok: true, skipped, durationMs: Date.now() - started };
  } catch (e) {
    const known = isKarlstageError(e)
      ? e
      : (osError(e) ??
        new KarlstageError(
          `${e instanceof InternalError ? 'internal error, please report it: ' : ''}${messageOf(e)}`,
          1,
          [String((e as Error)?.stack ?? '')],
        ));
    const error = changed ? asFailure(known) : known;
    await logLine(log, `!! ${job.name}: ${error.message}\n${error.details.join('\n')}`);
    for (const fn of undo.reverse()) {
      await fn().catch((u) => logLine(log, `!! undo failed: ${messageOf(u)}`));
    }
    result = { name: job.name, ok: false, error, durationMs: Date.now() - started };
  }
  if (warnings.length) result.warnings = warnings;
  if (job.finally) {
    const done = result;
    await job.finally(done).catch(async (e: unknown) => {
      // The work ran, but what it did is not written down: never report that as a success.
      await logLine(log, `!! ${job.name}: recording the result failed: ${messageOf(e)}`);
      result = {
        ...done,
        ok: false,
        error: new KarlstageError(
          `${done.ok ? 'the work is done' : (done.error?.message ?? 'it failed')}, but its result could not be recorded: ${messageOf(e)}; the next run finishes it`,
          isKarlstageError(e) && e.exitCode !== EXIT.usage ? e.exitCode : EXIT.failure,
        ),
      };
    });
  }
  return result;
}

/** Carry out a plan; jobs run in parallel up to `concurrency`, steps within a job in order. */
export async function executePlan(plan: Plan, opts: ExecuteOptions): Promise<JobResult[]> {
  const { out, logs } = opts;
  const log = await newLogFile(logs, plan.command);
  await logLine(log, `# karlstage ${plan.command} (pid ${process.pid})`);
  if (plan.before) {
    const first = await runJob(plan.before, log, (t) => out.progress(`${plan.before!.name}: ${t}`));
    for (const w of first.warnings ?? []) out.warn(`${first.name}: ${w}`);
    // With no job to carry it (the store step of a poll that builds nothing), its own result.
    if (!first.ok && plan.jobs.length === 0) return [first];
    if (!first.ok) {
      // Nothing else starts; each job says why.
      const error = new KarlstageError(
        `${first.name}: ${first.error?.message}`,
        first.error?.exitCode,
        first.error?.details,
      );
      return plan.jobs.map((j) => ({ name: j.name, ok: false, error, durationMs: 0 }));
    }
  }
  const results: JobResult[] = [];
  const { Listr, PRESET_TIMESTAMP } = await import('listr2');
  const silent = out.json || out.quiet;
  const list = new Listr(
    plan.jobs.map((job) => ({
      title: job.name,
      task: async (_: unknown, task: { output: string; title: string }) => {
        // listr2 writes to the terminal itself: what it is given gets the printer's care.
        const result = await runJob(job, log, (t) => {
          task.output = forPeople(plan.jobs.length > 1 ? `${job.name}: ${t}` : t);
        });
        results.push(result);
        if (!result.ok) throw new Error(forPeople(result.error?.message ?? 'failed'));
        if (result.skipped) task.title = forPeople(`${job.name}: ${result.skipped}`);
      },
    })),
    {
      concurrent: plan.concurrency ?? 1,
      exitOnError: false,
      registerSignalListeners: false,
      renderer: silent ? 'silent' : 'default',
      fallbackRenderer: silent ? 'silent' : 'simple',
      fallbackRendererCondition: !out.tty,
      rendererOptions: { collapseErrors: true, showErrorMessage: true },
      fallbackRendererOptions: { timestamp: PRESET_TIMESTAMP },
    },
  );
  await list.run().catch(() => undefined);
  for (const r of results) for (const w of r.warnings ?? []) out.warn(`${r.name}: ${w}`);
  // Report in plan order, not completion order.
  return plan.jobs.map((j) => results.find((r) => r.name === j.name)!);
}
