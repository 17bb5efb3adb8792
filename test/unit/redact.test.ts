// Covers: src/core/dsn.ts src/core/redact.ts src/publish/notify.ts src/core/url.ts
import { describe, expect, it } from 'vitest';
import { registerSecrets, webhookOf, type Config } from '../../src/config/config.js';
import { addSecret, looksLikeToken, redact } from '../../src/core/redact.js';
import { webhookShown } from '../../src/publish/notify.js';
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

describe('what is masked: passwords and tokens, never user names', () => {
  const config = (source: string, webhook?: string) =>
    ({
      staging: { database: 'host=db user=reader1 password=db-pass-7' },
      customers: [],
      source: { url: source },
      deployment: { skeleton: '/srv/skel' },
      notify: webhookOf(webhook),
    }) as unknown as Config;

  it('masks the password of a repository URL, and leaves its user name readable everywhere', () => {
    registerSecrets(config('https://reader1:Pw-4711-x@svn.example.org/karl'));
    // PostgreSQL's own words, with the user name they are about.
    expect(redact('FATAL: password authentication failed for user "reader1"')).toBe(
      'FATAL: password authentication failed for user "reader1"',
    );
    expect(redact('svn: E170001: https://reader1:Pw-4711-x@svn.example.org/karl')).toBe(
      'svn: E170001: https://reader1:***@svn.example.org/karl',
    );
    expect(redact('the password was Pw-4711-x')).toBe('the password was ***');
    expect(redact('host=db user=reader1 password=db-pass-7')).toBe(
      'host=db user=reader1 password=***',
    );
    expect(redact('https://reader1@svn.example.org/karl')).toBe(
      'https://reader1@svn.example.org/karl',
    );
  });

  it('masks a token given as the user name of an https URL, wherever it appears', () => {
    const token = 'ghp_16C7e42F292c6912E7710c838347Ae178B4a';
    registerSecrets(config(`https://${token}@github.com/osf/karl.git`));
    expect(redact(`fatal: https://${token}@github.com/osf/karl.git: denied`)).toBe(
      'fatal: https://***@github.com/osf/karl.git: denied',
    );
    expect(redact(`remote said ${token}`)).toBe('remote said ***');
    expect(looksLikeToken('glpat-abc')).toBe(true);
    expect(looksLikeToken('x7Kq2mZp9LwR4tYb8NcV')).toBe(true);
    expect(looksLikeToken('reader1')).toBe(false);
    expect(looksLikeToken('continuous-integration')).toBe(false);
  });

  it('a webhook is a secret but for its scheme and host; its credentials become a header', () => {
    const hook = 'https://bot:Hook-Pw-9@hooks.example.org/services/PathT0KEN?token=QueryT0KEN&x=1';
    const notify = webhookOf(hook);
    expect(notify.webhook).toBe(
      'https://hooks.example.org/services/PathT0KEN?token=QueryT0KEN&x=1',
    );
    expect(notify.webhookAuth).toBe(`Basic ${Buffer.from('bot:Hook-Pw-9').toString('base64')}`);
    registerSecrets(config('https://git.example.org/karl.git', hook));
    const said = redact(
      `POST ${notify.webhook} failed; path /services/PathT0KEN, token QueryT0KEN, Hook-Pw-9, ${notify.webhookAuth}`,
    );
    for (const secret of ['PathT0KEN', 'QueryT0KEN', 'Hook-Pw-9', notify.webhookAuth!])
      expect(said).not.toContain(secret);
    expect(webhookShown(hook)).toBe('https://hooks.example.org');
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
