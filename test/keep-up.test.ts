// Covers: src/branches/lifecycle.ts src/branches/watch.ts src/commands/watch.ts src/commands/run-control.ts src/commands/wake-service.ts src/publish/wake-service.ts src/model/site-state.ts src/model/activity.ts templates/nginx.conf templates/crontab templates/wake.html src/core/http-probe.ts src/core/listeners.ts
import { execa } from 'execa';
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { acquireLock } from '../src/model/locks.js';
import { readState } from '../src/model/state.js';
import { servedStaging } from './helpers/served.js';
import { waitFor } from './helpers/processes.js';
import { webhookReceiver } from './helpers/webhook.js';

/** Kill a branch site's app with SIGKILL, as a crash or the OOM killer would. */
async function killApp(root: string, branch: string): Promise<void> {
  const pid = Number(await readFile(join(root, branch, 'var', 'app.pid'), 'utf8'));
  process.kill(pid, 'SIGKILL');
  await waitFor(`the app of ${branch} to end`, () => {
    try {
      process.kill(pid, 0);
      return false;
    } catch {
      return true;
    }
  });
}

const starts = async (root: string, branch: string) =>
  (await readFile(join(root, branch, 'var', 'starts'), 'utf8').catch(() => ''))
    .split('\n')
    .filter(Boolean).length;

interface StatusJson {
  branches: { name: string; state: string; since: string | null; memoryBytes?: number }[];
}
const states = async (cli: (a: string[]) => Promise<{ stdout: string }>) =>
  Object.fromEntries(
    (JSON.parse((await cli(['status', '--json'])).stdout) as StatusJson).branches.map((b) => [
      b.name,
      b.state,
    ]),
  );

describe('branch sites that stay up', () => {
  it('watch starts a killed app again and leaves a stopped one alone; the @reboot line starts what was running and nothing else', async () => {
    const { st, get } = await servedStaging();
    for (const b of ['branch1', 'branch2', 'branch3']) await create({ ...st.g, branch: b });
    const running = await st.cli(['status', '--json']);
    const b1 = (JSON.parse(running.stdout) as StatusJson).branches.find(
      (b) => b.name === 'branch1',
    )!;
    expect(b1.state).toBe('running');
    expect(b1.memoryBytes).toBeGreaterThan(1_000_000); // a node process holds megabytes

    await killApp(st.root, 'branch1');
    expect((await st.cli(['stop', 'branch2'])).exitCode).toBe(0);
    expect((await st.cli(['sleep', 'branch3'])).exitCode).toBe(0);
    expect(await states(st.cli)).toEqual({
      branch1: 'down',
      branch2: 'stopped',
      branch3: 'sleeping',
    });
    const text = await st.cli(['status']);
    expect(text.stdout).toMatch(/^branch1\s+down/m);
    expect(text.stdout).toMatch(/branch1 is down.*watch starts it again within a minute/);
    const doctor = await st.cli(['doctor']);
    expect(doctor.exitCode).toBe(1);
    expect(doctor.stdout).toMatch(/FAIL\s+app branch1\s+should run and does not answer/);

    // One watch, as cron runs it: branch1 answers again; the stopped and the sleeping one do not.
    const watched = await st.cli(['watch']);
    expect(watched.exitCode).toBe(0);
    expect((await get('/branch1/osf/')).status).toBe(200);
    expect(await states(st.cli)).toEqual({
      branch1: 'running',
      branch2: 'stopped',
      branch3: 'sleeping',
    });
    const list = JSON.parse(
      await readFile(join(st.root, '.karlstage/sites/all/sites.json'), 'utf8'),
    ) as {
      branches: { name: string; state: { name: string; text: string } }[];
    };
    expect(Object.fromEntries(list.branches.map((b) => [b.name, b.state.text]))).toEqual({
      branch1: 'ready',
      branch2: 'stopped by the operator',
      branch3: expect.stringMatching(/^asleep: opens in about \d+ s when you visit$/),
    });

    // A reboot: every app gone. The @reboot line itself, run by a shell as cron would.
    await killApp(st.root, 'branch1');
    const cron = (await st.cli(['cron'])).stdout;
    const reboot = cron.split('\n').find((l) => l.startsWith('@reboot'))!;
    expect(reboot).toMatch(/ watch --boot >> /);
    const command = reboot.split(/\s+/).slice(2).join(' ');
    const startsBefore = await starts(st.root, 'branch2');
    await execa('sh', ['-c', command], { cwd: '/', env: { NO_COLOR: '1' } });
    expect((await get('/branch1/osf/')).status).toBe(200);
    expect(await states(st.cli)).toEqual({
      branch1: 'running',
      branch2: 'stopped',
      branch3: 'sleeping',
    });
    expect(await starts(st.root, 'branch2')).toBe(startsBefore);
    expect(cron).toMatch(/^\* \* \* \* \* \S+ .* watch >> /m);

    // The site list's count of staged mail waiting for mail-in is kept current by watch.
    const maildir = join(st.root, 'branch1', 'var', 'mail', 'osf');
    for (const part of ['tmp', 'new', 'cur']) await mkdir(join(maildir, part), { recursive: true });
    await writeFile(join(maildir, 'new', '1.M1.host'), 'Subject: hello\n\nhi\n');
    expect((await st.cli(['watch'])).exitCode).toBe(0);
    const waiting = JSON.parse(
      await readFile(join(st.root, '.karlstage/sites/all/sites.json'), 'utf8'),
    ) as {
      branches: { name: string; customers: { name: string; mailWaiting: number | null }[] }[];
    };
    expect(
      waiting.branches.find((b) => b.name === 'branch1')?.customers.find((c) => c.name === 'osf')
        ?.mailWaiting,
    ).toBe(1);

    // A site destroyed while asleep is gone, routes included.
    expect((await st.cli(['destroy', 'branch3', '--yes'])).exitCode).toBe(0);
    expect((await get('/branch3/osf/')).status).toBe(404);
  });

  it('a sleeping site wakes for the first logged-in visitor (once for twenty), never for a request without a login', async () => {
    const { st, get } = await servedStaging();
    await create({ ...st.g, branch: 'branch1' });
    expect((await st.cli(['watch'])).exitCode).toBe(0); // starts the wake service
    expect((await st.cli(['sleep', 'branch1'])).exitCode).toBe(0);
    const before = await starts(st.root, 'branch1');

    const stranger = await get('/branch1/osf/', { user: null });
    expect(stranger.status).toBe(401);
    const wrong = await get('/branch1/osf/', { user: 'admin:wrong' });
    expect(wrong.status).toBe(401);
    expect(await states(st.cli)).toEqual({ branch1: 'sleeping' });

    const twenty = await Promise.all(Array.from({ length: 20 }, () => get('/branch1/osf/')));
    expect(twenty.map((r) => r.status)).toEqual(Array(20).fill(200));
    for (const r of twenty) expect(r.body).toMatch(/^KARL demo: branch=branch1 .* customer=osf/m);
    expect(await starts(st.root, 'branch1')).toBe(before + 1);
    // The visitor had the page as soon as the app answered; the start is recorded after it.
    await waitFor(
      'the wake to be recorded',
      async () => (await readState(st.root)).branches.branch1!.run?.want === 'running',
    );
    const site = (await readState(st.root)).branches.branch1!;
    expect(site.run).toMatchObject({
      want: 'running',
      lastStart: { ok: true, by: 'a visitor (admin)' },
    });

    // A wake while an update holds the site's lock: it waits for it, then serves.
    expect((await st.cli(['sleep', 'branch1'])).exitCode).toBe(0);
    const release = await acquireLock(st.root, 'branch-branch1', { command: 'update branch1' });
    const wakes = async () =>
      (await readFile(join(st.root, '.karlstage/logs/wake.log'), 'utf8')).split('waking branch1')
        .length;
    const seen = await wakes();
    const waiting = get('/branch1/osf/');
    await waitFor('the wake to wait for the lock', async () => (await wakes()) > seen);
    expect(await states(st.cli)).toEqual({ branch1: 'building' });
    await release();
    expect((await waiting).status).toBe(200);

    // Slower than wake_wait: a "waking up" page that reloads itself, then the real page.
    const ini = await readFile(st.config, 'utf8');
    await writeFile(st.config, ini.replace(/^wake_wait = .*$/m, 'wake_wait = 1s'));
    await writeFile(join(st.root, 'branch1', 'var', 'slow-start'), '3');
    expect((await st.cli(['sleep', 'branch1'])).exitCode).toBe(0);
    const waking = await get('/branch1/osf/');
    expect(waking.status).toBe(503);
    expect(waking.headers['retry-after']).toMatch(/^\d+$/);
    expect(waking.body).toContain('Waking up branch1 for osf');
    expect(waking.body).toMatch(/<meta http-equiv="refresh" content="\d+">/);
    await waitFor('branch1 to answer', async () => (await get('/branch1/osf/')).status === 200);
    await rm(join(st.root, 'branch1', 'var', 'slow-start'));
    await writeFile(st.config, ini);

    // Stopped by the operator: a logged-in visitor is told, and nothing starts it.
    expect((await st.cli(['stop', 'branch1'])).exitCode).toBe(0);
    const n = await starts(st.root, 'branch1');
    const stopped = await get('/branch1/osf/');
    expect(stopped.status).toBe(503);
    expect(stopped.body).toContain('branch1 is stopped');
    expect(await starts(st.root, 'branch1')).toBe(n);

    // The wake service killed: nginx still shows the friendly page; the next watch brings it back.
    expect((await st.cli(['start', 'branch1'])).exitCode).toBe(0);
    expect((await st.cli(['sleep', 'branch1'])).exitCode).toBe(0);
    const lock = JSON.parse(
      await readFile(join(st.root, '.karlstage/locks/wake-service.lock'), 'utf8'),
    ) as { pid: number };
    process.kill(lock.pid, 'SIGKILL');
    const friendly = await get('/branch1/osf/');
    expect(friendly.status).toBe(502);
    expect(friendly.body).toContain('This branch site is not running right now');
    expect((await st.cli(['watch'])).exitCode).toBe(0);
    expect((await get('/branch1/osf/')).status).toBe(200);
  });

  it('idle sites sleep, held ones never; a failing start backs off, tells people after two, and recovery is told', async () => {
    const hook = await webhookReceiver();
    const { st, get } = await servedStaging({
      ini: (t) => `${t}\n[notify]\nwebhook = ${hook.url}\n`,
    });
    for (const b of ['branch1', 'branch2']) await create({ ...st.g, branch: b });
    expect((await st.cli(['hold', 'branch2', '--reason', 'testing'])).exitCode).toBe(0);
    const hoursAgo = new Date(Date.now() - 5 * 3_600_000);
    for (const b of ['branch1', 'branch2'])
      await utimes(join(st.root, '.karlstage/activity', `${b}.log`), hoursAgo, hoursAgo);
    expect((await st.cli(['watch'])).exitCode).toBe(0);
    expect(await states(st.cli)).toEqual({ branch1: 'sleeping', branch2: 'running' });
    // A request through the TLS host is activity: a visited site does not sleep.
    expect((await get('/branch1/osf/')).status).toBe(200);
    await utimes(join(st.root, '.karlstage/activity/branch2.log'), hoursAgo, hoursAgo);

    // A start that hangs is stopped at [deployment] start_timeout, and said so.
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(/^start_timeout = .*$/m, 'start_timeout = 2'),
    );
    expect((await st.cli(['stop', 'branch1'])).exitCode).toBe(0);
    await writeFile(join(st.root, 'branch1', 'var', 'slow-start'), '60');
    const hung = await st.cli(['start', 'branch1']);
    expect(hung.exitCode).toBe(1);
    expect(hung.stderr).toMatch(/branch1: start failed: timed out after 2 s/);
    await rm(join(st.root, 'branch1', 'var', 'slow-start'));

    // branch2's start fails from now on; its app dies.
    await writeFile(join(st.root, 'branch2', 'var', 'fail-start'), '');
    await killApp(st.root, 'branch2');
    const first = await st.cli(['watch']);
    expect(first.exitCode).toBe(1);
    expect(first.stderr).toMatch(/branch2: .*start.* failed/);
    const n = await starts(st.root, 'branch2');
    expect((await st.cli(['watch'])).exitCode).toBe(0); // within its backoff: not started again
    expect(await starts(st.root, 'branch2')).toBe(n);
    let run = (await readState(st.root)).branches.branch2!.run!;
    expect(run).toMatchObject({ want: 'running', failures: 1, lastStart: { ok: false } });
    expect(Date.parse(run.retryAt!)).toBeGreaterThan(Date.now());
    expect((await st.cli(['status'])).stdout).toMatch(
      /branch2 is down since .*: branch2: (re)?start failed/,
    );

    expect((await st.cli(['start', 'branch2'])).exitCode).toBe(1); // the operator tries: fails too
    expect((await st.cli(['watch'])).exitCode).toBe(0); // two in a row: people are told
    await waitFor('the down notification', () =>
      hook.got.some((g) => /"kind":"down"/.test(g.body)),
    );
    run = (await readState(st.root)).branches.branch2!.run!;
    expect(run).toMatchObject({ failures: 2, toldDown: true });

    await rm(join(st.root, 'branch2', 'var', 'fail-start'));
    expect((await st.cli(['start', 'branch2'])).exitCode).toBe(0);
    await waitFor('the recovered notification', () =>
      hook.got.some((g) => /"kind":"recovered","what":"site","branch":"branch2"/.test(g.body)),
    );
    expect((await get('/branch2/osf/')).status).toBe(200);
  });
});
