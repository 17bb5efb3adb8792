import { tidyLogs } from './logs.js';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isKarlstageError, KarlstageError, messageOf } from './errors.js';
import { layout } from './layout.js';
import type { Output } from './output.js';
import { logLine } from './runner.js';

/**
 * A command first works out its plan: jobs (usually one per branch site), each
 * a list of steps that say what they will run or write. --dry-run prints the
 * plan; a real run carries it out. One plan, two uses.
 */
export interface StepContext {
  log: string;
  /** Register how to remove what this step created, if a later step fails. */
  onUndo(fn: () => Promise<void>): void;
  /** Report progress within a step (shown live on a terminal, as a line in cron). */
  say(text: string): void;
  /** Something the operator must hear even though the job goes on: printed on stderr after the run, logged. */
  warn(text: string): void;
}

export interface Step {
  title: string;
  /** What it does: "$ command line" for programs, "write PATH" for files. */
  preview: string[];
  /** Return skipRest to end the job early and successfully (e.g. "already built"). */
  run(ctx: StepContext): Promise<void | { skipRest: string }>;
}

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
  jobs: Job[];
  concurrency?: number;
}

export interface ExecuteOptions {
  out: Output;
  root: string;
  dryRun?: boolean;
}

export function printPlan(plan: Plan, out: Output): void {
  out.line(out.c.bold(`Dry run: ${plan.command} would do this (nothing is changed):`));
  for (const job of plan.jobs) {
    out.line(`${job.name}:`);
    for (const step of job.steps) {
      out.line(`  ${step.title}`);
      for (const p of step.preview) out.line(out.c.dim(`    ${p}`));
    }
  }
}

export function planAsJson(plan: Plan) {
  return {
    dryRun: true,
    command: plan.command,
    jobs: plan.jobs.map((j) => ({
      name: j.name,
      steps: j.steps.map((s) => ({ title: s.title, preview: s.preview })),
    })),
  };
}

export async function newLogFile(root: string, command: string): Promise<string> {
  const dir = layout.logs(root);
  await mkdir(dir, { recursive: true });
  await tidyLogs(root).catch(() => undefined); // housekeeping must never stop a run
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  return join(dir, `${stamp}-${command.split(' ')[0]}-${process.pid}.log`);
}

async function runJob(job: Job, log: string, say: (t: string) => void): Promise<JobResult> {
  const started = Date.now();
  const undo: (() => Promise<void>)[] = [];
  const warnings: string[] = [];
  const ctx: StepContext = {
    log,
    onUndo: (fn) => undo.push(fn),
    say,
    warn: (text) => {
      warnings.push(text);
      void logLine(log, `warning: ${text}`);
    },
  };
  let result: JobResult;
  try {
    let skipped: string | undefined;
    for (const step of job.steps) {
      say(step.title);
      await logLine(log, `## ${job.name}: ${step.title}`);
      const r = await step.run(ctx);
      if (r && 'skipRest' in r) {
        skipped = r.skipRest;
        break;
      }
    }
    result = { name: job.name, ok: true, skipped, durationMs: Date.now() - started };
  } catch (e) {
    const error = isKarlstageError(e)
      ? e
      : new KarlstageError(messageOf(e), 1, [String((e as Error)?.stack ?? '')]);
    await logLine(log, `!! ${job.name}: ${error.message}\n${error.details.join('\n')}`);
    for (const fn of undo.reverse()) {
      await fn().catch((u) => logLine(log, `!! undo failed: ${messageOf(u)}`));
    }
    result = { name: job.name, ok: false, error, durationMs: Date.now() - started };
  }
  if (warnings.length) result.warnings = warnings;
  if (job.finally) await job.finally(result).catch((e) => logLine(log, `!! ${messageOf(e)}`));
  return result;
}

/** Carry out a plan; jobs run in parallel up to `concurrency`, steps within a job in order. */
export async function executePlan(plan: Plan, opts: ExecuteOptions): Promise<JobResult[]> {
  const { out, root } = opts;
  if (opts.dryRun) {
    if (out.json) out.result(planAsJson(plan));
    else printPlan(plan, out);
    return plan.jobs.map((j) => ({ name: j.name, ok: true, skipped: 'dry run', durationMs: 0 }));
  }
  const log = await newLogFile(root, plan.command);
  await logLine(log, `# karlstage ${plan.command} (pid ${process.pid})`);
  const results: JobResult[] = [];
  const { Listr, PRESET_TIMESTAMP } = await import('listr2');
  const silent = out.json || out.quiet;
  const list = new Listr(
    plan.jobs.map((job) => ({
      title: job.name,
      task: async (_: unknown, task: { output: string; title: string }) => {
        const result = await runJob(job, log, (t) => {
          task.output = plan.jobs.length > 1 ? `${job.name}: ${t}` : t;
        });
        results.push(result);
        if (!result.ok) throw new Error(result.error?.message ?? 'failed');
        if (result.skipped) task.title = `${job.name}: ${result.skipped}`;
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
