// Covers: src/db/ src/sync/
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRelay } from '../bench/relay.mjs';
import { netCluster, netnsUnavailable, sweepLeftovers, type NetCluster } from './helpers/netns.js';
import { startCli, waitFor } from './helpers/processes.js';
import { peopleDatabase } from './helpers/pg.js';
import { gitRepo } from './helpers/repos.js';
import { stagingServer, useDatabases, type Staging } from './helpers/staging.js';
import { onCleanup } from './helpers/tmp.js';

/**
 * The staging database server (karl05) and production (karl03) on machines of their own: each
 * a PostgreSQL cluster in a network namespace of this test, listening on that namespace's
 * address only and with no unix socket, so every command reaches them over the network as it
 * would on the real servers. The two clusters are shared by the tests of this file; each test
 * makes its own staging root, and the databases it made are dropped after it.
 */
const unavailable = await netnsUnavailable();

const CHECKSUM = `SELECT md5(string_agg(d::text, ',' ORDER BY id)) FROM docs d`;
const AUTH = 'port=5432 user=postgres password=superpw';

let staging: NetCluster & { stop(): Promise<void> };
let production: NetCluster & { stop(): Promise<void> };

/** The databases on a server whose names karlstage uses (ks_…), comma-separated. */
const ksDatabases = (pg: NetCluster, except: string[] = []) =>
  pg.sql(
    'postgres',
    `SELECT coalesce(string_agg(datname, ',' ORDER BY datname), '') FROM pg_database WHERE datname LIKE 'ks%' AND datname NOT IN ('${['-', ...except].join("', '")}')`,
  );

/** Production's rows and identity, to compare before and after. */
const fingerprint = async (db: string) => ({
  rows: await production.sql(db, CHECKSUM),
  oid: await production.sql('postgres', `SELECT oid FROM pg_database WHERE datname = '${db}'`),
});

/**
 * A staging root whose [staging] database is `database` (the staging server by default), osf's
 * production `osfProduction` (prod_osf by default), sanitized and checked for real addresses.
 */
async function root(
  opts: { database?: string; osfProduction?: string; more?: string } = {},
): Promise<Staging> {
  const st = await stagingServer(await gitRepo(), { customers: [], databases: true });
  const sanitize = join(st.root, 'sanitize-osf.sql');
  await writeFile(sanitize, "UPDATE docs SET owner_email = 'tester@staging.invalid';\n");
  await useDatabases(st, {
    database: opts.database ?? `host=${staging.address} ${AUTH}`,
    production: opts.osfProduction ?? production.dsn('prod_osf'),
    osf: { sanitize, must_not_contain: '@real.example.org' },
    append: opts.more,
  });
  return st;
}

describe.skipIf(unavailable)(
  `database servers on other machines${unavailable ? ` (skipped: ${unavailable})` : ''}`,
  () => {
    beforeAll(async () => {
      [staging, production] = await Promise.all([netCluster(1), netCluster(2)]);
      await peopleDatabase(production, 'prod_osf', 50);
    }, 120_000);

    afterAll(async () => {
      await Promise.all([staging?.stop(), production?.stop()]);
    });

    afterEach(async () => {
      // Before the helpers' own clean-up: a test that failed with a link cut left it cut.
      await Promise.all([staging.host.mend(), production.host.mend()]);
      // Never throws: the helpers' clean-up (processes, folders) runs after this.
      for (const pg of [staging, production])
        for (const db of (await ksDatabases(pg).catch(() => '')).split(',').filter(Boolean))
          await pg
            .sql('postgres', `DROP DATABASE "${db}" WITH (FORCE)`)
            .catch((e: unknown) => console.warn(`could not drop ${db}: ${String(e)}`));
    });

    it('create, sync --nightly, reset, status --disk, doctor and destroy, over the network and over a slow one', async () => {
      // Nothing on karlstage's side could reach these servers but their address.
      for (const pg of [staging, production])
        expect(await pg.sql('postgres', 'SHOW unix_socket_directories')).toBe('');
      const before = await fingerprint('prod_osf');
      const st = await root();

      for (const b of ['branch1', 'branch2']) {
        const c = await st.cli(['create', b]);
        expect(c.exitCode, c.stderr).toBe(0);
      }
      // manage_databases = yes: empty databases on the staging server, before any sync.
      expect(await ksDatabases(staging)).toBe('ks_branch1_osf,ks_branch2_osf');

      const s = await st.cli(['sync', '--nightly']);
      expect(s.exitCode, s.stderr + s.stdout).toBe(0);
      expect(s.stdout).toMatch(/ok\s+osf → branch1 \(.* s, unavailable \d+ ms\)/);
      expect(s.stdout).toMatch(/ok\s+osf → branch2/);
      for (const db of ['ks_branch1_osf', 'ks_branch2_osf']) {
        expect(await staging.sql(db, 'SELECT count(*) FROM docs')).toBe('50');
        // Sanitized, and checked (must_not_contain) before it was swapped in.
        expect(
          await staging.sql(db, "SELECT count(*) FROM docs WHERE owner_email LIKE '%@real%'"),
        ).toBe('0');
      }
      expect(await ksDatabases(staging)).toBe('ks__golden_osf,ks_branch1_osf,ks_branch2_osf');
      expect(
        (await readdir(join(st.root, '.karlstage', 'dumps', 'osf'))).filter((f) =>
          f.endsWith('.dump'),
        ),
      ).toHaveLength(1);
      // Production was only read.
      expect(await ksDatabases(production)).toBe('');
      expect(await fingerprint('prod_osf')).toEqual(before);

      // A tester wrecks branch1's data; reset gives it last night's copy back.
      await staging.sql('ks_branch1_osf', 'DELETE FROM docs WHERE id > 5');
      const r = await st.cli(['reset', 'branch1']);
      expect(r.exitCode, r.stderr + r.stdout).toBe(0);
      expect(await staging.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('50');

      // status --disk asks the staging server for its databases' sizes.
      const disk = JSON.parse((await st.cli(['status', '--disk', '--json'])).stdout).disk as {
        databases: { name: string; bytes: number }[];
      };
      expect(disk.databases.map((d) => d.name)).toEqual([
        'ks__golden_osf',
        'ks_branch1_osf',
        'ks_branch2_osf',
      ]);
      for (const d of disk.databases)
        expect(String(d.bytes)).toBe(
          await staging.sql('postgres', `SELECT pg_database_size('${d.name}')`),
        );

      // doctor tells the two servers apart by asking them.
      const sys = async (pg: NetCluster) =>
        pg.sql('postgres', 'SELECT system_identifier FROM pg_control_system()');
      const d = (await st.cli(['doctor'])).stdout;
      expect(d).toMatch(
        new RegExp(`^ok\\s+staging db\\s+PostgreSQL .*; cluster ${await sys(staging)}$`, 'm'),
      );
      expect(d).toMatch(
        new RegExp(
          `^ok\\s+production osf\\s+PostgreSQL .*, reachable read-only; .*cluster ${await sys(production)}, database prod_osf \\(OID ${before.oid}\\), not the staging cluster$`,
          'm',
        ),
      );

      // The same servers answering slowly: 100 ms each way, through relays.
      const slow = await Promise.all(
        [staging, production].map((pg) =>
          startRelay({ host: pg.address, port: 5432, delayMs: 100 }),
        ),
      );
      onCleanup(async () => void (await Promise.all(slow.map((x) => x.close()))));
      const [toStaging, toProduction] = slow as [(typeof slow)[0], (typeof slow)[0]];
      await writeFile(
        st.config,
        (await readFile(st.config, 'utf8'))
          .replace(
            /^database = .*$/m,
            `database = host=127.0.0.1 port=${toStaging.port} user=postgres password=superpw`,
          )
          .replace(
            /^production = .*$/m,
            `production = host=127.0.0.1 port=${toProduction.port} user=postgres password=superpw dbname=prod_osf`,
          ),
      );
      await staging.sql('ks_branch2_osf', 'DELETE FROM docs');
      const again = await st.cli(['reset', 'branch2']);
      expect(again.exitCode, again.stderr + again.stdout).toBe(0);
      expect(await staging.sql('ks_branch2_osf', 'SELECT count(*) FROM docs')).toBe('50');
      expect(toStaging.stats.connections).toBeGreaterThan(0);
      const slowDoctor = (await st.cli(['doctor'])).stdout;
      expect(slowDoctor).toMatch(/^ok\s+staging db\s+PostgreSQL .*; cluster \d+$/m);
      expect(slowDoctor).toMatch(/^ok\s+production osf\s+.*not the staging cluster$/m);

      const gone = await st.cli(['destroy', 'branch2', '--yes']);
      expect(gone.exitCode, gone.stderr).toBe(0);
      expect(await ksDatabases(staging)).toBe('ks__golden_osf,ks_branch1_osf');
      expect(await fingerprint('prod_osf')).toEqual(before);
    });

    it('the production server reached by another address is recognised; two servers with the same names and OIDs are never confused', async () => {
      const before = await fingerprint('prod_osf');
      // Staging set to production's second address, or to a TCP relay in front of it.
      const relay = await startRelay({ host: production.address, port: 5432 });
      onCleanup(() => relay.close());
      for (const database of [
        `host=${production.host.more[0]} ${AUTH}`,
        `host=127.0.0.1 port=${relay.port} user=postgres password=superpw`,
      ]) {
        const st = await root({ database });
        const snapshot = await st.snapshot();
        for (const args of [
          ['create', 'branch1'],
          ['sync', '--nightly'],
        ]) {
          const r = await st.cli(args);
          expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).toBe(2);
          expect(r.stderr).toMatch(
            /^error: refusing: \[staging\] database \(.*\) and \[customer:osf\] production \(.*\) reach the same PostgreSQL server \(system identifier \d+\); staging must not live on a production server/m,
          );
        }
        expect(await st.snapshot()).toBe(snapshot);
      }
      expect(await ksDatabases(production)).toBe('');
      expect(await fingerprint('prod_osf')).toEqual(before);

      // Another customer's production database is called what branch1's osf copy is called on
      // staging, and (made so) has the same OID there: only the cluster tells them apart.
      const st = await root({
        more: `\n[customer:another]\nmail_branch = branch1\nproduction = ${production.dsn('ks_branch1_osf')}\n`,
      });
      await peopleDatabase(production, 'ks_branch1_osf', 20, 90_001);
      const theirs = await fingerprint('ks_branch1_osf');
      expect((await st.cli(['create', 'branch1'])).exitCode).toBe(0);
      await staging.sql('postgres', 'DROP DATABASE ks_branch1_osf');
      await staging.sql('postgres', 'CREATE DATABASE ks_branch1_osf OID 90001');
      expect(
        await staging.sql(
          'postgres',
          "SELECT oid FROM pg_database WHERE datname = 'ks_branch1_osf'",
        ),
      ).toBe(theirs.oid);

      // The sync renames and drops staging's ks_branch1_osf (OID 90001): every statement's
      // check lets it, and production's database of that name and OID is not touched.
      const s = await st.cli(['sync', '--nightly']);
      expect(s.exitCode, s.stderr + s.stdout).toBe(0);
      expect(await staging.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('50');
      expect(await staging.sql('ks_branch1_another', 'SELECT count(*) FROM docs')).toBe('20');
      expect((await st.cli(['destroy', 'branch1', '--yes'])).exitCode).toBe(0);
      expect(await ksDatabases(staging)).toBe('ks__golden_another,ks__golden_osf');
      expect(await fingerprint('ks_branch1_osf')).toEqual(theirs);
      expect(await fingerprint('prod_osf')).toEqual(before);
    });

    it('production cut off mid-dump: the sync fails within a minute, naming the step and the cause; every site keeps its data; the next night works', async () => {
      const st = await root();
      expect((await st.cli(['create', 'branch1'])).exitCode).toBe(0);
      expect((await st.cli(['sync', '--nightly'])).exitCode).toBe(0);
      await production.sql('prod_osf', "INSERT INTO docs (title) VALUES ('tonight')");
      onCleanup(async () => {
        await production.sql('prod_osf', "DELETE FROM docs WHERE title = 'tonight'");
      });

      // Someone's migration holds production's table: the dump waits on it, mid-conversation.
      const lock = await production.hold('prod_osf', 'LOCK TABLE docs IN ACCESS EXCLUSIVE MODE');
      onCleanup(() => lock.release());
      const run = startCli(st.root, ['sync', '--nightly']);
      await waitFor('the dump to wait on the lock', async () =>
        Boolean(
          Number(
            await production.sql(
              'postgres',
              "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'karlstage' AND wait_event_type = 'Lock'",
            ),
          ),
        ),
      );
      await production.host.cut();
      onCleanup(() => production.host.mend());
      // The link is silent, not closed: karlstage's TCP keepalives are what notice it.
      const r = await run;
      await production.host.mend();
      expect(r.exitCode, r.stdout + r.stderr).toBe(1);
      // Which words the kernel gives depends on where the cut caught the conversation: a silent
      // peer (keepalives), or a query left unacknowledged while the neighbour stopped answering.
      expect(r.stderr).toMatch(
        /osf: dump production failed: exit status 1 \(pg_dump: error: query failed: could not receive data from server: (Connection timed out|No route to host)\)/,
      );
      expect(r.stderr).toMatch(/^\s+\$ pg_dump --format=directory /m);
      expect(await staging.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('50');
      expect(await ksDatabases(staging)).toBe('ks__golden_osf,ks_branch1_osf');
      expect(
        (await readdir(join(st.root, '.karlstage', 'dumps', 'osf'))).filter(
          (f) => !f.endsWith('.dump'),
        ),
      ).toEqual([]);

      await lock.release();
      const next = await st.cli(['sync', '--nightly']);
      expect(next.exitCode, next.stderr + next.stdout).toBe(0);
      expect(await staging.sql('ks_branch1_osf', 'SELECT count(*) FROM docs')).toBe('51');
    }, 240_000);

    it("a test killed midway leaves nothing for long: the next one's sweep removes its namespace, processes, route and link", async () => {
      // What a SIGKILLed test leaves: a slot whose owner is gone, a server still running in it.
      const dead = execa('true');
      await dead;
      const slot = 250;
      await execa('ip', ['link', 'add', `kst${slot}h`, 'type', 'veth', 'peer', 'name', 'kstleft']);
      await execa('ip', [
        'link',
        'set',
        `kst${slot}h`,
        'alias',
        `karlstage-test pid=${dead.pid} start=1`,
      ]);
      await execa('ip', ['netns', 'add', `kst${slot}`]);
      await execa('ip', ['link', 'set', 'kstleft', 'netns', `kst${slot}`]);
      await execa('ip', ['route', 'add', 'blackhole', `10.247.${slot}.0/24`, 'metric', '4242']);
      const server = execa('ip', ['netns', 'exec', `kst${slot}`, 'sleep', '600'], {
        reject: false,
      });
      await waitFor(
        'the leftover process',
        async () => (await execa('ip', ['netns', 'pids', `kst${slot}`])).stdout !== '',
      );

      expect(await sweepLeftovers()).toEqual([`kst${slot}h`]);
      expect((await server).signal).toBe('SIGKILL');
      expect((await execa('ip', ['netns', 'list'])).stdout).not.toMatch(
        new RegExp(`^kst${slot}\\b`, 'm'),
      );
      expect((await execa('ip', ['route'])).stdout).not.toContain(`10.247.${slot}.0/24`);
      expect(
        (await execa('ip', ['link', 'show', `kst${slot}h`], { reject: false })).exitCode,
      ).not.toBe(0);
      // This file's own servers are alive and kept.
      for (const pg of [staging, production])
        expect(await pg.sql('postgres', 'SELECT 1')).toBe('1');
    });
  },
);
