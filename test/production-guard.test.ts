// Covers: src/db/guard.ts src/db/staging.ts src/db/pg.ts
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sqlWith, type PgCluster } from './helpers/pg.js';
import { gitRepo } from './helpers/repos.js';
import { stagingServer, type Staging } from './helpers/staging.js';
import { onCleanup, tempDir } from './helpers/tmp.js';

/**
 * Production is recognised by asking the servers, not by reading connection
 * strings. One real cluster (listening on 127.0.0.1 and 127.0.0.2) holds
 * production; the staging setting reaches that same cluster in every disguise
 * we know. In each case the command is refused before anything runs, and
 * production's data and database OID are exactly as they were.
 */
const CHECKSUM = `SELECT md5(string_agg(d::text, ',' ORDER BY id)) FROM docs d`;

let pg: PgCluster & { dir: string };
let stopCluster: () => Promise<void>;

beforeAll(async () => {
  // Made here rather than per test (each case only reads it, or is refused): one cluster start.
  const { startCluster } = await import('../src/demo/pg-cluster.js');
  const c = await startCluster('superpw', ['listen_addresses=127.0.0.1,127.0.0.2']);
  stopCluster = () => c.stop('immediate');
  const sql = sqlWith(c.env);
  pg = {
    port: c.port,
    dir: c.dir,
    env: c.env,
    dsn: c.dsn,
    sql,
    hold: () => Promise.reject(new Error('not here')),
    stop: stopCluster,
  };
  await productionDatabase('prod_osf');
}, 120_000);

/** A database that plays production: 30 rows of people's addresses (dropped after the test). */
async function productionDatabase(db: string) {
  if (db !== 'prod_osf')
    onCleanup(async () => void (await pg.sql('postgres', `DROP DATABASE IF EXISTS ${db}`)));
  await pg.sql('postgres', `DROP DATABASE IF EXISTS ${db}`);
  await pg.sql('postgres', `CREATE DATABASE ${db}`);
  await pg.sql(
    db,
    `CREATE TABLE docs (id serial PRIMARY KEY, owner_email text); INSERT INTO docs (owner_email) SELECT 'person' || i || '@real.example.org' FROM generate_series(1, 30) i`,
  );
}

afterAll(async () => {
  await stopCluster?.();
});

/** Production's data and identity, to compare before and after. */
const fingerprint = async (db: string) => ({
  rows: await pg.sql(db, CHECKSUM),
  oid: await pg.sql('postgres', `SELECT oid FROM pg_database WHERE datname = '${db}'`),
});
/** The databases named like karlstage's, but for the ones a test made to play production. */
const karlstageDatabases = (playingProduction: string[] = []) =>
  pg.sql(
    'postgres',
    `SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '') FROM pg_database WHERE datname LIKE 'ks%' AND datname NOT IN ('${['-', ...playingProduction].join("', '")}')`,
  );

/** A staging root whose [staging] database is `database`, with production osf = prod_osf on 127.0.0.1. */
async function staging(
  database: string,
  opts: { shared?: boolean; production?: string } = {},
): Promise<Staging> {
  const repo = await gitRepo();
  const st = await stagingServer(repo, { customers: [], databases: true });
  const ini = (await readFile(st.config, 'utf8'))
    .replace(/^database = .*$/m, `database = ${database}`)
    .replace(
      /^production = .*$/m,
      `production = ${opts.production ?? pg.dsn('prod_osf')}${opts.shared ? '\nstaging_on_production_server = yes' : ''}`,
    )
    .replace(/^dumps = .*$/m, `dumps = ${join(st.root, '.karlstage', 'dumps')}`);
  await writeFile(st.config, ini);
  return st;
}

const AUTH = 'user=postgres password=superpw';

/** Each way of reaching the production cluster while the staging setting does not say so. */
const disguises: {
  name: string;
  database: () => string;
  env?: () => Promise<Record<string, string>>;
}[] = [
  {
    name: 'hostaddr beside another host name',
    database: () => `host=staging.invalid hostaddr=127.0.0.1 port=${pg.port} ${AUTH}`,
  },
  {
    name: 'another address of the loopback network',
    database: () => `host=127.0.0.2 port=${pg.port} ${AUTH}`,
  },
  {
    name: "the server's socket folder",
    database: () => `host=${pg.dir} port=${pg.port} ${AUTH}`,
  },
  {
    name: 'a port spelled another way',
    database: () => `host=localhost port=0${pg.port} ${AUTH}`,
  },
  {
    name: 'a multi-host list whose first host fails',
    database: () => `host=127.0.0.1,127.0.0.2 port=1,${pg.port} ${AUTH}`,
  },
  {
    name: 'defaults from the environment (PGHOST, PGPORT)',
    database: () => AUTH,
    env: async () => ({ PGHOST: '127.0.0.2', PGPORT: String(pg.port) }),
  },
  {
    name: 'a libpq service file',
    database: () => 'service=karlstaging',
    env: async () => {
      const file = join(await tempDir('ks-svc-'), 'pg_service.conf');
      await writeFile(
        file,
        `[karlstaging]\nhost=127.0.0.2\nport=${pg.port}\nuser=postgres\npassword=superpw\n`,
      );
      return { PGSERVICEFILE: file };
    },
  },
];

describe('production is recognised by asking the servers', () => {
  it.each(disguises)(
    'staging on the production cluster reached by $name is refused (create, sync, destroy)',
    async ({ database, env }) => {
      const before = await fingerprint('prod_osf');
      const st = await staging(database());
      const vars = (await env?.()) ?? {};
      const snapshot = await st.snapshot();

      for (const args of [
        ['create', 'branch1'],
        ['sync', '--nightly'],
        ['create', 'branch1', '--dry-run'],
      ]) {
        const r = await st.cli(args, vars);
        expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2);
        expect(r.stderr).toMatch(
          /^error: refusing: \[staging\] database \(.*\) and \[customer:osf\] production \(host=127\.0\.0\.1 port=\d+ user=postgres password=\*\*\* dbname=prod_osf\) reach the same PostgreSQL server \(system identifier \d+\); staging must not live on a production server\. If this is meant \(a small setup\), add "staging_on_production_server = yes" to \[customer:osf\]$/m,
        );
        expect(r.stderr.trim().split('\n')).toHaveLength(1);
        expect(r.stderr).not.toContain('superpw');
      }
      expect(await st.snapshot()).toBe(snapshot);
      expect(existsSync(join(st.root, 'branch1'))).toBe(false);
      expect(await karlstageDatabases()).toBe('');
      expect(await fingerprint('prod_osf')).toEqual(before);

      // doctor says what it found: the same cluster, refused.
      const d = await st.cli(['doctor'], vars);
      expect(d.stdout).toMatch(
        /^FAIL\s+production osf\s+cluster \d+, database prod_osf \(OID \d+\): the SAME cluster as the staging server/m,
      );
    },
  );

  it('with the written permission, staging shares the cluster: databases are made and synced, production untouched', async () => {
    const before = await fingerprint('prod_osf');
    const st = await staging(`host=127.0.0.2 port=${pg.port} ${AUTH}`, { shared: true });
    const c = await st.cli(['create', 'branch1']);
    expect(c.exitCode, c.stderr).toBe(0);
    const s = await st.cli(['sync', '--nightly']);
    expect(s.exitCode, s.stderr + s.stdout).toBe(0);
    expect(await pg.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('30');
    expect(await fingerprint('prod_osf')).toEqual(before);
    const d = await st.cli(['doctor']);
    expect(d.stdout).toMatch(
      /^ok\s+production osf\s+.*same cluster as staging \(allowed: staging_on_production_server = yes\)/m,
    );
    const gone = await st.cli(['destroy', 'branch1', '--yes']);
    expect(gone.exitCode, gone.stderr).toBe(0);
    expect(await karlstageDatabases()).toBe('ks__golden_osf');
    expect(await fingerprint('prod_osf')).toEqual(before);
    await pg.sql('postgres', 'DROP DATABASE ks__golden_osf'); // the golden copy stays; not here
  });

  it('production named like a database karlstage makes is refused by its OID, even with the permission', async () => {
    // osf's production database is called what osf's golden copy would be.
    await productionDatabase('ks__golden_osf');
    await productionDatabase('ks_branch2_osf');
    const golden = await fingerprint('ks__golden_osf');
    let st = await staging(`host=localhost port=${pg.port} ${AUTH}`, {
      shared: true,
      production: `host=127.0.0.2 port=${pg.port} ${AUTH} dbname=ks__golden_osf`,
    });
    const snapshot = await st.snapshot();
    let r = await st.cli(['sync', '--nightly']);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(
      /^error: refusing: the staging database "ks__golden_osf" is osf's production database \(OID \d+ on the cluster \d+\); nothing was changed/m,
    );
    r = await st.cli(['create', 'branch1']);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(await st.snapshot()).toBe(snapshot);
    expect(await fingerprint('ks__golden_osf')).toEqual(golden);

    // ... and like a branch site's database: creating (or destroying) that site is refused.
    const site = await fingerprint('ks_branch2_osf');
    st = await staging(`host=localhost port=${pg.port} ${AUTH}`, {
      shared: true,
      production: `host=127.0.0.2 port=${pg.port} ${AUTH} dbname=ks_branch2_osf`,
    });
    r = await st.cli(['create', 'branch2']);
    expect(r.exitCode, r.stderr).toBe(2);
    expect(r.stderr).toMatch(/"ks_branch2_osf" is osf's production database/);
    expect(existsSync(join(st.root, 'branch2'))).toBe(false);
    expect(await fingerprint('ks_branch2_osf')).toEqual(site);
    expect(await karlstageDatabases(['ks__golden_osf', 'ks_branch2_osf'])).toBe('');
    for (const db of ['ks__golden_osf', 'ks_branch2_osf'])
      await pg.sql('postgres', `DROP DATABASE ${db}`);
  });

  it('every write re-checks in its own session: a guard bypassed at the start still cannot drop production', async () => {
    const { ProductionGuard } = await import('../src/db/guard.js');
    const { StagingServer } = await import('../src/db/staging.js');
    const { loadConfig } = await import('../src/config/config.js');
    await productionDatabase('ks_branch2_osf');
    const before = await fingerprint('ks_branch2_osf');
    // Permission given, and the production database named like branch2's: the start-of-run
    // check would refuse; here it is skipped, and the statement itself must still refuse.
    const st = await staging(`host=localhost port=${pg.port} ${AUTH}`, {
      shared: true,
      production: `host=127.0.0.2 port=${pg.port} ${AUTH} dbname=ks_branch2_osf`,
    });
    const cfg = loadConfig(st.config);
    const guard = await ProductionGuard.establish(cfg);
    const { exec } = await import('../src/core/command.js');
    const db = new StagingServer(cfg, guard);
    for (const attempt of [
      () => exec(db.drop('ks_branch2_osf')),
      () => exec(db.rename('ks_branch2_osf', 'ks_branch2_osf__old', 'rename')),
      () => exec(db.swapIn({ live: 'ks_branch2_osf', incoming: 'nothing', outgoing: 'x' }, 'swap')),
      () => exec(db.create('ks_anything', 'ks_branch2_osf')),
    ])
      await expect(attempt()).rejects.toThrow(
        /karlstage refuses to write "ks_branch2_osf": it is a production database/,
      );
    expect(await fingerprint('ks_branch2_osf')).toEqual(before);
    expect(await karlstageDatabases(['ks_branch2_osf'])).toBe('');
  });

  it('when production cannot be asked: its sync fails with a clear line, create makes no database for it, destroy refuses', async () => {
    const st = await staging(`host=127.0.0.1 port=${pg.port} ${AUTH}`, {
      production: `host=127.0.0.1 port=1 ${AUTH} dbname=prod_osf`,
    });
    const c = await st.cli(['create', 'branch1']);
    expect(c.exitCode, c.stderr).toBe(0);
    expect(c.stderr).toMatch(
      /warning: branch1: no database for osf yet: cannot tell whether the staging server is osf's production server \(.*port 1 failed: Connection refused.*\), so nothing of osf's is written; the nightly sync makes it once that server answers/,
    );
    expect(
      await pg.sql('postgres', "SELECT count(*) FROM pg_database WHERE datname = 'ks_branch1_osf'"),
    ).toBe('0');
    const s = await st.cli(['sync', '--nightly']);
    expect(s.exitCode).toBe(1);
    expect(s.stderr).toMatch(
      /osf: cannot tell whether the staging server is osf's production server/,
    );
    const d = await st.cli(['destroy', 'branch1', '--yes']);
    expect(d.exitCode).toBe(1);
    expect(d.stderr).toMatch(
      /^error: cannot tell whether the staging server is osf's production server .*: nothing was removed$/m,
    );
    expect(existsSync(join(st.root, 'branch1'))).toBe(true);
  });
});
