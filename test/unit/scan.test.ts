// Covers: src/db/scan.ts
import { describe, expect, it } from 'vitest';
import { scanProblem, scanResult, shownName } from '../../src/db/scan.js';

/** What psql prints for the scan: one JSON object a line (the SQL itself runs in test/scan.test.ts). */
const line = (o: object) =>
  JSON.stringify({ schema: 'public', rel: null, col: null, pattern: null, why: null, ...o });

describe('the scan’s report', () => {
  it('names a place so that no name can break the line or reach a terminal raw', () => {
    expect(shownName('owner_email')).toBe('owner_email');
    expect(shownName('Owner Email')).toBe('"Owner Email"');
    expect(shownName('a\tb')).toBe('"a\\tb"');
    expect(shownName('a\nb\x1b[31m')).toBe('"a\\nb\\x1b[31m"');
    expect(shownName('say "hi" \\ \u2028')).toBe('"say ""hi"" \\\\ \\u{2028}"');
  });

  it('names table, column and pattern (as configured) of each hit; what it could not read; what it skipped', () => {
    const patterns = ['@osf.org', '/ssn-[0-9]+/'];
    const out = [
      line({ kind: 'hit', rel: 'docs', col: 'owner\temail', pattern: 1 }),
      line({ kind: 'hit', schema: 'Old', rel: 'files', col: 'body', pattern: 2 }),
      line({ kind: 'hit', schema: null, col: '16403', pattern: 2 }),
      line({ kind: 'skipped', rel: 'counts', why: 'a materialized view never populated' }),
      'a line psql printed that is not ours',
    ].join('\n');
    const r = scanResult(out, patterns);
    expect(r.hits).toEqual([
      { where: '"Old".files.body', pattern: '/ssn-[0-9]+/' },
      { where: 'docs."owner\\temail"', pattern: '@osf.org' },
      { where: 'large object 16403', pattern: '/ssn-[0-9]+/' },
    ]);
    expect(r.skipped).toEqual(['counts (a materialized view never populated)']);
    expect(scanProblem(r)).toBe(
      `the sanitized copy still contains "/ssn-[0-9]+/" in "Old".files.body, "@osf.org" in docs."owner\\temail", "/ssn-[0-9]+/" in large object 16403: fix the sanitize script; every branch site keeps yesterday's data`,
    );

    const unread = scanResult(
      line({ kind: 'unread', rel: 'secrets', why: 'permission denied for table secrets\n' }),
      patterns,
    );
    expect(scanProblem(unread)).toBe(
      `the sanitized copy could not be checked in full: could not read secrets (permission denied for table secrets\\n): let the staging role read them; every branch site keeps yesterday's data`,
    );
    // Clean, with something skipped: no problem, and the skip is said by the caller.
    expect(scanProblem(scanResult('', patterns))).toBeUndefined();
    expect(scanProblem({ hits: [], unread: [], skipped: ['counts (…)'] })).toBeUndefined();
  });
});
