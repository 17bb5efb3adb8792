// Covers: src/core/plan.ts src/core/command.ts src/branches/ src/commands/
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { destroy } from '../src/commands/destroy.js';
import { poll } from '../src/commands/poll.js';
import { prune } from '../src/commands/prune.js';
import { runControl } from '../src/commands/run-control.js';
import { switchBranch } from '../src/commands/switch.js';
import { update } from '../src/commands/update.js';
import { watch } from '../src/commands/watch.js';
import { answersHttp } from '../src/core/http-probe.js';
import { serverSource } from '../src/demo/sample-app.js';
import { liveHolder } from '../src/core/lock.js';
import { LOCKS, lockRoom } from '../src/model/locks.js';
import { readState, updateState } from '../src/model/state.js';
import { expectRunsAsShown, recorder, type Check, type Planned } from './helpers/dry-run.js';
import { waitFor } from './helpers/processes.js';
import { gitRepo, svnRepo } from './helpers/repos.js';
import { stagingServer } from './helpers/staging.js';

/**
 * The dry run = the real run, for the commands that change branch sites: what each real run
 * executed (every program, its argument list, by step) is what its dry run showed, and no step
 * started a program it did not declare. Data (sync, reset): dry-run-data.test.ts; the routes,
 * access and mail: dry-run-publish.test.ts.
 */

describe.each(['git', 'svn'] as const)('a dry run shows exactly what runs (%s)', (vcs) => {
  it('create, update, poll --build, switch and destroy run the argument lists their dry runs showed', async () => {
    const repo = vcs === 'git' ? await gitRepo() : await svnRepo();
    const st = await stagingServer(repo);
    const rec = recorder();
    const b1 = { ...st.g, branch: 'branch1' };
    const one = { ...st.g, branches: ['branch1'] };
    const checks: Check[] = [
      { name: 'create', dry: () => create({ ...b1, dryRun: true }), real: () => create(b1) },
      {
        name: 'update --force',
        // A new commit upstream: the head moves, so its conditional commands run too.
        first: () =>
          repo.commit(repo.defaultRef, { 'server.mjs': serverSource('2.0') }, 'Release 2.0'),
        dry: () => update({ ...one, force: true, dryRun: true }),
        real: () => update({ ...one, force: true }),
      },
      {
        name: 'update (already built)',
        dry: () => update({ ...one, dryRun: true }),
        real: () => update(one),
      },
      {
        name: 'poll --build',
        // Another commit upstream: poll finds the site behind and builds it.
        first: () =>
          repo.commit(repo.defaultRef, { 'server.mjs': serverSource('3.0') }, 'Release 3.0'),
        dry: () => poll({ ...one, build: true, dryRun: true }),
        real: () => poll({ ...one, build: true }),
        planOf: (r) => (r as { plan: Planned }).plan,
      },
      {
        name: 'switch',
        dry: () => switchBranch({ ...b1, ref: repo.featureRef, dryRun: true }),
        real: () => switchBranch({ ...b1, ref: repo.featureRef }),
      },
      {
        name: 'destroy',
        dry: () => destroy({ ...b1, dryRun: true }),
        real: () => destroy({ ...b1, yes: true }),
      },
    ];
    await expectRunsAsShown(rec, checks, [
      'create',
      'update --force',
      'poll --build',
      'switch',
      'destroy',
    ]);
    expect(existsSync(join(st.root, 'branch1'))).toBe(false);
  });
});

/** The app's pid, as the sample app writes it. */
const appPid = async (root: string, branch: string) =>
  Number(await readFile(join(root, branch, 'var', 'app.pid'), 'utf8'));

const ended = (pid: number) => () => {
  try {
    process.kill(pid, 0);
    return false;
  } catch {
    return true;
  }
};

describe('a dry run shows exactly what runs: keeping sites up, and prune', () => {
  it('stop, start, restart, sleep, watch (a killed site, the wake service) and prune --yes', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    for (const branch of ['branch1', 'branch3']) await create({ ...st.g, branch });
    const rec = recorder();
    const on = (action: 'start' | 'stop' | 'restart' | 'sleep'): Check => ({
      name: action,
      dry: () => runControl(action, { ...st.g, branches: ['branch1'], dryRun: true }),
      real: () => runControl(action, { ...st.g, branches: ['branch1'] }),
    });
    let killed = 0;
    let woke: (string | undefined)[] = [];
    const checks: Check[] = [
      on('stop'),
      on('start'),
      on('restart'),
      on('sleep'),
      { ...on('start'), name: 'start (asleep)' },
      {
        name: 'watch',
        // Killed, as a crash or the OOM killer would: watch starts it again (and the wake service).
        first: async () => {
          killed = await appPid(st.root, 'branch1');
          process.kill(killed, 'SIGKILL');
          await waitFor('the app of branch1 to end', ended(killed));
        },
        dry: () => watch({ ...st.g, dryRun: true }),
        real: async () => {
          await watch(st.g);
          woke = rec.ran.filter((r) => r.job === 'wake service').map((r) => r.argv.at(-1));
        },
        planOf: (r) => (r as { plan: Planned }).plan,
      },
      {
        name: 'prune --yes',
        // branch3 is stale: nothing happened to it for 60 days (branch1 is osf's mail branch).
        first: () =>
          updateState(st.root, (s) => {
            const old = new Date(Date.now() - 60 * 86_400_000).toISOString();
            const site = s.branches.branch3!;
            site.createdAt = old;
            site.lastUpdate = site.lastUpdate && { ...site.lastUpdate, at: old };
            site.built = site.built && { ...site.built, at: old };
          }),
        dry: () => prune({ ...st.g, yes: true, dryRun: true }),
        real: () => prune({ ...st.g, yes: true }),
        // One removal: the dry run of its destroy.
        planOf: (r) => (r as { plans: Planned[] }).plans[0]!,
      },
    ];
    await expectRunsAsShown(rec, checks);
    // What the real runs did: watch started the killed app again and the wake service; prune
    // removed the stale site and kept the mail branch.
    const state = await readState(st.root);
    expect(await appPid(st.root, 'branch1')).not.toBe(killed);
    expect(await answersHttp(state.branches.branch1!.port)).toBe(true);
    expect(woke).toEqual(['wake-service']);
    expect(await liveHolder(lockRoom(st.root), LOCKS.wake)).toBeTruthy();
    expect(Object.keys(state.branches)).toEqual(['branch1']);
  });
});
