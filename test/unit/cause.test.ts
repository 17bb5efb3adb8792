// Covers: src/core/command-line.ts
import { describe, expect, it } from 'vitest';
import { causeOf } from '../../src/core/errors.js';
import { tailWithCause } from '../../src/core/command-line.js';

/*
 * Real output of pg_dump, pg_restore, psql and git when they fail (PostgreSQL 15, git 2.39),
 * copied from runs against a throwaway cluster: the cause line is the one that says why.
 */

// pg_dump killed by pg_ctl stop -m immediate during its catalog queries: the cause, then the
// query it was running, quoted over several lines.
const POLICY_QUERY = [
  "pg_dump: detail: Query was: SELECT pol.oid, pol.tableoid, pol.polrelid, pol.polname, pol.polcmd, pol.polpermissive, CASE WHEN pol.polroles = '{0}' THEN NULL ELSE    pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.quote_ident(rolname) from pg_catalog.pg_roles WHERE oid = ANY(pol.polroles)), ', ') END AS polroles, pg_catalog.pg_get_expr(pol.polqual, pol.polrelid) AS polqual, pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid) AS polwithcheck FROM unnest('{16384,16389,16394}'::pg_catalog.oid[]) AS src(tbloid)",
  'JOIN pg_catalog.pg_policy pol ON (src.tbloid = pol.polrelid)',
];
const CLOSED = [
  'pg_dump: error: query failed: server closed the connection unexpectedly',
  '\tThis probably means the server terminated abnormally',
  '\tbefore or while processing the request.',
  ...POLICY_QUERY,
].join('\n');

// pg_dump -j 2 whose workers were ended by pg_terminate_backend.
const TERMINATED = [
  'pg_dump: error: Dumping the contents of table "docs" failed: PQgetResult() failed.',
  'pg_dump: detail: Error message from server: FATAL:  terminating connection due to administrator command',
  'pg_dump: detail: Command was: COPY public.docs (id, t) TO stdout;',
  'pg_dump: error: a worker process died unexpectedly',
].join('\n');

// A query whose text reads like an error, quoted after the cause (a function body, say).
const QUOTED_ERROR_WORDS = [
  'pg_dump: error: query failed: server closed the connection unexpectedly',
  '\tThis probably means the server terminated abnormally',
  '\tbefore or while processing the request.',
  'pg_dump: detail: Query was: SELECT p.proname, pg_catalog.pg_get_functiondef(p.oid)',
  "  FROM pg_catalog.pg_proc p WHERE p.prosrc LIKE '%RAISE EXCEPTION ''import failed''%'",
  ...Array.from(
    { length: 24 },
    (_, i) => `  OR p.proname = 'on_error_${i}' -- fatal error handler`,
  ),
].join('\n');

describe('the cause line, by what it says', () => {
  it.each([
    ['pg_dump, server stopped', CLOSED, /server closed the connection unexpectedly$/],
    [
      'pg_dump -j, connections terminated',
      TERMINATED,
      /FATAL: {2}terminating connection due to administrator command$/,
    ],
    [
      'pg_dump, a quoted query full of error words',
      QUOTED_ERROR_WORDS,
      /query failed: server closed the connection unexpectedly$/,
    ],
    [
      'pg_restore, a statement refused',
      [
        'pg_restore: error: could not execute query: ERROR:  relation "docs" already exists',
        'Command was: CREATE TABLE public.docs (',
        '    id integer NOT NULL,',
        '    error_text text',
        ');',
        'pg_restore: warning: errors ignored on restore: 1',
      ].join('\n'),
      /^pg_restore: error: could not execute query: ERROR: {2}relation "docs" already exists$/,
    ],
    [
      'psql -f, a sanitize script with a bad column',
      [
        'UPDATE 50',
        'psql:/srv/karlstage/sanitize/osf.sql:3: ERROR:  column "error_count" does not exist',
        'LINE 1: UPDATE docs SET error_count = 0 WHERE failed;',
        '                        ^',
      ].join('\n'),
      /^psql:.*:3: ERROR: {2}column "error_count" does not exist$/,
    ],
    [
      'psql, the server went away',
      [
        'FATAL:  terminating connection due to administrator command',
        'server closed the connection unexpectedly',
        '\tThis probably means the server terminated abnormally',
        '\tbefore or while processing the request.',
        'connection to server was lost',
      ].join('\n'),
      /^FATAL: {2}terminating connection due to administrator command$/,
    ],
    [
      'pg_dump, a full disk beats what follows it',
      [
        'pg_dump: error: could not write to output file: No space left on device',
        'pg_dump: error: a worker process died unexpectedly',
      ].join('\n'),
      /No space left on device$/,
    ],
    [
      'git, the fatal line',
      [
        "Cloning into '/srv/karlstage/branch2/src/karl'...",
        "fatal: repository 'https://git.example.org/karl.git/' not found",
      ].join('\n'),
      /^fatal: repository .* not found$/,
    ],
  ])('%s', (_, output, cause) => expect(causeOf(output)).toMatch(cause));

  it('a failure whose cause scrolled out of the last lines still names it', () => {
    const tail = tailWithCause(QUOTED_ERROR_WORDS);
    expect(tail.split('\n')[0]).toBe(
      'pg_dump: error: query failed: server closed the connection unexpectedly',
    );
    expect(causeOf(tail)).toBe(
      'pg_dump: error: query failed: server closed the connection unexpectedly',
    );
    // Nothing added when the last lines hold it already.
    expect(tailWithCause(TERMINATED)).toBe(TERMINATED);
  });
});
