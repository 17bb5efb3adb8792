import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { destroy } from '../src/commands/destroy.js';
import { switchBranch } from '../src/commands/switch.js';
import { update } from '../src/commands/update.js';
import { observeSteps, type StepRun } from '../src/core/plan.js';
import { serverSource } from '../src/demo/sample-app.js';
import { gitRepo, svnRepo } from './helpers/repos.js';
import { stagingServer } from './helpers/staging.js';
import { onCleanup } from './helpers/tmp.js';

interface Planned {
  jobs: {
    name: string;
    steps: { title: string; commands: { argv: string[]; when?: string }[] }[];
  }[];
}

/** A planned argument matches what ran: equal, or a <PLACEHOLDER> standing for a value known only then. */
const argMatches = (planned: string, ran: string) => /^<.+>$/.test(planned) || planned === ran;
const matches = (planned: string[], ran: string[]) =>
  planned.length === ran.length && planned.every((p, i) => argMatches(p, ran[i]!));

/**
 * What a dry run showed, against what the real run executed, step by step:
 * every program that ran was shown, with the same argument list, in the same
 * order; every program shown ran, unless it was shown as conditional.
 */
function compare(plan: Planned, ran: StepRun[]): string[] {
  const problems: string[] = [];
  for (const job of plan.jobs)
    for (const step of job.steps) {
      const executed = ran.filter((r) => r.job === job.name && r.step === step.title);
      let i = 0;
      for (const e of executed) {
        while (i < step.commands.length && !matches(step.commands[i]!.argv, e.argv)) {
          if (!step.commands[i]!.when)
            problems.push(
              `${job.name} / ${step.title}: shown but not run: ${step.commands[i]!.argv.join(' ')}`,
            );
          i++;
        }
        if (i === step.commands.length) {
          problems.push(
            `${job.name} / ${step.title}: ran but not shown (or out of order): ${e.argv.join(' ')}`,
          );
          break;
        }
        i++;
      }
      for (; i < step.commands.length; i++)
        if (!step.commands[i]!.when)
          problems.push(
            `${job.name} / ${step.title}: shown but not run: ${step.commands[i]!.argv.join(' ')}`,
          );
    }
  const steps = new Set(plan.jobs.flatMap((j) => j.steps.map((s) => `${j.name}\0${s.title}`)));
  for (const r of ran)
    if (!steps.has(`${r.job}\0${r.step}`))
      problems.push(`a step not in the plan ran: ${r.job} / ${r.step}`);
  return problems;
}

/** Record what a real run executes. */
function recorder(): StepRun[] {
  const ran: StepRun[] = [];
  observeSteps((r) => ran.push(r));
  onCleanup(async () => observeSteps(undefined));
  return ran;
}

describe.each(['git', 'svn'] as const)('a dry run shows exactly what runs (%s)', (vcs) => {
  it('create, update, switch and destroy run the argument lists their dry runs showed', async () => {
    const repo = vcs === 'git' ? await gitRepo() : await svnRepo();
    const st = await stagingServer(repo);
    const ran = recorder();

    const checks: [string, () => Promise<unknown>, () => Promise<unknown>][] = [
      [
        'create',
        () => create({ ...st.g, branch: 'branch1', dryRun: true }),
        () => create({ ...st.g, branch: 'branch1' }),
      ],
      [
        'update --force',
        () => update({ ...st.g, branches: ['branch1'], force: true, dryRun: true }),
        () => update({ ...st.g, branches: ['branch1'], force: true }),
      ],
      [
        'switch',
        () => switchBranch({ ...st.g, branch: 'branch1', ref: repo.featureRef, dryRun: true }),
        () => switchBranch({ ...st.g, branch: 'branch1', ref: repo.featureRef }),
      ],
      [
        'destroy',
        () => destroy({ ...st.g, branch: 'branch1', dryRun: true }),
        () => destroy({ ...st.g, branch: 'branch1', yes: true }),
      ],
    ];
    for (const [name, dry, real] of checks) {
      // A new commit upstream before the update: the head moves, so its conditional commands run too.
      if (name === 'update --force')
        await repo.commit(repo.defaultRef, { 'server.mjs': serverSource('2.0') }, 'Release 2.0');
      const plan = (await dry()) as Planned;
      ran.length = 0;
      await real();
      expect(ran.length, name).toBeGreaterThan(0);
      expect(compare(plan, ran), name).toEqual([]);
    }
  });
});
