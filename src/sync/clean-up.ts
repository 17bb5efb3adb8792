import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Step } from '../core/plan.js';
import { legacyGoldenName, stagingDatabaseName, twin } from '../db/names.js';
import type { CustomerContext } from './context.js';
import { commitFiles, putBackFiles } from './files.js';

/**
 * Repair what a killed run left. The rule: a sync of a database commits by
 * dropping its old twin (NAME__old), so an old twin found here means that sync
 * did not finish (killed mid-swap or mid-migrate): yesterday's copy is put
 * back, with its files. A new twin (NAME__new) or file folder is unfinished
 * work: removed. A golden copy of the naming before "__" is renamed once.
 * The customer's sync starts here (its duration is counted from here).
 */
export function cleanUpStep(c: CustomerContext): Step {
  const { cfg, db, golden, branches, dumpDir } = c;
  const customer = c.customer.name;
  const legacy = legacyGoldenName(customer);
  const lives = [golden, ...branches.map((b) => stagingDatabaseName(b, customer))];
  const look = db.lookUp([legacy, ...lives.flatMap((l) => [l, twin(l, 'new'), twin(l, 'old')])]);
  const adopt = db.rename(
    legacy,
    golden,
    `rename ${legacy} to ${golden}`,
    `when ${legacy} is there`,
  );
  const repairs = lives.map((live) => ({
    live,
    back: db.putBack(live, `when ${twin(live, 'old')} is there`),
    drop: db.drop(twin(live, 'new'), `when only ${twin(live, 'new')} is there`),
  }));
  return {
    title: 'clean up what an interrupted run left',
    commands: [look, adopt, ...repairs.flatMap((r) => [...r.back, r.drop])],
    effects: [
      `put back or remove each branch site's staged files (…${cfg.deployment.blobs}/${customer}.karlstage-old/-new)`,
      `remove ${dumpDir}/*.partial`,
    ],
    run: async (ctx) => {
      c.record.startedAt = Date.now();
      await mkdir(dumpDir, { recursive: true });
      const said: string[] = [];
      const names = new Set((await ctx.exec(look)).stdout.split('\n').filter(Boolean));
      if (names.has(legacy) && !names.has(golden) && !c.facts.goldenIsASite) {
        await ctx.exec(adopt);
        said.push(`${legacy} → ${golden}`);
      }
      for (const r of repairs) {
        if (names.has(twin(r.live, 'old'))) {
          for (const back of r.back) await ctx.exec(back);
          said.push(`${twin(r.live, 'old')} → ${r.live}`);
        } else if (names.has(twin(r.live, 'new'))) {
          await ctx.exec(r.drop);
          said.push(twin(r.live, 'new'));
        }
      }
      for (const b of branches) {
        const uncommitted = names.has(twin(stagingDatabaseName(b, customer), 'old'));
        said.push(
          ...(uncommitted
            ? await putBackFiles(cfg, b, customer)
            : await commitFiles(cfg, b, customer)),
        );
      }
      for (const f of await readdir(dumpDir).catch(() => [] as string[]))
        if (f.endsWith('.partial')) {
          await rm(join(dumpDir, f), { recursive: true, force: true });
          said.push(f);
        }
      if (said.length) ctx.say(`cleaned up: ${said.join(', ')}`);
    },
  };
}
