// Covers: src/commands/repair.ts src/model/marker.ts src/model/sites.ts src/model/state.ts src/model/records.ts
import { existsSync } from 'node:fs';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { readState, updateState } from '../src/model/state.js';
import { gitRepo } from './helpers/repos.js';
import { stagingServer } from './helpers/staging.js';

/**
 * Repairs that must not lose sites: state.json rebuilt from the sites' own markers keeps
 * each site's hold and dates (so prune removes nothing it should not), and a state.json
 * deleted by hand is a damaged root, never a fresh start over the sites that are there.
 */
const DAY = 86_400_000;
const marker = (root: string, branch: string) => join(root, branch, '.karlstage-site.json');

describe('repair', () => {
  it('rebuilt from the markers, each site keeps its hold and its dates; prune removes only what is stale', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo); // branch1 and branch2 are mail branches: not used here
    for (const b of ['branch3', 'branch4', 'branch5', 'branch6'])
      await create({ ...st.g, branch: b });
    expect((await st.cli(['hold', 'branch4', '--reason', 'OSF is testing'])).exitCode).toBe(0);
    // Made 40 days ago; branch3 updated two minutes ago; branch4 held since then. Each change of
    // state.json brings the sites' markers up to date.
    const old = new Date(Date.now() - 40 * DAY).toISOString();
    const recent = new Date(Date.now() - 2 * 60_000).toISOString();
    await updateState(st.root, (s) => {
      for (const b of ['branch3', 'branch4', 'branch5', 'branch6']) {
        s.branches[b]!.createdAt = old;
        s.branches[b]!.built!.at = old;
      }
      s.branches.branch3!.lastUpdate = { at: recent, result: 'ok', durationMs: 1000 };
      s.branches.branch4!.hold!.since = old;
    });
    expect(JSON.parse(await readFile(marker(st.root, 'branch4'), 'utf8'))).toMatchObject({
      version: 2,
      hold: { since: old, reason: 'OSF is testing' },
    });
    // branch5's marker as an older karlstage wrote it: it knows only when the site was made.
    const five = JSON.parse(await readFile(marker(st.root, 'branch5'), 'utf8'));
    const { name, slot, port, vcs, ref, createdAt } = five;
    await writeFile(
      marker(st.root, 'branch5'),
      JSON.stringify({ name, slot, port, vcs, ref, createdAt }),
    );
    // Both copies of the state damaged: only the markers are left.
    await writeFile(join(st.root, '.karlstage', 'state.json'), '{"version": 1, "bran');
    await writeFile(join(st.root, '.karlstage', 'state.json.last-good'), '');

    const r = await st.cli(['repair']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain(
      "rebuild it from the branch sites' folders (branch3, branch4, branch5, branch6)",
    );
    const after = (await readState(st.root)).branches;
    expect(after.branch4!.hold).toMatchObject({ since: old, reason: 'OSF is testing' });
    expect(after.branch3!.lastUpdate!.at).toBe(recent);
    expect(after.branch5!.datesUnknown).toBe(true);

    const shown = await st.cli(['prune']);
    expect(shown.exitCode, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(
      /^kept {4}branch4: stale \(not updated for 40 days.*\), but held by/m,
    );
    expect(shown.stdout).toMatch(/^stale {3}branch6: not updated for 40 days/m);
    expect(shown.stdout).not.toMatch(/branch3|branch5/);
    const pruned = await st.cli(['prune', '--yes']);
    expect(pruned.exitCode, pruned.stderr).toBe(0);
    expect(existsSync(join(st.root, 'branch6'))).toBe(false);
    for (const b of ['branch3', 'branch4', 'branch5'])
      expect(existsSync(join(st.root, b)), b).toBe(true);
  });

  it('a state.json deleted by hand: every command says so and changes nothing; repair puts it back, and adds a site the state lost', async () => {
    const repo = await gitRepo();
    const st = await stagingServer(repo);
    await create({ ...st.g, branch: 'branch1' });
    const state = join(st.root, '.karlstage', 'state.json');
    const good = await readFile(state, 'utf8');
    await rm(state);
    const before = await st.snapshot();
    for (const args of [
      ['status'],
      ['create', 'branch2'],
      ['update', '--all'],
      ['poll', '--build'],
      ['hold', 'branch1'],
      ['sites'],
      ['prune', '--yes'],
    ]) {
      const r = await st.cli(args);
      expect(r.exitCode, args.join(' ')).toBe(1);
      expect(r.stderr.trim(), args.join(' ')).toMatch(
        /^error: \S+\/state\.json is missing, but this staging root has branch sites \(branch1\): "karlstage repair" puts it back from the last good copy or rebuilds it from the branch sites' folders; nothing was changed$/,
      );
      expect(await st.snapshot(), args.join(' ')).toBe(before);
    }
    expect((await st.cli(['doctor'])).stdout).toMatch(/^FAIL\s+state\s+.*state\.json is missing/m);

    const r = await st.cli(['repair']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /state\.json was damaged \(it is missing\): put back the last good copy \(1 branch sites\)/,
    );
    expect(await readFile(state, 'utf8')).toBe(good);
    // Nothing started afresh: the next site gets the next slot.
    await create({ ...st.g, branch: 'branch2' });
    const s = await readState(st.root);
    expect(s.branches.branch2!.slot).toBe(s.branches.branch1!.slot + 1);

    // A state.json that reads well but has lost a site whose folder is there (as an older
    // karlstage's fresh start left it): doctor names it, repair adds it back.
    await updateState(st.root, (x) => void delete x.branches.branch1);
    const d = await st.cli(['doctor']);
    expect(d.stdout).toMatch(
      /^warn\s+state\s+1 branch site\(s\); state\.json lacks branch1, whose folder says it is one: "karlstage repair" adds it$/m,
    );
    const again = await st.cli(['repair']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/add branch1 from its folder/);
    expect((await readState(st.root)).branches.branch1).toMatchObject({
      slot: s.branches.branch1!.slot,
      port: s.branches.branch1!.port,
    });
    expect((await st.cli(['repair'])).stdout).toMatch(/is fine: nothing to repair/);
  });
});
