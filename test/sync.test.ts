// Covers: src/sync/ src/commands/sync.ts src/commands/reset.ts src/db/
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { execa } from 'execa';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { parseDsn } from '../src/core/dsn.js';
import { run } from '../src/core/runner.js';
import { readState } from '../src/model/state.js';
import { loadConfig } from '../src/config/config.js';
import { productionEnv } from '../src/db/pg.js';
import { peopleDatabase, pgCluster } from './helpers/pg.js';
import { commandLines, killGroup, startCli, waitFor } from './helpers/processes.js';
import { gitRepo } from './helpers/repos.js';
import { inBrowser } from './helpers/browser.js';
import { webhookReceiver } from './helpers/receivers.js';
import { stagingServer, useDatabases } from './helpers/staging.js';
import { onCleanup, tempDir } from './helpers/tmp.js';

const CHECKSUM = `SELECT md5(string_agg(d::text, ',' ORDER BY id)) FROM docs d`;

/** Production and staging on one throwaway cluster (different databases), two customers, two branch sites. */
async function syncStaging(opts: { anotherPort?: number; sanitizeSql?: string } = {}) {
  const pg = await pgCluster();
  await peopleDatabase(pg, 'prod_osf', 50);
  await peopleDatabase(pg, 'prod_another', 20);
  const repo = await gitRepo();
  const st = await stagingServer(repo, { customers: [], databases: true });
  const sanitize = join(st.root, 'sanitize-osf.sql');
  await writeFile(
    sanitize,
    opts.sanitizeSql ?? "UPDATE docs SET owner_email = 'tester@staging.invalid';\n",
  );
  await useDatabases(st, {
    database: `host=127.0.0.1 port=${pg.port} user=postgres password=superpw`,
    production: pg.dsn('prod_osf'),
    osf: { staging_on_production_server: 'yes', sanitize },
    append: `\n[customer:another]\nmail_branch = branch2\nstaging_on_production_server = yes\nproduction = host=localhost port=${opts.anotherPort ?? pg.port} user=postgres password=superpw dbname=prod_another\n`,
  });
  await create({ ...st.g, branch: 'branch1' });
  await create({ ...st.g, branch: 'branch2', customers: ['osf'] });
  return { pg, st };
}

describe('nightly sync on a real PostgreSQL', () => {
  it("copies each customer's production data into every branch site serving it, sanitized, production untouched", async () => {
    const { pg, st } = await syncStaging();
    const before = await pg.sql('prod_osf', CHECKSUM);

    const r = await st.cli(['sync', '--nightly']);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/ok\s+osf → branch1 \(.* s, unavailable \d+ ms\)/);
    expect(r.stdout).toMatch(/ok\s+osf → branch2/);
    expect(r.stdout).toMatch(/ok\s+another → branch1/);
    expect(r.stdout).not.toMatch(/another → branch2/);

    for (const db of ['ks_branch1_osf', 'ks_branch2_osf']) {
      expect(await pg.sql(db, 'SELECT count(*) FROM docs')).toBe('50');
      expect(
        await pg.sql(db, "SELECT count(*) FROM docs WHERE owner_email <> 'tester@staging.invalid'"),
      ).toBe('0');
    }
    expect(await pg.sql('ks_branch1_another', 'SELECT count(*) FROM docs')).toBe('20');
    expect(
      await pg.sql(
        'ks_branch1_another',
        "SELECT count(*) FROM docs WHERE owner_email LIKE '%@real.example.org'",
      ),
    ).toBe('20');
    expect(await pg.sql('prod_osf', CHECKSUM)).toBe(before);
    expect(
      await pg.sql(
        'prod_osf',
        "SELECT count(*) FROM docs WHERE owner_email LIKE '%@real.example.org'",
      ),
    ).toBe('50');
    expect(
      await pg.sql(
        'postgres',
        "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE 'ks_%'",
      ),
    ).toBe('ks__golden_another,ks__golden_osf,ks_branch1_another,ks_branch1_osf,ks_branch2_osf');
    expect(
      (await readdir(join(st.root, '.karlstage', 'dumps', 'osf'))).filter((f) =>
        f.endsWith('.dump'),
      ),
    ).toHaveLength(1);
    expect(await readFile(join(st.root, 'branch1', 'var', 'migrations'), 'utf8')).toContain(
      'evolve --latest',
    );

    const b1 = (await readState(st.root)).branches.branch1!;
    expect(b1.data?.osf).toMatchObject({ asOf: expect.any(String), lastSync: { result: 'ok' } });
    const list = JSON.parse(
      await readFile(join(st.root, '.karlstage', 'sites', 'all', 'sites.json'), 'utf8'),
    );
    expect(list.branches[0].data.asOf).toBe(b1.data?.osf?.asOf);

    // The next night sees production's changes; the staging copies follow.
    await pg.sql(
      'prod_osf',
      "INSERT INTO docs (title, owner_email) VALUES ('new', 'n@real.example.org')",
    );
    expect((await st.cli(['sync', '--nightly'])).exitCode).toBe(0);
    expect(await pg.sql('ks_branch2_osf', 'SELECT count(*) FROM docs')).toBe('51');
  });

  it('create copies the golden copy into a new branch site; destroy drops its databases', async () => {
    const { pg, st } = await syncStaging();
    // Before any sync: empty databases.
    expect(
      await pg.sql('ks_branch1_osf', "SELECT count(*) FROM pg_tables WHERE tablename = 'docs'"),
    ).toBe('0');
    expect((await st.cli(['sync', '--nightly'])).exitCode).toBe(0);
    const r = await st.cli(['create', 'branch3', '--customers', 'osf']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await pg.sql('ks_branch3_osf', 'SELECT count(*) FROM docs')).toBe('50');
    // What a sync killed mid-migrate leaves: yesterday's copy kept as the _old twin.
    await pg.sql('postgres', 'CREATE DATABASE ks_branch3_osf__old');
    expect((await st.cli(['destroy', 'branch3', '--yes'])).exitCode).toBe(0);
    expect(
      await pg.sql(
        'postgres',
        "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'ks_branch3%'",
      ),
    ).toBe('');
    // So a new site of the same name starts from the golden copy, and no sync resurrects the old twin.
    await pg.sql('postgres', 'CREATE DATABASE ks_branch3_osf__old');
    expect((await st.cli(['create', 'branch3', '--customers', 'osf'])).exitCode).toBe(0);
    expect(
      await pg.sql(
        'postgres',
        "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE 'ks_branch3%'",
      ),
    ).toBe('ks_branch3_osf');
    expect((await st.cli(['destroy', 'branch3', '--yes'])).exitCode).toBe(0);
    // A create that fails after making its databases drops them again.
    const bad = await st.cli(['create', 'branch4', '--customers', 'osf'], {
      DEMO_BUILD_SLEEP: 'not-a-number',
    });
    expect(bad.exitCode).toBe(1);
    expect(bad.stderr).toContain('branch4: build failed');
    expect(
      await pg.sql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'ks_branch4_osf'"),
    ).toBe('0');
  });

  it('copies the blobs once per customer and hard-links them into each branch site', async () => {
    const { st } = await syncStaging();
    const blobs = await tempDir('ks-blobs-');
    await mkdir(join(blobs, 'ab', 'cd'), { recursive: true });
    await writeFile(join(blobs, 'ab', 'cd', '0001.blob'), 'first blob');
    await writeFile(join(blobs, 'gone.blob'), 'deleted in production later');
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(
        /^(production = host=127.0.0.1.*)$/m,
        `$1\nproduction_files = ${blobs}`,
      ),
    );

    expect((await st.cli(['sync', '--nightly', '--customers', 'osf'])).exitCode).toBe(0);
    const b1 = join(st.root, 'branch1', 'var', 'blobs', 'osf', 'ab', 'cd', '0001.blob');
    const b2 = join(st.root, 'branch2', 'var', 'blobs', 'osf', 'ab', 'cd', '0001.blob');
    expect(await readFile(b1, 'utf8')).toBe('first blob');
    // One copy on disk: the branch sites share the mirror's inode.
    expect(statSync(b1).ino).toBe(statSync(b2).ino);
    expect(statSync(b1).nlink).toBe(3);

    await writeFile(join(blobs, 'ab', 'cd', '0002.blob'), 'second blob');
    await rm(join(blobs, 'gone.blob'));
    expect((await st.cli(['sync', '--nightly', '--customers', 'osf'])).exitCode).toBe(0);
    expect(
      await readFile(
        join(st.root, 'branch2', 'var', 'blobs', 'osf', 'ab', 'cd', '0002.blob'),
        'utf8',
      ),
    ).toBe('second blob');
    expect(existsSync(join(st.root, 'branch2', 'var', 'blobs', 'osf', 'gone.blob'))).toBe(false);
    expect(readdirSync(join(st.root, 'branch2', 'var', 'blobs'))).toEqual(['osf']);
    expect(await readFile(join(blobs, 'ab', 'cd', '0001.blob'), 'utf8')).toBe('first blob');
  });

  it('syncs from the newest backup file when production_dump is given (a nightly tested restore)', async () => {
    const { pg, st } = await syncStaging();
    const backups = await tempDir('ks-backups-');
    const dumpTo = (file: string) =>
      execa('pg_dump', ['--format=custom', `--file=${join(backups, file)}`], {
        env: { ...pg.env, PGDATABASE: 'prod_osf' },
      });
    await dumpTo('osf-monday.dump');
    await pg.sql('prod_osf', "INSERT INTO docs (title) VALUES ('tuesday')");
    await dumpTo('osf-tuesday.dump');
    await utimes(join(backups, 'osf-monday.dump'), new Date('2026-11-16'), new Date('2026-11-16'));
    await writeFile(join(backups, 'unrelated.txt'), 'not a dump');
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(
        /^production = host=127.0.0.1.*$/m,
        `production_dump = ${backups}/osf-*.dump`,
      ),
    );

    const r = await st.cli(['sync', '--nightly', '--customers', 'osf']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('51');
    expect(
      await pg.sql(
        'ks_branch1_osf',
        "SELECT count(*) FROM docs WHERE owner_email <> 'tester@staging.invalid'",
      ),
    ).toBe('0');
    expect((await readState(st.root)).branches.branch1!.data?.osf?.dump).toBe('osf-tuesday.dump');
    expect((await st.cli(['doctor'])).stdout).toMatch(
      /^ok\s+backup osf\s+\/.*\/osf-tuesday\.dump of \d{4}-\d\d-\d\dT/m,
    );
  });

  it("one customer's unreachable production fails that customer only; the others sync; exit 1 names it", async () => {
    const { pg, st } = await syncStaging({ anotherPort: 1 });
    const r = await st.cli(['sync', '--nightly']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/sync: 1 of 2 customers failed/);
    // Its production cannot be asked who it is: nothing of its is written on a guess.
    expect(r.stderr).toMatch(
      /another: cannot tell whether the staging server is another's production server \(.*port 1 failed: Connection refused/,
    );
    expect(r.stderr).not.toContain('superpw');
    expect(r.stdout).toMatch(/failed\s+another → branch1: cannot tell whether/);

    // status: per branch site and customer, the data's date and how the last sync went.
    const status = await st.cli(['status']);
    expect(status.stdout).toMatch(/^branch1\s.*\d\d:\d\d failed\s/m);
    expect(status.stdout).toMatch(/^branch2\s.*\d\d:\d\d ok\s/m);
    expect(status.stdout).toMatch(
      /^BRANCH\s+CUSTOMER\s+DATA AS OF\s+CHECKED\s+MIGRATES\s+LAST SYNC\s+RESULT$/m,
    );
    expect(status.stdout).toMatch(
      /^branch1\s+osf\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+-\s+ok\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+ok in \d+\.\d s$/m,
    );
    expect(status.stdout).toMatch(
      /^branch1\s+another\s+no copy yet\s+-\s+-\s+\d{4}-\d\d-\d\d \d\d:\d\d\s+failed after \d+\.\d s: cannot tell whether the staging server is another's production server \(.*port 1 failed: Connection refused/m,
    );
    expect(status.stdout).not.toContain('superpw');
    const json = JSON.parse((await st.cli(['status', '--json'])).stdout);
    expect(json.branches[0].data.another.lastSync).toMatchObject({
      result: 'failed',
      durationMs: expect.any(Number),
      error: expect.stringMatching(
        /^cannot tell whether the staging server is another's production/,
      ),
    });
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('50');
    expect(
      await pg.sql(
        'postgres',
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'ks__golden_another%'",
      ),
    ).toBe('0');
  });

  it('a branch site named "golden" has its own database; osf\'s golden copy keeps its own name', async () => {
    const { pg, st } = await syncStaging();
    // A golden copy made before the "__" naming is renamed once by the next sync.
    await pg.sql('postgres', 'CREATE DATABASE ks_golden_osf');
    let r = await st.cli(['sync', '--nightly', '--customers', 'osf']);
    expect(r.exitCode, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain('cleaned up: ks_golden_osf → ks__golden_osf');
    const c = await st.cli(['create', 'golden', '--customers', 'osf']);
    expect(c.exitCode, c.stderr).toBe(0);
    // The new site got a copy of the golden copy, under its own name.
    expect(await pg.sql('ks_golden_osf', 'SELECT count(*) FROM docs')).toBe('50');
    r = await st.cli(['destroy', 'golden', '--yes']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(
      await pg.sql(
        'postgres',
        "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE '%golden%'",
      ),
    ).toBe('ks__golden_osf');
    expect(await pg.sql('ks__golden_osf', 'SELECT count(*) FROM docs')).toBe('50');
  });

  it('refuses, before anything runs, a staging database that resolves to production', async () => {
    const { pg, st } = await syncStaging();
    // localhost vs 127.0.0.1, keyword vs URL: still the same database.
    const ini = await readFile(st.config, 'utf8');
    await writeFile(
      st.config,
      ini.replace(
        /^production = host=127.0.0.1 .*$/m,
        `production = postgres://postgres:superpw@localhost:${pg.port}/ks_branch1_osf`,
      ),
    );
    const r = await st.cli(['sync', '--nightly']);
    expect(r.exitCode).toBe(2);
    expect(r.stderr).toMatch(
      /refusing: the staging database "ks_branch1_osf" would be osf's production database \(\[customer:osf\] production = user=postgres password=\*\*\* host=localhost port=\d+ dbname=ks_branch1_osf\): fix \[staging\] database or that setting$/m,
    );
    expect(existsSync(join(st.root, '.karlstage', 'dumps'))).toBe(false);
  });

  it('a held branch site keeps its data; status and the summary say so', async () => {
    const { pg, st } = await syncStaging();
    expect((await st.cli(['sync', '--nightly'])).exitCode).toBe(0);
    expect(
      (await st.cli(['hold', 'branch2', '--reason', 'OSF testing the calendar'])).exitCode,
    ).toBe(0);
    await pg.sql('prod_osf', "INSERT INTO docs (title) VALUES ('tonight')");
    const r = await st.cli(['sync', '--nightly']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('held    branch2: kept its data (held out of the nightly sync)');
    expect((await st.cli(['status'])).stdout).toMatch(
      /^branch2\s+osf\s+.*ok in .* {2}held by \S+ since .*: OSF testing the calendar$/m,
    );
    expect(await pg.sql('ks_branch2_osf', 'SELECT count(*) FROM docs')).toBe('50');
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('51');
    expect(
      JSON.parse(await readFile(join(st.root, '.karlstage', 'sites', 'all', 'sites.json'), 'utf8'))
        .branches[1].heldOutOfSync,
    ).toBe(true);
    expect((await st.cli(['hold', 'branch2', '--release'])).exitCode).toBe(0);
    expect((await st.cli(['sync', '--nightly'])).exitCode).toBe(0);
    expect(await pg.sql('ks_branch2_osf', 'SELECT count(*) FROM docs')).toBe('51');
  });

  it('killed during the sanitize step, every branch site keeps its data; the next run cleans up and completes', async () => {
    const { pg, st } = await syncStaging({
      sanitizeSql:
        "UPDATE docs SET owner_email = 'tester@staging.invalid';\nSELECT pg_sleep(30);\n",
    });
    await writeFile(st.config, (await readFile(st.config, 'utf8')).replace(/^sanitize = .*$/m, ''));
    expect((await st.cli(['sync', '--nightly', '--customers', 'osf'])).exitCode).toBe(0);
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(
        /^production = (host=127.0.0.1.*)$/m,
        `production = $1\nsanitize = ${join(st.root, 'sanitize-osf.sql')}`,
      ),
    );
    await pg.sql('prod_osf', "INSERT INTO docs (title) VALUES ('x')");

    const run = startCli(st.root, ['sync', '--nightly', '--customers', 'osf']);
    await waitFor(
      'the sanitize step',
      async () =>
        (await pg.sql(
          'postgres',
          "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
        )) === '1',
    );
    killGroup(run.pid);
    await run;
    await pg.sql(
      'postgres',
      "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep%' AND pid <> pg_backend_pid()",
    );
    expect(
      await pg.sql(
        'postgres',
        "SELECT count(*) FROM pg_database WHERE datname = 'ks__golden_osf__new'",
      ),
    ).toBe('1');
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('50');

    await writeFile(
      join(st.root, 'sanitize-osf.sql'),
      "UPDATE docs SET owner_email = 'tester@staging.invalid';\n",
    );
    const again = await st.cli(['sync', '--nightly', '--customers', 'osf']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/cleaned up: .*ks__golden_osf__new/);
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('51');
    expect(
      await pg.sql(
        'postgres',
        "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_new' OR datname LIKE '%\\_old'",
      ),
    ).toBe('0');
  });

  // Each point is held still by someone else's open transaction (a lock the step must wait for),
  // so the kill lands exactly there; then the lock is let go and the next run must repair.
  const points = [
    {
      point: 'during the dump',
      blocker: ['prod_osf', 'LOCK TABLE docs IN ACCESS EXCLUSIVE MODE'],
      // pg_dump's session on production is left to notice by itself (production is only read).
      waiting: "datname = 'prod_osf'",
      stagingSession: false,
      after: { branch1: '50', branch2: '50' },
      leftover: /osf-\d{8}T\d{6}Z\.dump\.partial/,
    },
    {
      point: 'during the swap of the golden copy',
      blocker: ['postgres', "COMMENT ON DATABASE ks__golden_osf IS 'busy'"],
      waiting: "query LIKE '%RENAME TO%'",
      stagingSession: true,
      after: { branch1: '50', branch2: '50' },
      leftover: /ks__golden_osf__new/,
    },
    {
      point: "during branch2's clone (branch1 done)",
      blocker: ['postgres', 'ALTER DATABASE spare RENAME TO ks_branch2_osf__new'],
      waiting: "query LIKE 'CREATE DATABASE%'",
      stagingSession: true,
      after: { branch1: '51', branch2: '50' },
      leftover: undefined,
    },
    {
      point: "during branch1's swap",
      blocker: ['postgres', "COMMENT ON DATABASE ks_branch1_osf IS 'busy'"],
      waiting: "query LIKE '%RENAME TO%'",
      stagingSession: true,
      after: { branch1: '50', branch2: '50' },
      leftover: /ks_branch1_osf__new/,
    },
  ] as const;

  it.each(points)(
    'killed $point: every branch site keeps complete data; the next run cleans up and completes',
    async ({ blocker, waiting, stagingSession, after, leftover }) => {
      const { pg, st } = await syncStaging();
      expect((await st.cli(['sync', '--nightly', '--customers', 'osf'])).exitCode).toBe(0);
      await pg.sql('prod_osf', "INSERT INTO docs (title) VALUES ('tonight')");
      await pg.sql('postgres', 'CREATE DATABASE spare');
      const lock = await pg.hold(blocker[0], blocker[1]);

      const run = startCli(st.root, ['sync', '--nightly', '--customers', 'osf']);
      const busy = `SELECT count(*) FROM pg_stat_activity WHERE ${waiting} AND wait_event_type = 'Lock'`;
      await waitFor(
        'the step to wait on the lock',
        async () => (await pg.sql('postgres', busy)) === '1',
      );
      killGroup(run.pid);
      await run;
      // The server gives up a killed client's statement by itself (it does not finish it later).
      if (stagingSession)
        await waitFor(
          'the server to give up the statement',
          async () => (await pg.sql('postgres', busy)) === '0',
          15_000,
        );
      await lock.release();

      expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe(after.branch1);
      expect(await pg.sql('ks_branch2_osf', 'SELECT count(*) FROM docs')).toBe(after.branch2);
      const temporaries = async () =>
        [
          ...(await readdir(join(st.root, '.karlstage', 'dumps', 'osf'))).filter((f) =>
            f.endsWith('.partial'),
          ),
          ...(
            await pg.sql(
              'postgres',
              "SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE '%\\_new' OR datname LIKE '%\\_old'",
            )
          )
            .split(',')
            .filter(Boolean),
        ].join(',');
      if (leftover) expect(await temporaries()).toMatch(leftover);

      const again = await st.cli(['sync', '--nightly', '--customers', 'osf']);
      expect(again.exitCode, again.stderr).toBe(0);
      if (leftover) expect(again.stdout).toMatch(new RegExp(`cleaned up: .*${leftover.source}`));
      expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('51');
      expect(await pg.sql('ks_branch2_osf', 'SELECT count(*) FROM docs')).toBe('51');
      expect(await temporaries()).toBe('');
    },
  );

  it('puts back a database caught between the renames of a swap, even on a night production is down', async () => {
    const { pg, st } = await syncStaging();
    expect((await st.cli(['sync', '--nightly', '--customers', 'osf'])).exitCode).toBe(0);
    // What a swap interrupted between its two renames would leave: the live names gone, yesterday's data under _old.
    await pg.sql('postgres', 'ALTER DATABASE ks_branch1_osf RENAME TO ks_branch1_osf__old');
    await pg.sql('postgres', 'ALTER DATABASE ks__golden_osf RENAME TO ks__golden_osf__old');
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(
        /^(production = host=127\.0\.0\.1 port=)\d+/m,
        '$11',
      ),
    );

    // Production cannot be asked who it is: the repair is guarded by its identity as last asked.
    const r = await st.cli(['sync', '--nightly', '--customers', 'osf']);
    expect(r.exitCode).toBe(1);
    expect(r.stdout).toContain(
      'cleaned up: ks__golden_osf__old → ks__golden_osf, ks_branch1_osf__old → ks_branch1_osf',
    );
    expect(r.stderr).toMatch(
      /osf: cannot tell whether the staging server is osf's production server/,
    );
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('50');
    expect(
      await pg.sql('postgres', "SELECT count(*) FROM pg_database WHERE datname LIKE '%\\_old'"),
    ).toBe('0');
  });

  it('a second sync --nightly exits 75 naming the first, or waits its turn; no password on any command line', async () => {
    const { pg, st } = await syncStaging();
    const lock = await pg.hold('prod_osf', 'LOCK TABLE docs IN ACCESS EXCLUSIVE MODE');
    const first = startCli(st.root, ['sync', '--nightly']);
    await waitFor(
      'the dump to wait on the lock',
      async () =>
        (await pg.sql(
          'postgres',
          "SELECT count(*) FROM pg_stat_activity WHERE datname = 'prod_osf' AND wait_event_type = 'Lock'",
        )) === '1',
    );
    // What `ps` shows while the dump runs: the password travels by environment only.
    const running = commandLines();
    expect(running.some((l) => /pg_dump --format=directory/.test(l))).toBe(true);
    expect(running.filter((l) => l.includes('superpw'))).toEqual([]);

    const second = await st.cli(['sync', '--nightly']);
    expect(second.exitCode).toBe(75);
    expect(second.stderr).toMatch(
      new RegExp(
        `holds the sync lock: "sync --nightly" \\(pid ${first.pid} on .*\\); try again later or pass --wait SECONDS`,
      ),
    );
    const waiting = startCli(st.root, ['sync', '--nightly', '--wait', '120']);
    await waitFor('the second sync to wait for the sync lock', () =>
      waiting.output().includes('waiting up to 120 s: another karlstage run holds the sync lock'),
    );
    expect(waiting.exitCode()).toBeNull(); // still waiting its turn
    await lock.release();
    expect((await first).exitCode).toBe(0);
    const after = await waiting;
    expect(after.exitCode, after.stderr).toBe(0);
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('50');

    // A failure is told to a webhook that never answers: the sync lock is let go first, so the
    // next sync goes ahead at once while the first is still trying.
    const hook = await webhookReceiver({ hang: true });
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace('dbname=prod_another', 'dbname=prod_gone') +
        `\n[notify]\nwebhook = ${hook.url}\n`,
    );
    const telling = startCli(st.root, ['sync', '--nightly']);
    await waitFor('the failure to be told', () => hook.got.length > 0);
    const next = await st.cli(['sync', '--nightly', '--customers', 'osf', '--wait', '0']);
    expect(next.exitCode, next.stderr).toBe(0);
    expect(telling.exitCode()).toBeNull(); // still trying the webhook
    const told = await telling;
    expect(told.exitCode).toBe(1);
    expect(told.stderr).toMatch(/the webhook notification was not delivered: .* gave no answer/);
  });

  it('doctor checks the staging server (version, may create databases) and each production, read-only', async () => {
    const { pg, st } = await syncStaging({ anotherPort: 1 });
    const r = await st.cli(['doctor']);
    expect(r.stdout).toMatch(
      /^ok\s+staging db\s+PostgreSQL 1\d\.\d+, may create databases; cluster (\d+)$/m,
    );
    const cluster = /cluster (\d+)$/m.exec(r.stdout)![1];
    expect(r.stdout).toMatch(
      new RegExp(
        `^ok\\s+production osf\\s+PostgreSQL 1\\d\\.\\d+, reachable read-only; pg_dump 1\\d can dump it; cluster ${cluster}, database prod_osf \\(OID \\d+\\), same cluster as staging \\(allowed: staging_on_production_server = yes\\)$`,
        'm',
      ),
    );
    expect(r.stdout).toMatch(
      /^warn\s+production another\s+connect to another's production database \(read-only\) failed: .*Connection refused/m,
    );
    expect(r.stdout + r.stderr).not.toContain('superpw');

    await pg.sql('postgres', "CREATE ROLE plain LOGIN PASSWORD 'plainpw'");
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(
        /^database = .*$/m,
        `database = host=127.0.0.1 port=${pg.port} user=plain password=plainpw`,
      ),
    );
    const refused = await st.cli(['doctor']);
    expect(refused.exitCode).toBe(1);
    expect(refused.stdout).toMatch(
      /^FAIL\s+staging db\s+PostgreSQL 1\d\.\d+, but this user may not create databases/m,
    );
  });

  /** Production files for osf, synced once; returns the folder to change them in. */
  async function withFiles(st: { config: string }) {
    const blobs = await tempDir('ks-blobs-');
    await writeFile(join(blobs, 'yesterday.blob'), 'yesterday');
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(
        /^(production = host=127.0.0.1.*)$/m,
        `$1\nproduction_files = ${blobs}`,
      ),
    );
    return blobs;
  }
  const setMigrate = async (st: { config: string }, command: string) =>
    writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(/^migrate = .*$/m, `migrate = ${command}`),
    );
  /** Run karlstage with a migrate that sleeps, kill it while that runs, then put the migrate back. */
  const killDuringMigrate = async (
    st: { root: string; config: string },
    args: string[],
    sleep: string,
  ) => {
    const config = await readFile(st.config, 'utf8');
    await setMigrate(st, sleep);
    const run = startCli(st.root, args);
    await waitFor('the migrate step', () => commandLines().includes(sleep));
    killGroup(run.pid);
    await run;
    await writeFile(st.config, config);
  };

  it("a failing migrate puts back the branch site's data and files of yesterday", async () => {
    const { pg, st } = await syncStaging();
    const blobs = await withFiles(st);
    expect((await st.cli(['sync', '--nightly', '--customers', 'osf'])).exitCode).toBe(0);
    await pg.sql('prod_osf', "INSERT INTO docs (title) VALUES ('tonight')");
    await writeFile(join(blobs, 'tonight.blob'), 'tonight');
    await setMigrate(st, 'false');

    const r = await st.cli(['sync', '--nightly', '--customers', 'osf']);
    expect(r.exitCode, r.stderr).toBe(1);
    expect(r.stdout).toMatch(
      /failed\s+osf → branch1: migrate failed: exit status 1; branch1 keeps yesterday's data/,
    );
    for (const b of ['branch1', 'branch2']) {
      expect(await pg.sql(`ks_${b}_osf`, 'SELECT count(*) FROM docs')).toBe('50');
      expect(readdirSync(join(st.root, b, 'var', 'blobs', 'osf'))).toEqual(['yesterday.blob']);
      expect(readdirSync(join(st.root, b, 'var', 'blobs'))).toEqual(['osf']);
    }
    expect(
      await pg.sql('postgres', "SELECT count(*) FROM pg_database WHERE datname ~ '_(new|old)$'"),
    ).toBe('0');
    expect((await st.cli(['status'])).stdout).toMatch(
      /^branch1\s+osf\s+.*failed after .*: migrate failed: exit status 1; branch1 keeps yesterday's data$/m,
    );
  });

  it('killed during a migrate, the next run puts back yesterday’s data and files, then completes', async () => {
    const { pg, st } = await syncStaging();
    const blobs = await withFiles(st);
    expect((await st.cli(['sync', '--nightly', '--customers', 'osf'])).exitCode).toBe(0);
    await pg.sql('prod_osf', "INSERT INTO docs (title) VALUES ('tonight')");
    await writeFile(join(blobs, 'tonight.blob'), 'tonight');
    await killDuringMigrate(st, ['sync', '--nightly', '--customers', 'osf'], 'sleep 77');
    // Killed after branch1's swap: it holds tonight's unmigrated data until the next run.
    expect(await pg.sql('ks_branch1_osf__old', 'SELECT count(*) FROM docs')).toBe('50');

    const again = await st.cli(['sync', '--nightly', '--customers', 'osf']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/cleaned up: .*ks_branch1_osf__old → ks_branch1_osf/);
    expect(again.stdout).toMatch(/cleaned up: .*osf\.karlstage-old → .*branch1\/var\/blobs\/osf/);
    for (const b of ['branch1', 'branch2']) {
      expect(await pg.sql(`ks_${b}_osf`, 'SELECT count(*) FROM docs')).toBe('51');
      expect(readdirSync(join(st.root, b, 'var', 'blobs', 'osf')).sort()).toEqual([
        'tonight.blob',
        'yesterday.blob',
      ]);
      expect(readdirSync(join(st.root, b, 'var', 'blobs'))).toEqual(['osf']);
    }
    expect(
      await pg.sql('postgres', "SELECT count(*) FROM pg_database WHERE datname ~ '_(new|old)$'"),
    ).toBe('0');
  });

  it("production sessions are read-only: the server refuses a write made through the sync's connection settings", async () => {
    const pg = await pgCluster();
    await peopleDatabase(pg, 'prod_osf', 5);
    const attempt = run('psql', ['-X', '-v', 'ON_ERROR_STOP=1', '-c', 'DELETE FROM docs'], {
      step: 'write to production',
      env: productionEnv(parseDsn(pg.dsn('prod_osf'))),
    });
    await expect(attempt).rejects.toMatchObject({
      outputTail: expect.stringMatching(/cannot execute DELETE in a read-only transaction/),
    });
    expect(await pg.sql('prod_osf', 'SELECT count(*) FROM docs')).toBe('5');
  });

  it('sync --dry-run and hold --dry-run print the plan and change nothing', async () => {
    const { pg, st } = await syncStaging();
    const databases = () =>
      pg.sql('postgres', "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database");
    const before = await databases();
    const files = await st.snapshot();

    const r = await st.cli(['sync', '--nightly', '--dry-run']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toContain('nothing is changed');
    expect(r.stdout).toMatch(
      /\$ pg_dump --format=directory --compress=1 --jobs=2 --no-owner --no-privileges '<--file=DUMP.partial>'$/m,
    );
    expect(r.stdout).toContain(
      `CREATE DATABASE "ks_branch1_osf__new" TEMPLATE "ks__golden_osf" STRATEGY FILE_COPY`,
    );
    expect(r.stdout).not.toContain('superpw');
    const h = await st.cli(['hold', 'branch2', '--dry-run']);
    expect(h.exitCode, h.stderr).toBe(0);
    expect(h.stdout).toContain('Dry run: hold branch2 would do this (nothing is changed):');
    expect(h.stdout).toContain('hold it out of the nightly sync');

    expect(await databases()).toBe(before);
    expect(await st.snapshot()).toBe(files);
    expect(existsSync(join(st.root, '.karlstage', 'dumps'))).toBe(false);
  });

  it('a failing sanitize script lets no unsanitized data reach a branch site or the golden copy', async () => {
    const { pg, st } = await syncStaging({
      sanitizeSql:
        "UPDATE docs SET owner_email = 'tester@staging.invalid';\nUPDATE no_such_table SET x = 1;\n",
    });
    const r = await st.cli(['sync', '--nightly', '--customers', 'osf']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/osf: sanitize failed: exit status 3/);
    expect(r.stderr).toMatch(/relation "no_such_table" does not exist/);
    // psql -1: the script's first UPDATE is rolled back with the rest, and the copy is dropped.
    expect(
      await pg.sql(
        'postgres',
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'ks__golden_osf%'",
      ),
    ).toBe('0');
    for (const b of ['branch1', 'branch2'])
      expect(
        await pg.sql(`ks_${b}_osf`, "SELECT count(*) FROM pg_tables WHERE tablename = 'docs'"),
      ).toBe('0');
    expect((await st.cli(['status'])).stdout).toMatch(
      /^branch1\s+osf\s+no copy yet\s+.*failed after .*: sanitize failed: exit status 3 \(.*no_such_table/m,
    );
  });

  it('destroy during a nightly sync: the destroyed site gets no copy of production afterwards', async () => {
    const { pg, st } = await syncStaging();
    // The sync is held at its dump; meanwhile branch2 is destroyed.
    const lock = await pg.hold('prod_osf', 'LOCK TABLE docs IN ACCESS EXCLUSIVE MODE');
    const sync = startCli(st.root, ['sync', '--nightly', '--customers', 'osf']);
    await waitFor(
      'the dump to wait on the lock',
      async () =>
        (await pg.sql(
          'postgres',
          "SELECT count(*) FROM pg_stat_activity WHERE datname = 'prod_osf' AND wait_event_type = 'Lock'",
        )) === '1',
    );
    const d = await st.cli(['destroy', 'branch2', '--yes']);
    expect(d.exitCode, d.stderr).toBe(0);
    await lock.release();
    const r = await sync;
    expect(r.exitCode, String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(
      /branch2: skipped, destroyed \(or no longer serving osf\) meanwhile/,
    );
    expect(
      await pg.sql(
        'postgres',
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'ks\\_branch2%'",
      ),
    ).toBe('0');
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('50');
  });

  it("a bad line in one site's instances.ini fails that site in the nightly sync; the others sync", async () => {
    const { pg, st } = await syncStaging();
    await writeFile(
      join(st.root, 'branch2', 'etc', 'instances.ini'),
      '[instance:osf]\nthis is not ini\n',
    );
    const r = await st.cli(['sync', '--nightly']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(/^error: sync: 1 branch site could not be read$/m);
    expect(r.stderr).toMatch(
      /branch2: .*instances\.ini line 2: "this is not ini" is not a \[section\].*; branch2's data was not synced/,
    );
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('50');
  });

  it('a full disk under the dumps: the one line names it; the next run, with room, completes', async () => {
    const { pg, st } = await syncStaging();
    // Production bigger than the room for its dump (hex text, about 2 MB after level-1 compression).
    await pg.sql(
      'prod_osf',
      'CREATE TABLE bulk AS SELECT i, md5(random()::text) || md5(random()::text) AS x FROM generate_series(1, 60000) i',
    );
    const small = await smallDisk('1m');
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(/^dumps = .*$/m, `dumps = ${small}`),
    );
    const r = await st.cli(['sync', '--nightly', '--customers', 'osf']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /osf: dump production failed: exit status 1 \(.*No space left on device\)/,
    );
    expect(
      await pg.sql('ks_branch1_osf', "SELECT count(*) FROM pg_tables WHERE tablename = 'docs'"),
    ).toBe('0');
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(
        /^dumps = .*$/m,
        `dumps = ${join(st.root, '.karlstage', 'dumps')}`,
      ),
    );
    const again = await st.cli(['sync', '--nightly', '--customers', 'osf']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('50');
  });

  it('production stops during the dump: the one line names why, and every site keeps its data', async () => {
    const { pg, st } = await syncStaging();
    expect((await st.cli(['sync', '--nightly', '--customers', 'osf'])).exitCode).toBe(0);
    // Production on its own cluster now, which stops while the dump waits on a lock there.
    const prod = await pgCluster();
    await peopleDatabase(prod, 'prod_osf', 70);
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(
        /^production = host=127\.0\.0\.1 .*$/m,
        `production = ${prod.dsn('prod_osf')}`,
      ),
    );
    const lock = await prod.hold('prod_osf', 'LOCK TABLE docs IN ACCESS EXCLUSIVE MODE');
    const sync = startCli(st.root, ['sync', '--nightly', '--customers', 'osf']);
    await waitFor(
      'the dump to wait on the lock',
      async () =>
        (await prod.sql(
          'postgres',
          "SELECT count(*) FROM pg_stat_activity WHERE datname = 'prod_osf' AND wait_event_type = 'Lock'",
        )) === '1',
    );
    void lock.release().catch(() => undefined);
    await prod.stop();
    const r = await sync;
    expect(r.exitCode, `${r.stdout}\n${r.stderr}`).toBe(1);
    expect(r.stderr).toMatch(
      /osf: dump production failed: exit status 1 \(.*(terminating connection due to administrator command|server closed the connection unexpectedly|Connection refused).*\)/,
    );
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('50');
  });

  it('the site list: does each branch migrate on each customer’s data, and is the data clean', async () => {
    const { pg, st } = await syncStaging();
    // This branch's migrate works on osf's data and fails on another's.
    const script = join(st.root, 'migrate.sh');
    await writeFile(
      script,
      `test "$KARLSTAGE_CUSTOMER" != another || { echo "column docs.x does not exist in ${st.root}/x.py" >&2; exit 3; }\n`,
    );
    await setMigrate(st, `sh ${script}`);
    const first = await st.cli(['sync', '--nightly']);
    expect(first.exitCode, first.stderr).toBe(1);
    const list = async () =>
      JSON.parse((await st.cli(['sites', '--format', 'json'])).stdout) as {
        branches: {
          name: string;
          problems: string[];
          customers: {
            name: string;
            data: { asOf: string | null; checkedPatterns: number | null };
            migrate: { result: string; problem: string | null } | null;
          }[];
        }[];
      };
    let sites = await list();
    // The failing pair only, and it leads the page.
    expect(sites.branches.map((b) => b.name)).toEqual(['branch1', 'branch2']);
    expect(sites.branches[0]!.problems[0]).toMatch(
      /^migrate fails on another's production data of /,
    );
    const verdict = (b: string, c: string) =>
      sites.branches.find((x) => x.name === b)!.customers.find((x) => x.name === c)!.migrate;
    expect(verdict('branch1', 'osf')).toMatchObject({ result: 'ok', problem: null });
    expect(verdict('branch2', 'osf')).toMatchObject({ result: 'ok' });
    expect(verdict('branch1', 'another')).toMatchObject({ result: 'failed' });
    // Its error line, without the server's paths.
    expect(verdict('branch1', 'another')!.problem).toContain(
      'column docs.x does not exist in …/x.py',
    );
    expect(JSON.stringify(sites)).not.toContain(st.root);
    const text = (await st.cli(['sites'])).stdout;
    // The page as the customer sees it: the failing pair first and in words, on a laptop and a phone.
    await inBrowser(
      join(st.root, '.karlstage', 'sites', 'all', 'index.html'),
      'acceptance',
      async (tab) => {
        expect(await tab.locator('section.site').first().getAttribute('id')).toBe('branch1');
        expect(await tab.locator('#branch1 .problems').textContent()).toMatch(
          /Needs a look.*migrate fails on another's production data/,
        );
        expect(await tab.locator('#branch1 .badge.failed').count()).toBeGreaterThan(0);
      },
    );
    expect(text).toMatch(/migrates on production data of .*: FAILED/);
    expect(text).toMatch(/migrates on production data of .*: ok \(\d+\.\d s\)/);

    // Clean data: osf's sanitize misses one address, and a file in a bytea column holds another.
    await setMigrate(st, 'true');
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(
        /^sanitize = .*$/m,
        `$&\nmust_not_contain = @real.example.org, /secret-[0-9]+/`,
      ),
    );
    expect((await st.cli(['sync', '--nightly', '--customers', 'osf'])).exitCode).toBe(0);
    sites = await list();
    const osf1 = () => sites.branches.find((b) => b.name === 'branch1')!.customers[0]!;
    expect(osf1().data.checkedPatterns).toBe(2);
    const asOf = osf1().data.asOf;
    await writeFile(
      join(st.root, 'sanitize-osf.sql'),
      "UPDATE docs SET owner_email = 'tester@staging.invalid' WHERE id > 1;\n",
    );
    await pg.sql('prod_osf', 'CREATE TABLE files (id int, body bytea)');
    await pg.sql(
      'prod_osf',
      "INSERT INTO files VALUES (1, '\\x00ff'::bytea || convert_to('note: secret-42 inside', 'UTF8'))",
    );
    const dirty = await st.cli(['sync', '--nightly', '--customers', 'osf']);
    expect(dirty.exitCode).toBe(1);
    const said = dirty.stdout + dirty.stderr;
    expect(said).toContain(
      'the sanitized copy still contains "@real.example.org" in docs.owner_email',
    );
    expect(said).toContain('"/secret-[0-9]+/" in files.body');
    expect(said).not.toContain('person1@real.example.org');
    expect(said).not.toContain('secret-42');
    // Not swapped in: every site keeps yesterday's rows (no files table), clean.
    for (const db of ['ks_branch1_osf', 'ks_branch2_osf']) {
      expect(await pg.sql(db, "SELECT count(*) FROM docs WHERE owner_email LIKE '%@real%'")).toBe(
        '0',
      );
      expect(await pg.sql(db, "SELECT to_regclass('files') IS NULL")).toBe('t');
    }
    sites = await list();
    expect(osf1().data.asOf).toBe(asOf);
    expect(sites.branches[0]!.problems.join('\n')).toMatch(
      /osf's data was not refreshed on .*: .*the sanitized copy still contains/,
    );
  });

  it('reset gives a branch site its golden copy back now, without reading production', async () => {
    const { pg, st } = await syncStaging();
    // No golden copy yet: refused, nothing written.
    const early = await st.cli(['reset', 'branch1']);
    expect(early.exitCode).toBe(2);
    expect(early.stderr).toContain(
      'there is no golden copy of osf, another yet: run "karlstage sync branch1"',
    );
    expect((await st.cli(['sync', '--nightly'])).exitCode).toBe(0);

    // A tester wrecks branch1's osf data; production moves on meanwhile.
    await pg.sql('ks_branch1_osf', 'DELETE FROM docs WHERE id > 10');
    await pg.sql(
      'prod_osf',
      "INSERT INTO docs (title, owner_email) VALUES ('tonight', 'x@real.example.org')",
    );
    for (const [args, why] of [
      [['reset', 'branch9'], /no branch site named branch9|branch9/],
      [['reset', 'branch1', '--customers', 'nobody'], /there is no \[customer:nobody\]/],
      [['reset', 'branch2', '--customers', 'another'], /branch2 does not serve another/],
    ] as const) {
      const r = await st.cli([...args]);
      expect(r.exitCode, r.stderr).toBe(2);
      expect(r.stderr).toMatch(why);
    }

    const r = await st.cli(['reset', 'branch1', '--customers', 'osf']);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/branch1 has osf's golden copy again \(unavailable \d+ ms\)/);
    // Last night's sanitized 50 rows, not production's 51; the other customer and site untouched.
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('50');
    expect(
      await pg.sql(
        'ks_branch1_osf',
        "SELECT count(*) FROM docs WHERE owner_email <> 'tester@staging.invalid'",
      ),
    ).toBe('0');
    expect(await pg.sql('ks_branch1_another', 'SELECT count(*) FROM docs')).toBe('20');
    expect(
      await pg.sql('postgres', "SELECT count(*) FROM pg_database WHERE datname ~ '_(new|old)$'"),
    ).toBe('0');
  });

  it('status --disk matches du and pg_database_size; a dump that cannot fit stops the sync before it starts', async () => {
    const { pg, st } = await syncStaging();
    const blobs = await withFiles(st);
    await writeFile(join(blobs, 'big.blob'), 'b'.repeat(300_000));
    expect((await st.cli(['sync', '--nightly', '--customers', 'osf'])).exitCode).toBe(0);
    const disk = JSON.parse((await st.cli(['status', '--disk', '--json'])).stdout).disk as {
      sites: { name: string; ownBytes: number; sharedBytes: number }[];
      databases: { name: string; bytes: number }[];
      dumps: { customer: string; count: number; bytes: number }[];
    };
    // The same figures du gives: the mirror first, so hard-linked blobs count once, as shared.
    const du = async (...paths: string[]) =>
      (await execa('du', ['-s', '-B1', ...paths])).stdout
        .split('\n')
        .map((l) => Number(l.split('\t')[0]));
    const files = loadConfig(st.config).sync.files;
    const [, own1] = await du(files, join(st.root, 'branch1'));
    const [alone1] = await du(join(st.root, 'branch1'));
    const b1 = disk.sites.find((s) => s.name === 'branch1')!;
    expect(b1.ownBytes).toBe(own1);
    expect(b1.sharedBytes).toBe(alone1! - own1!);
    expect(b1.sharedBytes).toBeGreaterThanOrEqual(300_000);
    for (const d of disk.databases)
      expect(String(d.bytes)).toBe(
        await pg.sql('postgres', `SELECT pg_database_size('${d.name}')`),
      );
    expect(disk.databases.map((d) => d.name)).toContain('ks_branch1_osf');
    expect(disk.dumps).toMatchObject([{ customer: 'osf', count: 1 }]);
    const text = (await st.cli(['status', '--disk'])).stdout;
    expect(text).toMatch(/^BRANCH\s+OWN\s+SHARED/m);
    expect(text).toMatch(/^dumps of osf: 1, /m);

    // Dumps on a small disk, filled up so last night's dump would not fit again.
    const small = await smallDisk('4m');
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(/^dumps = .*$/m, `dumps = ${small}`),
    );
    await pg.sql(
      'prod_osf',
      'CREATE TABLE bulk AS SELECT i, md5(random()::text) || md5(random()::text) AS x FROM generate_series(1, 40000) i',
    );
    expect((await st.cli(['sync', '--nightly', '--customers', 'osf'])).exitCode).toBe(0);
    const dumped = JSON.parse((await st.cli(['status', '--disk', '--json'])).stdout).disk.dumps[0];
    const free = Number(
      (await execa('df', ['-B1', '--output=avail', small])).stdout.split('\n')[1],
    );
    await writeFile(join(small, 'junk'), Buffer.alloc(Math.max(0, free - dumped.bytes / 2)));
    const doctor = await st.cli(['doctor']);
    expect(doctor.stdout).toMatch(/^warn\s+room for the sync\s+.*make room/m);
    await pg.sql('prod_osf', "INSERT INTO docs (title) VALUES ('tonight')");
    const before = await pg.sql('ks_branch1_osf', CHECKSUM);
    const r = await st.cli(['sync', '--nightly', '--customers', 'osf']);
    expect(r.exitCode).toBe(1);
    expect(r.stderr).toMatch(
      /not enough room for osf's dump in .*: about .* needed \(the last dump\), .* free/,
    );
    expect(await pg.sql('ks_branch1_osf', CHECKSUM)).toBe(before);
    expect((await readdir(join(small, 'osf'))).filter((f) => f.endsWith('.partial'))).toEqual([]);
  });

  it('a reset killed during its migrate: the next reset puts back what the site had, then completes', async () => {
    const { pg, st } = await syncStaging();
    expect((await st.cli(['sync', '--nightly', '--customers', 'osf'])).exitCode).toBe(0);
    await pg.sql('ks_branch1_osf', 'DELETE FROM docs WHERE id > 10'); // a tester's wreckage
    await killDuringMigrate(st, ['reset', 'branch1', '--customers', 'osf'], 'sleep 78');
    // Killed after the swap: what the site had is kept as the old twin until the next run.
    expect(await pg.sql('ks_branch1_osf__old', 'SELECT count(*) FROM docs')).toBe('10');

    const again = await st.cli(['reset', 'branch1', '--customers', 'osf']);
    expect(again.exitCode, again.stderr).toBe(0);
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('50');
    expect(
      await pg.sql('postgres', "SELECT count(*) FROM pg_database WHERE datname ~ '_(new|old)$'"),
    ).toBe('0');
  });
});

/** A small filesystem (tmpfs, as root), unmounted after the test: a disk that fills. */
async function smallDisk(size: string): Promise<string> {
  const dir = await tempDir('ks-small-');
  await execa('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir]);
  onCleanup(async () => void (await execa('umount', ['-l', dir], { reject: false })));
  return dir;
}
