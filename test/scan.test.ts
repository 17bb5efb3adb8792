// Covers: src/db/scan.ts src/sync/sync.ts
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { create } from '../src/commands/create.js';
import { startCluster, type PgCluster } from '../src/demo/pg-cluster.js';
import { sqlWith } from './helpers/pg.js';
import { gitRepo } from './helpers/repos.js';
import { stagingServer, useDatabases } from './helpers/staging.js';

/**
 * The must_not_contain scan against a real PostgreSQL, with the staging role
 * a careful operator makes: not a superuser, CREATEDB only. Production
 * holds every kind of column the scan promises to read, nested two deep; a
 * value planted in each must stop the sync before the swap, named by table,
 * column and pattern, never by value.
 */
const VALUE = 'ceo.private@real.example.org';
const PATTERN = '@real.example.org';

let cluster: PgCluster;
const sql = (db: string, q: string) => sqlWith(cluster.env)(db, q);

beforeAll(async () => {
  cluster = await startCluster('superpw');
  await sql(
    'postgres',
    "CREATE ROLE stager LOGIN PASSWORD 'stagepw' CREATEDB; CREATE ROLE tenant_owner; GRANT tenant_owner TO stager WITH ADMIN OPTION",
  );
  await sql('postgres', 'CREATE DATABASE prod_osf');
  await sql(
    'prod_osf',
    `CREATE EXTENSION hstore; CREATE EXTENSION citext;
     CREATE DOMAIN doc AS jsonb; CREATE DOMAIN doc2 AS doc;
     CREATE DOMAIN page AS xml;
     CREATE TYPE contact AS (name text, email citext);
     CREATE TABLE people (id int PRIMARY KEY, tags jsonb[], files bytea[], profile doc2,
       pages page[], attrs hstore, card contact, cards contact[], search tsvector,
       code char(40), handle name, login citext, "note\tx" text, born date, ref uuid);
     INSERT INTO people VALUES (1, ARRAY['{"t": "a"}'::jsonb], ARRAY['\\x00ff'::bytea],
       '{"a": {"b": "c"}}', ARRAY['<p>hello</p>'::xml::page], 'k=>v', ROW('Ann', 'ann@staging.invalid'),
       ARRAY[ROW('Bo', 'bo@staging.invalid')::contact], to_tsvector('simple', 'a quiet day'),
       'code', 'handle', 'login', 'note', '2000-01-01', gen_random_uuid());
     CREATE TABLE tenant_notes (tenant text, note text);
     INSERT INTO tenant_notes VALUES ('a', 'first note');
     ALTER TABLE tenant_notes ENABLE ROW LEVEL SECURITY; ALTER TABLE tenant_notes FORCE ROW LEVEL SECURITY;
     CREATE POLICY per_tenant ON tenant_notes USING (tenant = current_setting('app.tenant', true));
     CREATE MATERIALIZED VIEW note_counts AS SELECT tenant, count(*) FROM tenant_notes GROUP BY 1 WITH NO DATA;
     SELECT lo_from_bytea(40001, convert_to('a clean attachment', 'UTF8'));`,
  );
}, 120_000);

afterAll(async () => {
  await cluster?.stop('immediate');
});

/** One branch site serving osf; staging is the non-superuser `stager` on the cluster that plays production. */
async function staging() {
  const st = await stagingServer(await gitRepo(), { customers: [], databases: true });
  await useDatabases(st, {
    database: `host=127.0.0.1 port=${cluster.port} user=stager password=stagepw`,
    production: cluster.dsn('prod_osf'),
    osf: { staging_on_production_server: 'yes', must_not_contain: PATTERN },
  });
  await create({ ...st.g, branch: 'branch1', customers: ['osf'] });
  const sites = async () =>
    JSON.parse((await st.cli(['sites', '--format', 'json'])).stdout) as {
      branches: {
        problems: string[];
        customers: { data: { asOf: string | null; checkedPatterns: number | null } }[];
      }[];
    };
  return { st, sites };
}

describe('the must_not_contain scan', () => {
  it('reads every text-holding column and every row, or refuses the copy: table, column and pattern, never the value', async () => {
    const { st, sites } = await staging();

    // Night 1: clean. The never-populated materialized view is skipped, and said.
    const first = await st.cli(['sync', '--nightly']);
    expect(first.exitCode, first.stdout + first.stderr).toBe(0);
    expect(first.stdout + first.stderr).toContain(
      'not scanned: note_counts (a materialized view never populated: it holds no rows)',
    );
    const night1 = (await sites()).branches[0]!.customers[0]!.data;
    expect(night1.checkedPatterns).toBe(1);
    expect((await st.cli(['sites'])).stdout).toContain('checked for 1 pattern');
    // The scan lifted FORCE ROW LEVEL SECURITY only inside its own transaction.
    expect(
      await sql(
        'ks_branch1_osf',
        "SELECT relforcerowsecurity FROM pg_class WHERE relname = 'tenant_notes'",
      ),
    ).toBe('t');

    // Night 2: the value is in every kind of column, in a row the staging role's policy hides,
    // and in a large object.
    const plant = (x: string) => x.replaceAll('@@', VALUE);
    await sql(
      'prod_osf',
      plant(`INSERT INTO people (id, tags, files, profile, pages, attrs, card, cards, search, code,
         handle, login, "note\tx") VALUES (2, ARRAY['{"t": "a"}'::jsonb, '{"who": ["@@"]}'::jsonb],
         ARRAY['\\x00'::bytea, '\\x01'::bytea || convert_to('from @@', 'UTF8')],
         '{"a": {"b": "@@"}}', ARRAY['<p>hi</p>'::xml::page, '<p>@@</p>'::xml::page],
         'k=>v, mail=>@@', ROW('Ann', '@@'), ARRAY[ROW('Bo', '@@')::contact],
         to_tsvector('simple', 'write to @@'), '@@', '@@', '@@', '@@');
       INSERT INTO tenant_notes VALUES ('b', 'call @@');
       SELECT lo_from_bytea(40002, convert_to(repeat('x', 70000) || '@@', 'UTF8'));`),
    );
    const dirty = await st.cli(['sync', '--nightly']);
    expect(dirty.exitCode).toBe(1);
    const said = dirty.stdout + dirty.stderr;
    for (const where of [
      'people.tags', // jsonb[]
      'people.files', // bytea[]
      'people.profile', // a domain over a domain over jsonb
      'people.pages', // an array of a domain over xml
      'people.attrs', // hstore
      'people.card', // a composite type
      'people.cards', // an array of a composite type holding citext
      'people.search', // tsvector
      'people.code', // char(n)
      'people.handle', // name
      'people.login', // citext
      'people."note\\tx"', // a tab in the column name, written as \t
      'tenant_notes.note', // a row hidden by FORCE ROW LEVEL SECURITY from its owner
      'large object 40002',
    ])
      expect(said).toContain(`"${PATTERN}" in ${where}`);
    expect(said).toMatch(
      /the sanitized copy still contains .*: fix the sanitize script; every branch site keeps yesterday's data/,
    );
    expect(said).not.toContain(VALUE);
    expect(said).not.toContain('\t');
    expect(said).not.toMatch(/people\.(id|born|ref)\b/);
    // Not swapped in: the branch site keeps night 1's rows; the site list says why.
    expect(await sql('ks_branch1_osf', 'SELECT count(*) FROM people')).toBe('1');
    expect(await sql('ks_branch1_osf', 'SELECT count(*) FROM tenant_notes')).toBe('1');
    expect(await sql('ks_branch1_osf', 'SELECT count(*) FROM pg_largeobject_metadata')).toBe('1');
    expect(
      await sql('postgres', "SELECT count(*) FROM pg_database WHERE datname LIKE 'ks%new'"),
    ).toBe('0');
    const list = await sites();
    expect(list.branches[0]!.customers[0]!.data.asOf).toBe(night1.asOf);
    expect(list.branches[0]!.problems.join('\n')).toMatch(
      /osf's data was not refreshed on .*: .*the sanitized copy still contains/,
    );

    // Night 3: the planted values are gone, but the sanitize script leaves a table and a large
    // object the staging role may not read, and hands the table with a policy to a role it then
    // leaves (so it reads as a stranger, whom the policy filters): not known clean, refused too.
    await sql(
      'prod_osf',
      "DELETE FROM people WHERE id = 2; DELETE FROM tenant_notes WHERE tenant = 'b'; SELECT lo_unlink(40002)",
    );
    const sanitize = join(st.root, 'sanitize-osf.sql');
    await writeFile(
      sanitize,
      `REVOKE SELECT ON people FROM CURRENT_USER;
       REVOKE SELECT ON LARGE OBJECT 40001 FROM CURRENT_USER;
       GRANT CREATE ON SCHEMA public TO tenant_owner;
       ALTER TABLE tenant_notes OWNER TO tenant_owner;
       GRANT SELECT ON tenant_notes TO CURRENT_USER;
       REVOKE tenant_owner FROM CURRENT_USER;\n`,
    );
    await writeFile(
      st.config,
      (await readFile(st.config, 'utf8')).replace(
        /^must_not_contain = .*$/m,
        `$&\nsanitize = ${sanitize}`,
      ),
    );
    const unread = await st.cli(['sync', '--nightly']);
    expect(unread.exitCode).toBe(1);
    const why = unread.stdout + unread.stderr;
    expect(why).toContain('the sanitized copy could not be checked in full: could not read ');
    expect(why).toContain('large object 40001 (permission denied for large object 40001)');
    expect(why).toContain('people (permission denied for table people)');
    expect(why).toContain(
      'tenant_notes (row-level security hides rows from role stager, which does not own it: give that role BYPASSRLS)',
    );
    expect(why).toContain(
      "let the staging role read them; every branch site keeps yesterday's data",
    );
    expect((await sites()).branches[0]!.customers[0]!.data.asOf).toBe(night1.asOf);
  });
});
