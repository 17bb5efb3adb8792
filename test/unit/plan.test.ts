// Covers: src/core/command.ts src/core/output.ts src/core/plan.ts
import { describe, expect, it } from 'vitest';
import type { Command } from '../../src/core/command.js';
import { KarlstageError, UsageError } from '../../src/core/errors.js';
import { Output } from '../../src/core/output.js';
import {
  executePlan,
  observeSteps,
  planAsJson,
  type Job,
  type StepRun,
} from '../../src/core/plan.js';
import { tempDir } from '../helpers/tmp.js';

/** The plan executor: steps in order, undo in reverse, skip, finally, and only declared commands. */
const out = await Output.create({ quiet: true });
const run = async (jobs: Job[], before?: Job) =>
  executePlan({ command: 'test', jobs, before }, { out, logs: await tempDir() });
const echo = (text: string): Command => ({ program: 'echo', args: [text], step: `echo ${text}` });

describe('the plan executor', () => {
  it('runs steps in order; when one fails, undoes what the earlier ones made, newest first', async () => {
    const seen: string[] = [];
    const [r] = await run([
      {
        name: 'job',
        steps: [
          {
            title: 'a',
            run: async (ctx) => {
              seen.push('a');
              ctx.onUndo(async () => void seen.push('undo a'));
            },
          },
          {
            title: 'b',
            run: async (ctx) => {
              seen.push('b');
              ctx.onUndo(async () => void seen.push('undo b'));
            },
          },
          {
            title: 'c',
            run: async () =>
              void (
                seen.push('c'),
                (() => {
                  throw new UsageError('c broke');
                })()
              ),
          },
          { title: 'd', run: async () => void seen.push('d') },
        ],
      },
    ]);
    expect(seen).toEqual(['a', 'b', 'c', 'undo b', 'undo a']);
    expect(r).toMatchObject({ name: 'job', ok: false });
    // A refusal after steps that changed something is a failure: exit 2 promises nothing changed.
    expect(r!.error!.exitCode).toBe(1);
    expect(r!.error!.message).toBe('c broke');
  });

  it('a refusal is exit 2 only before any step that may change something ran (reads and caches aside)', async () => {
    const refuse = async () => {
      throw new UsageError('no such commit');
    };
    const [first, afterReads, afterChange] = await run([
      { name: 'first', steps: [{ title: 'check', run: refuse }] },
      {
        name: 'after reads',
        steps: [
          { title: 'fetch into a cache', readOnly: true, run: async () => undefined },
          { title: 'find it', readOnly: true, run: refuse },
        ],
      },
      {
        name: 'after a change',
        steps: [
          { title: 'write a file', run: async () => undefined },
          { title: 'find it', readOnly: true, run: refuse },
        ],
      },
    ]);
    expect(first!.error).toBeInstanceOf(UsageError);
    expect(afterReads!.error!.exitCode).toBe(2);
    expect(afterChange!.error!.exitCode).toBe(1);
    expect(afterChange!.error!.message).toBe('no such commit');
  });

  it('a step can end its job early and successfully (skipRest); finally always runs, after', async () => {
    const seen: string[] = [];
    const [r] = await run([
      {
        name: 'job',
        steps: [
          { title: 'a', run: async () => ({ skipRest: 'already built' }) },
          { title: 'b', run: async () => void seen.push('b') },
        ],
        finally: async (result) =>
          void seen.push(`finally ok=${result.ok} skipped=${result.skipped}`),
      },
    ]);
    expect(r).toMatchObject({ ok: true, skipped: 'already built' });
    expect(seen).toEqual(['finally ok=true skipped=already built']);
  });

  it('a finally that cannot record the result fails the job (never reported ok)', async () => {
    const [r] = await run([
      {
        name: 'job',
        steps: [{ title: 'a', run: async () => undefined }],
        finally: async () => {
          throw new KarlstageError('state.json is locked', 75);
        },
      },
    ]);
    expect(r!.ok).toBe(false);
    expect(r!.error!.message).toBe(
      'the work is done, but its result could not be recorded: state.json is locked; the next run finishes it',
    );
    expect(r!.error!.exitCode).toBe(75);
  });

  it("a step runs the commands it declared, and refuses any other; an undo runs with its own step's commands", async () => {
    const mine = echo('mine');
    const undo = echo('undo');
    const ran: StepRun[] = [];
    observeSteps((x) => ran.push(x));
    try {
      const [ok] = await run([
        {
          name: 'job',
          steps: [
            {
              title: 'a',
              commands: [mine, { ...undo, when: 'when a later step fails' }],
              run: async (ctx) => {
                await ctx.exec(mine);
                ctx.onUndo(async () => void (await ctx.exec(undo)));
              },
            },
            { title: 'b', run: async (ctx) => void (await ctx.exec(echo('not declared'))) },
          ],
        },
      ]);
      expect(ok!.ok).toBe(false);
      expect(ok!.error!.message).toBe(
        'internal error, please report it: step "b" ran a program it did not declare: $ echo \'not declared\'',
      );
      expect(ran.map((x) => `${x.step}: ${x.argv.join(' ')}`)).toEqual([
        'a: echo mine',
        'a: echo undo',
      ]);
    } finally {
      observeSteps(undefined);
    }
  });

  it('jobs run concurrently up to the limit; one failing does not stop the others; results in plan order', async () => {
    let running = 0;
    let most = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const job = (name: string, fail = false): Job => ({
      name,
      steps: [
        {
          title: 'work',
          run: async () => {
            most = Math.max(most, ++running);
            if (running === 2) release();
            await gate;
            running--;
            if (fail) throw new KarlstageError(`${name} failed`);
          },
        },
      ],
    });
    const results = await executePlan(
      { command: 'test', jobs: [job('one'), job('two', true), job('three')], concurrency: 2 },
      { out, logs: await tempDir() },
    );
    expect(most).toBe(2);
    expect(results.map((r) => [r.name, r.ok])).toEqual([
      ['one', true],
      ['two', false],
      ['three', true],
    ]);
  });

  it('when the job that runs first fails, no other job starts, and each says why', async () => {
    const seen: string[] = [];
    const results = await run(
      [{ name: 'site', steps: [{ title: 'x', run: async () => void seen.push('site') }] }],
      {
        name: 'store',
        steps: [
          {
            title: 'fetch',
            run: async () => {
              throw new KarlstageError('no network');
            },
          },
        ],
      },
    );
    expect(seen).toEqual([]);
    expect(results[0]).toMatchObject({ name: 'site', ok: false });
    expect(results[0]!.error!.message).toBe('store: no network');
  });

  it("the dry-run plan lists each step's argument lists (placeholders as <LABEL>) and effects", async () => {
    const { later } = await import('../../src/core/command.js');
    const plan = planAsJson({
      command: 'test',
      jobs: [
        {
          name: 'job',
          steps: [
            {
              title: 'a',
              commands: [
                {
                  program: 'git',
                  args: ['checkout', later('COMMIT', () => 'abc')],
                  step: 's',
                  cwd: '/x',
                  when: 'when it moved',
                },
              ],
              effects: ['write /x/y'],
              run: async () => undefined,
            },
          ],
        },
      ],
    });
    expect(plan.jobs[0]!.steps[0]).toEqual({
      title: 'a',
      preview: ["$ git checkout '<COMMIT>'   (in /x)   [when it moved]", 'write /x/y'],
      commands: [{ argv: ['git', 'checkout', '<COMMIT>'], cwd: '/x', when: 'when it moved' }],
      effects: ['write /x/y'],
    });
  });
});
