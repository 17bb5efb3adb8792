// Covers: src/core/dsn.ts src/db/guard.ts src/db/pg.ts
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseDsn } from '../../src/core/dsn.js';
import { spelledAlike } from '../../src/db/guard.js';
import { pgEnv, quoteIdent } from '../../src/db/pg.js';

const same = (a: string, b: string) => spelledAlike(parseDsn(a), parseDsn(b));

// Only the fast first check: the guard asks the servers who they are (test/production-guard.test.ts).
describe('which database a connection string is spelled to mean', () => {
  it('resolves localhost, 127.0.0.1, ::1 and a socket to one host, and the default port', () => {
    expect(same('host=localhost dbname=karl', 'host=127.0.0.1 port=5432 dbname=karl')).toBe(true);
    expect(same('host=/var/run/postgresql dbname=karl', 'host=::1 dbname=karl')).toBe(true);
    expect(same('dbname=karl', 'host=localhost dbname=karl')).toBe(true);
    expect(same('postgres://u@localhost/karl', 'host=127.0.0.1 dbname=karl user=other')).toBe(true);
  });

  it('the default dbname is the user name', () => {
    expect(same('host=db user=karl', 'postgres://karl@db:5432/karl')).toBe(true);
  });

  it('tells different hosts, ports and databases apart', () => {
    expect(same('host=karl03 dbname=karl', 'host=karl05 dbname=karl')).toBe(false);
    expect(same('host=db port=5433 dbname=karl', 'host=db dbname=karl')).toBe(false);
    expect(same('host=db dbname=a', 'host=db dbname=b')).toBe(false);
  });

  it('puts the password in the environment and quotes identifiers', () => {
    expect(pgEnv(parseDsn('host=db user=karl password=pw dbname=x'))).toMatchObject({
      PGHOST: 'db',
      PGUSER: 'karl',
      PGPASSWORD: 'pw',
      PGDATABASE: 'x',
    });
    expect(quoteIdent('ks_a-b_c')).toBe('"ks_a-b_c"');
    // TCP keepalives from karlstage's own service file, unless the setting names its own service.
    const env = pgEnv(parseDsn('host=db'));
    expect(env.PGSERVICE).toBe('karlstage');
    expect(readFileSync(env.PGSERVICEFILE!, 'utf8')).toMatch(/^\[karlstage\]\nkeepalives=1\n/m);
    expect(pgEnv(parseDsn('service=mine'))).toMatchObject({ PGSERVICE: 'mine' });
    expect(pgEnv(parseDsn('service=mine')).PGSERVICEFILE).toBeUndefined();
    expect(quoteIdent('x"; drop')).toBe('"x""; drop"');
  });
});
