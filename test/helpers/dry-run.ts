import { expect } from 'vitest';
import { observeCommands, type CommandRun } from '../../src/core/command.js';
import { observeSteps, type StepRun } from '../../src/core/plan.js';
import { onCleanup } from './tmp.js';

/** A dry run's plan, as `--dry-run --json` gives it (planAsJson). */
export interface Planned {
  jobs: {
    name: string;
    steps: { title: string; commands: { argv: string[]; when?: string }[] }[];
  }[];
}

/** A planned argument matches what ran: equal, or a <PLACEHOLDER> standing for a value known only then. */
const argMatches = (planned: string, ran: string) => /^<.+>$/.test(planned) || planned === ran;
const matches = (planned: string[], ran: string[]) =>
  planned.length === ran.length && planned.every((p, i) => argMatches(p, ran[i]!));

type Shown = { argv: string[]; when?: string };

/**
 * Whether the programs that ran fit what the step showed: in the same order, each the same as
 * one shown, every one shown run unless it was shown as conditional. (A conditional command can
 * look like one that follows it: the fit is searched for, not taken greedily.)
 */
function fits(shown: Shown[], ran: string[][]): boolean {
  const memo = new Map<string, boolean>();
  const fit = (i: number, j: number): boolean => {
    const key = `${i},${j}`;
    if (memo.has(key)) return memo.get(key)!;
    let ok: boolean;
    if (j === ran.length) ok = shown.slice(i).every((c) => c.when);
    else if (i === shown.length) ok = false;
    else
      ok =
        (matches(shown[i]!.argv, ran[j]!) && fit(i + 1, j + 1)) ||
        (Boolean(shown[i]!.when) && fit(i + 1, j));
    memo.set(key, ok);
    return ok;
  };
  return fit(0, 0);
}

/** Where they part, said as the first program that ran but was not shown, or was shown but did not run. */
function misfit(where: string, shown: Shown[], ran: string[][]): string[] {
  const problems: string[] = [];
  let i = 0;
  for (const e of ran) {
    while (i < shown.length && !matches(shown[i]!.argv, e)) {
      if (!shown[i]!.when)
        problems.push(`${where}: shown but not run: ${shown[i]!.argv.join(' ')}`);
      i++;
    }
    if (i === shown.length) {
      problems.push(`${where}: ran but not shown (or out of order): ${e.join(' ')}`);
      return problems;
    }
    i++;
  }
  for (; i < shown.length; i++)
    if (!shown[i]!.when) problems.push(`${where}: shown but not run: ${shown[i]!.argv.join(' ')}`);
  return problems.length ? problems : [`${where}: what ran does not fit what was shown`];
}

/**
 * What a dry run showed, against what the real run executed, step by step:
 * every program that ran was shown, with the same argument list, in the same
 * order; every program shown ran, unless it was shown as conditional.
 */
export function compare(plan: Planned, ran: StepRun[]): string[] {
  const problems: string[] = [];
  for (const job of plan.jobs)
    for (const step of job.steps) {
      const executed = ran
        .filter((r) => r.job === job.name && r.step === step.title)
        .map((r) => r.argv);
      if (!fits(step.commands, executed))
        problems.push(...misfit(`${job.name} / ${step.title}`, step.commands, executed));
    }
  const steps = new Set(plan.jobs.flatMap((j) => j.steps.map((s) => `${j.name}\0${s.title}`)));
  for (const r of ran)
    if (!steps.has(`${r.job}\0${r.step}`))
      problems.push(`a step not in the plan ran: ${r.job} / ${r.step}: ${r.argv.join(' ')}`);
  return problems;
}

/**
 * Records what real runs execute: each program a step ran through its ctx.exec (with the
 * step), each program started inside a step some other way (never allowed: the dry run cannot
 * have shown it), and each program run outside any plan (the reads that decide a plan, which
 * the dry run runs too).
 */
export function recorder() {
  const ran: StepRun[] = [];
  const undeclared: CommandRun[] = [];
  const outside: CommandRun[] = [];
  observeSteps((r) => ran.push(r));
  observeCommands((r) => {
    if (!r.within) outside.push(r);
    else if (!r.within.declared) undeclared.push(r);
  });
  onCleanup(async () => {
    observeSteps(undefined);
    observeCommands(undefined);
  });
  const clear = () => {
    for (const list of [ran, undeclared, outside]) list.length = 0;
  };

  /**
   * The dry run, then the real run: every way they differ (none when the dry run showed exactly
   * what ran). `planOf` finds the plan in the dry run's result (it is the result itself for most
   * commands).
   */
  async function differences(
    dry: () => Promise<unknown>,
    real: () => Promise<unknown>,
    planOf: (result: unknown) => Planned = (r) => r as Planned,
  ): Promise<string[]> {
    clear();
    const plan = planOf(await dry());
    // Outside any plan only reads run, and a dry run asks them too ("reads run, writes print").
    const asked = new Set(outside.map((o) => o.argv.join('\0')));
    clear();
    await real();
    return [
      ...outside
        .filter((o) => !asked.has(o.argv.join('\0')))
        .map(
          (o) =>
            `ran outside any plan, and its dry run did not (a read runs in both): ${o.argv.join(' ')}`,
        ),
      ...compare(plan, ran),
      ...undeclared.map(
        (u) =>
          `${u.within!.job} / ${u.within!.step}: started a program it did not declare (not through ctx.exec): ${u.argv.join(' ')}`,
      ),
    ];
  }
  return { ran, undeclared, outside, clear, differences };
}

/** One command's check: its name, its dry run, its real run (and what to do first). */
export interface Check {
  name: string;
  dry: () => Promise<unknown>;
  real: () => Promise<unknown>;
  /** Before the dry run (a new commit upstream, a site killed). */
  first?: () => Promise<unknown>;
  /** Where the plan is in the dry run's result (the result itself for most commands). */
  planOf?: (result: unknown) => Planned;
}

/**
 * Each check in turn, on one staging root: how its real run differed from its dry run (commands
 * with none are left out), and how many programs each real run ran through its plan.
 */
async function checkAll(rec: ReturnType<typeof recorder>, checks: Check[]) {
  const problems: Record<string, string[]> = {};
  const ran: Record<string, number> = {};
  for (const c of checks) {
    await c.first?.();
    const found = await rec.differences(c.dry, c.real, c.planOf);
    ran[c.name] = rec.ran.length;
    if (found.length) problems[c.name] = found;
  }
  return { problems, ran };
}

/**
 * checkAll, asserted: every real run ran what its dry run showed, and each command named in
 * `mustRun` (every check's, unless given) ran at least one program through its plan.
 */
export async function expectRunsAsShown(
  rec: ReturnType<typeof recorder>,
  checks: Check[],
  mustRun = checks.map((c) => c.name),
) {
  const { problems, ran } = await checkAll(rec, checks);
  expect(problems).toEqual({});
  for (const name of mustRun) expect(ran[name], name).toBeGreaterThan(0);
}
