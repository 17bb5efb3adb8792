import { describe, expect, it } from 'vitest';
import { addSecret, redact } from '../../src/core/redact.js';
import { formatDsn, parseDsn } from '../../src/core/dsn.js';

describe('redact', () => {
  it('masks passwords in URLs and libpq keyword strings', () => {
    expect(redact('postgres://karl:hunter2@db/karl')).toBe('postgres://karl:***@db/karl');
    expect(redact('svn+ssh://bob:pw@svn.example.org/karl')).toBe(
      'svn+ssh://bob:***@svn.example.org/karl',
    );
    expect(redact("host=db password='a b c' user=karl")).toBe('host=db password=*** user=karl');
    expect(redact('host=db password=abc user=karl')).toBe('host=db password=*** user=karl');
    expect(redact('PGPASSWORD=xyz psql')).toBe('PGPASSWORD=*** psql');
  });

  it('masks a registered secret wherever it appears', () => {
    addSecret('correct-horse');
    expect(redact('error: auth failed for correct-horse')).toBe('error: auth failed for ***');
  });
});

describe('connection strings', () => {
  it('reads keyword and URL forms to the same keywords', () => {
    expect(parseDsn("host=karl05 user=karl password='it\\'s' dbname=x")).toEqual({
      host: 'karl05',
      user: 'karl',
      password: "it's",
      dbname: 'x',
    });
    expect(parseDsn('postgres://karl:pw@karl05:5433/karl_osf')).toMatchObject({
      host: 'karl05',
      port: '5433',
      user: 'karl',
      password: 'pw',
      dbname: 'karl_osf',
    });
  });

  it('quotes values that need it when writing', () => {
    const dsn = { host: 'db', password: "a b'c" };
    expect(parseDsn(formatDsn(dsn))).toEqual(dsn);
  });

  it('refuses what is not a connection string', () => {
    expect(() => parseDsn('just words')).toThrow(/not a connection string/);
    expect(() => parseDsn("host='open")).toThrow(/unterminated/);
  });
});
