// Covers: src/branches/lifecycle.ts src/branches/watch.ts src/model/site-state.ts src/model/state.ts
import { describe, expect, it } from 'vitest';
import { parseConfig, type Config } from '../../src/config/config.js';
import { afterStart, afterStop, retryDelayMs } from '../../src/branches/lifecycle.js';
import { decideWatch, type SiteFacts } from '../../src/branches/watch.js';
import { siteRun } from '../../src/model/site-state.js';
import type { BranchState, RunRecord } from '../../src/model/state.js';

/** watch's decisions and the site states, from made-up facts: no process, no port. */
const config = (more = ''): Config =>
  parseConfig(
    `[staging]\nhost = h.example.org\ndatabase = host=db\n${more}\n[source]\nurl = https://g.example.org/k.git\n[deployment]\nskeleton = /skel\nstart = bin/start\nstop = bin/stop\n`,
    '/srv/ks/karlstage.ini',
  );
const NOW = Date.parse('2026-12-03T12:00:00Z');
const iso = (msAgo: number) => new Date(NOW - msAgo).toISOString();
const site = (name: string, run?: RunRecord, more: Partial<BranchState> = {}): BranchState => ({
  name,
  slot: 1,
  port: 6501,
  vcs: 'git',
  ref: 'main',
  createdAt: iso(86_400_000),
  ...(run ? { run } : {}),
  ...more,
});
const facts = (sites: SiteFacts[], wakeServiceUp = true) => ({ now: NOW, sites, wakeServiceUp });
const kinds = (d: ReturnType<typeof decideWatch>) =>
  d.map((x) => ('branch' in x ? `${x.kind} ${x.branch}` : x.kind));

describe('watch decides', () => {
  const cfg = config();
  it('nothing, when every site is as it should be (nothing is written)', () => {
    expect(
      decideWatch(
        cfg,
        facts([
          { site: site('a'), answers: true, busy: false, activity: NOW - 60_000 },
          { site: site('b', { want: 'stopped', since: iso(0) }), answers: false, busy: false },
          { site: site('c', { want: 'sleeping', since: iso(0) }), answers: false, busy: false },
        ]),
      ),
    ).toEqual([]);
  });
  it('to start a site that should run and does not answer; after failures only when its backoff is over', () => {
    const failed = afterStart(undefined, { at: iso(0), by: 'watch', ms: 10, error: 'no' });
    expect(failed).toMatchObject({ failures: 1, downSince: iso(0), lastStart: { ok: false } });
    expect(Date.parse(failed.retryAt!) - NOW).toBe(retryDelayMs(1));
    expect([1, 2, 3, 7, 20].map((n) => retryDelayMs(n) / 60_000)).toEqual([1, 2, 4, 60, 60]);
    const d = decideWatch(
      cfg,
      facts([
        { site: site('a'), answers: false, busy: false },
        { site: site('b', failed), answers: false, busy: false },
        { site: site('c'), answers: false, busy: true },
      ]),
    );
    expect(kinds(d)).toEqual(['start a']);
    const later = { ...facts([{ site: site('b', failed), answers: false, busy: false }]) };
    later.now = NOW + retryDelayMs(1);
    expect(kinds(decideWatch(cfg, later))).toEqual(['start b']);
  });
  it('to tell people after two failed starts in a row, once; recovered when it answers', () => {
    const twice = afterStart(
      afterStart(undefined, { at: iso(60_000), by: 'watch', ms: 1, error: 'x' }),
      {
        at: iso(0),
        by: 'watch',
        ms: 1,
        error: 'x',
      },
    );
    const [tell] = decideWatch(
      cfg,
      facts([{ site: site('a', twice), answers: false, busy: false }]),
    );
    expect(tell?.kind).toBe('record');
    const told = tell!.kind === 'record' ? tell!.change(twice) : twice;
    expect(told.toldDown).toBe(true);
    expect(
      decideWatch(cfg, facts([{ site: site('a', told), answers: false, busy: false }])),
    ).toEqual([]);
    const [back] = decideWatch(
      cfg,
      facts([{ site: site('a', told), answers: true, busy: false, activity: NOW }]),
    );
    expect(back?.kind === 'record' && back.change(told)).toEqual({
      want: 'running',
      since: told.since,
      by: 'watch',
      lastStart: told.lastStart,
    });
  });
  it('to put a site to sleep after idle_after without a logged-in request; never a held one, never on a public host', () => {
    const idle = { site: site('a'), answers: true, busy: false, activity: NOW - 4 * 3_600_000 };
    expect(kinds(decideWatch(cfg, facts([idle])))).toEqual(['sleep a']);
    expect(decideWatch(cfg, facts([{ ...idle, activity: NOW - 3 * 3_600_000 }]))).toEqual([]);
    const held = { ...idle, site: site('a', undefined, { hold: { since: iso(0), by: 'anna' } }) };
    expect(decideWatch(cfg, facts([held]))).toEqual([]);
    expect(decideWatch(config('idle_after = off'), facts([idle]))).toEqual([]);
    expect(decideWatch(config('[access]\npublic = yes'), facts([idle]))).toEqual([]);
    expect(decideWatch(cfg, facts([idle]), { boot: true })).toEqual([]);
  });
  it('at boot to start what was running, whatever its backoff; the wake service when it is not up', () => {
    const failed = afterStart(undefined, { at: iso(0), by: 'watch', ms: 1, error: 'x' });
    const d = decideWatch(
      cfg,
      facts(
        [
          { site: site('a', failed), answers: false, busy: false },
          {
            site: site('b', afterStop(undefined, 'sleeping', iso(0), 'watch')),
            answers: false,
            busy: false,
          },
        ],
        false,
      ),
      { boot: true },
    );
    expect(kinds(d)).toEqual(['wake-service', 'start a']);
  });
});

describe('a site state', () => {
  it('is running only when its port answers; otherwise what it should be, or starting/building while a run holds its lock', () => {
    const down = afterStart(undefined, { at: iso(0), by: 'watch', ms: 1, error: 'it failed' });
    expect(siteRun(site('a'), { answers: true }).state).toBe('running');
    expect(siteRun(site('a', down), { answers: false })).toMatchObject({
      state: 'down',
      error: 'it failed',
    });
    expect(
      siteRun(site('a'), { answers: false, holder: { command: 'update a', since: iso(0) } }).state,
    ).toBe('building');
    expect(
      siteRun(site('a'), { answers: false, holder: { command: 'wake a', since: iso(0) } }).state,
    ).toBe('starting');
    expect(
      siteRun(site('a'), { answers: false, holder: { command: 'sync osf into a', since: iso(0) } })
        .state,
    ).toBe('down');
    const asleep = afterStop(
      afterStart(undefined, { at: iso(1), by: 'create', ms: 2400 }),
      'sleeping',
      iso(0),
      'watch',
    );
    expect(siteRun(site('a', asleep), { answers: false })).toMatchObject({
      state: 'sleeping',
      wakeSeconds: 3,
    });
    expect(
      siteRun(site('a', afterStop(undefined, 'stopped', iso(0), 'anna')), { answers: false }),
    ).toMatchObject({ state: 'stopped', by: 'anna' });
  });
});
