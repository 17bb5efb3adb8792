// Covers: src/core/plan.ts src/commands/sync.ts src/commands/reset.ts src/sync/
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { destroy } from '../src/commands/destroy.js';
import { reset } from '../src/commands/reset.js';
import { sync } from '../src/commands/sync.js';
import { expectRunsAsShown, recorder, type Check } from './helpers/dry-run.js';
import { peopleDatabase, pgCluster } from './helpers/pg.js';
import { gitRepo } from './helpers/repos.js';
import { stagingServer, useDatabases } from './helpers/staging.js';

/**
 * The dry run = the real run for the commands that move data, on one real PostgreSQL cluster
 * (production and staging in different databases of it): create and destroy with databases,
 * the nightly sync, a sync of one site, reset.
 */

describe('a dry run shows exactly what runs: data', () => {
  it('create and destroy with databases, sync --nightly, sync BRANCH and reset', async () => {
    const pg = await pgCluster();
    await peopleDatabase(pg, 'prod_osf', 30);
    await peopleDatabase(pg, 'prod_another', 10);
    const st = await stagingServer(await gitRepo(), { customers: [], databases: true });
    const sanitize = join(st.root, 'sanitize-osf.sql');
    await writeFile(sanitize, "UPDATE docs SET owner_email = 'tester@staging.invalid';\n");
    await useDatabases(st, {
      database: `host=127.0.0.1 port=${pg.port} user=postgres password=superpw`,
      production: pg.dsn('prod_osf'),
      osf: { staging_on_production_server: 'yes', sanitize },
      append: `\n[customer:another]\nmail_branch = branch2\nstaging_on_production_server = yes\nproduction = ${pg.dsn('prod_another')}\n`,
    });
    await create({ ...st.g, branch: 'branch2', customers: ['osf'] });
    const rec = recorder();
    const b1 = { ...st.g, branch: 'branch1' };
    const checks: Check[] = [
      { name: 'create', dry: () => create({ ...b1, dryRun: true }), real: () => create(b1) },
      {
        name: 'sync --nightly',
        dry: () => sync({ ...st.g, branches: [], nightly: true, dryRun: true }),
        real: () => sync({ ...st.g, branches: [], nightly: true }),
      },
      {
        name: 'sync branch1',
        dry: () => sync({ ...st.g, branches: ['branch1'], dryRun: true }),
        real: () => sync({ ...st.g, branches: ['branch1'] }),
      },
      { name: 'reset', dry: () => reset({ ...b1, dryRun: true }), real: () => reset(b1) },
      {
        name: 'destroy',
        dry: () => destroy({ ...b1, dryRun: true }),
        real: () => destroy({ ...b1, yes: true }),
      },
    ];
    await expectRunsAsShown(rec, checks);
    // What the real runs did: branch2 has osf's sanitized data; branch1's databases are gone.
    expect(
      await pg.sql(
        'ks_branch2_osf',
        "SELECT count(*) FROM docs WHERE owner_email = 'tester@staging.invalid'",
      ),
    ).toBe('30');
    expect(
      await pg.sql(
        'postgres',
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'ks_branch1_%'",
      ),
    ).toBe('0');
  });
});
