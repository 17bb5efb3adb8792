// Covers: src/context/report.ts src/core/output.ts src/core/plan.ts src/model/layout.ts src/model/marker.ts src/model/pending.ts src/model/sites.ts src/model/state.ts src/model/views.ts
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { init } from '../../src/commands/init.js';
import { loadConfig } from '../../src/config/config.js';
import { finishJobs, refused } from '../../src/context/report.js';
import {
  KarlstageError,
  LockedError,
  osError,
  UsageError,
  type KarlstageError as E,
} from '../../src/core/errors.js';
import { Output } from '../../src/core/output.js';
import type { JobResult } from '../../src/core/plan.js';
import { layout } from '../../src/model/layout.js';
import { markerOf, parseMarker } from '../../src/model/marker.js';
import { markPending, readPending } from '../../src/model/pending.js';
import { sitesFromFolders } from '../../src/model/sites.js';
import type { BranchState } from '../../src/model/state.js';
import { staleness } from '../../src/model/views.js';
import { tempDir } from '../helpers/tmp.js';

/** Damaged things are named, refusals mean "nothing changed", repairs lose no site. */

const DAY = 86_400_000;
const site = (more: Partial<BranchState> = {}): BranchState => ({
  name: 'branch1',
  slot: 1,
  port: 6501,
  vcs: 'git',
  ref: 'main',
  createdAt: new Date(Date.now() - 90 * DAY).toISOString(),
  ...more,
});

const out = await Output.create({ quiet: true });

describe('exit statuses of a run of several jobs', () => {
  const ctx = { out } as Parameters<typeof finishJobs>[0];
  const job = (name: string, error?: E): JobResult => ({
    name,
    ok: !error,
    durationMs: 1,
    ...(error ? { error } : {}),
  });
  const status = (results: JobResult[]) => {
    try {
      finishJobs(ctx, results, 'update', {});
      return 0;
    } catch (e) {
      return (e as KarlstageError).exitCode;
    }
  };

  it('2 only when every job was refused; a mixed result is 1; 75 when every failure was a lock', () => {
    const bad = () => new UsageError('instances.ini is malformed');
    expect(status([job('a', bad()), job('b', bad())])).toBe(2);
    expect(refused([job('a', bad()), job('b', bad())])).toBe(true);
    // One site refused, another rebuilt: something changed.
    expect(status([job('a', bad()), job('b')])).toBe(1);
    expect(refused([job('a', bad()), job('b')])).toBe(false);
    expect(status([job('a', bad()), job('b', new KarlstageError('build failed'))])).toBe(1);
    expect(status([job('a', new LockedError('held')), job('b')])).toBe(75);
    expect(status([job('a'), job('b')])).toBe(0);
    expect(refused([])).toBe(false);
  });
});

describe('an operating system that refuses a write', () => {
  it('is one line naming the file and the cause, never a stack', () => {
    const full = Object.assign(new Error('ENOSPC: no space left on device, write'), {
      code: 'ENOSPC',
      syscall: 'write',
    });
    expect(osError(full, '/srv/ks/.karlstage/state.json')?.message).toBe(
      'cannot write /srv/ks/.karlstage/state.json: no space left on device (ENOSPC)',
    );
    const denied = Object.assign(new Error("EACCES: permission denied, open '/etc/cron.d/ks'"), {
      code: 'EACCES',
      syscall: 'open',
      path: '/etc/cron.d/ks',
    });
    expect(osError(denied)?.message).toBe('cannot open /etc/cron.d/ks: permission denied (EACCES)');
    expect(osError(denied)?.exitCode).toBe(1);
    // A bug stays a bug (with its stack): not every error is the machine's.
    expect(osError(new TypeError('x is undefined'))).toBeUndefined();
    expect(osError(Object.assign(new Error('ENOENT'), { code: 'ENOENT' }))).toBeUndefined();
  });
});

describe('site markers and staleness', () => {
  it('a marker keeps the hold and the dates; a site whose dates are unknown is never stale by age', async () => {
    const cfg = loadConfig((await init({ quiet: true, dir: await tempDir() })).file);
    const updated = new Date(Date.now() - 2 * 60_000).toISOString();
    const b = site({
      hold: { since: updated, by: 'anna', reason: 'testing' },
      lastUpdate: { at: updated, result: 'ok', revision: 'abc', durationMs: 5 },
      built: { revision: 'abc', ref: 'main', at: updated },
    });
    const m = markerOf(b);
    expect(m).toEqual({
      version: 2,
      name: 'branch1',
      slot: 1,
      port: 6501,
      vcs: 'git',
      ref: 'main',
      createdAt: b.createdAt,
      hold: b.hold,
      lastUpdate: b.lastUpdate,
    });
    expect(parseMarker('branch1', JSON.stringify(m))).toEqual(m);
    expect(parseMarker('branch2', JSON.stringify(m))).toBeUndefined();
    expect(parseMarker('branch1', '{"name": "branch1", "slot": "x"}')).toBeUndefined();
    expect(parseMarker('branch1', 'not json')).toBeUndefined();

    // Rebuilt from the markers: the old one knows only createdAt, the new one the rest.
    const root = await tempDir();
    for (const [name, marker] of [
      ['branch1', { ...m }],
      [
        'branch2',
        { name: 'branch2', slot: 2, port: 6502, vcs: 'git', ref: 'x', createdAt: b.createdAt },
      ],
      ['branch3', 'damaged'],
    ] as const) {
      await mkdir(join(root, name));
      await writeFile(
        layout.siteMarker(root, name),
        typeof marker === 'string' ? marker : JSON.stringify(marker),
      );
    }
    const { sites, damaged } = await sitesFromFolders(root);
    expect(damaged).toEqual(['branch3']);
    const [one, two] = sites;
    expect(one).toMatchObject({ name: 'branch1', hold: b.hold, lastUpdate: b.lastUpdate });
    expect(one!.datesUnknown).toBeUndefined();
    expect(two).toMatchObject({ name: 'branch2', datesUnknown: true });
    expect(staleness(cfg, one!)).toBeUndefined(); // updated two minutes ago
    expect(staleness(cfg, two!)).toBeUndefined(); // made 90 days ago, updated when? unknown
    expect(staleness(cfg, site())).toMatch(/^not updated for 90 days/);
    // Updated after the repair: its dates are known again.
    const later = {
      ...two!,
      lastUpdate: { at: b.createdAt, result: 'ok' as const, durationMs: 1 },
    };
    expect(staleness(cfg, later)).toMatch(/^not updated for 90 days/);
  });
});

describe('pending markers', () => {
  it('a marker that cannot be read is an interrupted change, named, never "nothing pending"', async () => {
    const root = await tempDir();
    expect(await readPending(root, 'branch1')).toBeUndefined();
    await markPending(root, 'branch1', 'update');
    expect(await readPending(root, 'branch1')).toMatchObject({ op: 'update', pid: process.pid });
    const file = layout.pending(root, 'branch1');
    for (const [text, why] of [
      ['{"op": "upd', 'not JSON'],
      ['', 'empty'],
      ['{"op": "dance", "pid": 1, "started": "x"}', 'not a marker karlstage wrote'],
      ['[1, 2]', 'not a marker karlstage wrote'],
    ]) {
      await writeFile(file, text!);
      expect(await readPending(root, 'branch1'), text).toEqual({
        op: 'unknown',
        pid: 0,
        started: 'unknown',
        damaged: `${file} is damaged (${why})`,
      });
    }
    expect(await readFile(file, 'utf8')).toBe('[1, 2]'); // reading it changes nothing
  });
});
