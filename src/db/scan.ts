import type { Command } from '../core/command.js';
import { PSQL_FLAGS } from './pg.js';

/**
 * The clean-data check: after the sanitize step, before the golden copy is
 * swapped in, every column of the restored copy that can hold text is read once
 * for the customer's must_not_contain patterns, and so is every large object:
 * one scan per table, each value matched once against all patterns together
 * ((p1)|(p2)…); only a column that hits is read again, to name the pattern. A
 * hit names the table, column and pattern, never the value. The patterns come
 * in as a psql variable (quoted by psql), never spliced into the SQL.
 *
 * "Can hold text": a column's type is followed through domains, arrays,
 * composite types, ranges and multiranges, at any depth, down to its base
 * types; the column is read unless every one of them is of a kind that holds
 * no text (numbers, dates and times, booleans, geometry, network addresses,
 * bit strings, uuid and the like). So string types (char(n), name, citext…),
 * json, jsonb, xml, bytea, hstore, tsvector, enums and any type an extension
 * adds are read, as their text form; bytea as its escape form, which keeps
 * every printable byte as it is (bytea_output, for bytea inside arrays and
 * composite values).
 *
 * Every row, or the sync fails: row_security is off, so a policy that would
 * hide rows is an error instead; a table with FORCE ROW LEVEL SECURITY is read
 * by its owner (the role that restored it) after NO FORCE inside this one
 * transaction, which is rolled back, so the copy is not changed. What cannot be
 * read (a table or large object the role may not read, a value that cannot be
 * turned into text) is reported and fails the sync; a materialized view never
 * populated (it has no rows to read) is skipped and said.
 *
 * Output: one JSON object a line ({kind, schema, rel, col, pattern, why}), so
 * a tab or newline in a name cannot break a line.
 */
const SCAN_SQL = String.raw`
BEGIN;
SET LOCAL row_security = off;
SET LOCAL bytea_output = 'escape';
SET LOCAL karlstage.patterns = :'patterns';
CREATE TEMP TABLE karlstage_found (kind text, schema text, rel text, col text, pattern int, why text);
DO $karlstage$
DECLARE
  pats text[] := ARRAY(SELECT jsonb_array_elements_text(current_setting('karlstage.patterns')::jsonb));
  anyp text;
  t record;
  lo oid;
  exprs text[];
  values_ text[];
  cols text[];
  hits boolean[];
  hit boolean;
  piece bytea;
  txt text;
  off bigint;
  -- A large object is read in pieces that overlap, so a match up to 64 kB long is never cut.
  step constant int := 16 * 1024 * 1024;
  overlap constant int := 64 * 1024;
BEGIN
  SELECT string_agg('(' || p || ')', '|') INTO anyp FROM unnest(pats) p;
  IF anyp IS NULL THEN RETURN; END IF;
  -- The column types that can hold text, and whether one is bytea (through domains only).
  CREATE TEMP TABLE karlstage_types ON COMMIT DROP AS
  WITH RECURSIVE edges(parent, child) AS (
    SELECT oid, typbasetype FROM pg_type WHERE typtype = 'd'
    UNION ALL SELECT oid, typelem FROM pg_type WHERE typsubscript = 'array_subscript_handler'::regproc
    UNION ALL SELECT ty.oid, a.atttypid FROM pg_type ty JOIN pg_attribute a ON a.attrelid = ty.typrelid
      WHERE ty.typtype = 'c' AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL SELECT rngtypid, rngsubtype FROM pg_range
    UNION ALL SELECT rngmultitypid, rngtypid FROM pg_range
  ), parts(top, part, plain) AS (
    SELECT DISTINCT a.atttypid, a.atttypid, true
    FROM pg_attribute a JOIN pg_class k ON k.oid = a.attrelid JOIN pg_namespace n ON n.oid = k.relnamespace
    WHERE k.relkind IN ('r', 'm') AND a.attnum > 0 AND NOT a.attisdropped
      AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
    UNION
    SELECT p.top, e.child, p.plain AND ty.typtype = 'd'
    FROM parts p JOIN edges e ON e.parent = p.part JOIN pg_type ty ON ty.oid = p.part
  )
  SELECT p.top AS oid, bool_or(p.plain AND ty.oid = 'bytea'::regtype) AS bytes
  FROM parts p JOIN pg_type ty ON ty.oid = p.part
  WHERE ty.typtype NOT IN ('d', 'c', 'r', 'm') AND ty.typsubscript <> 'array_subscript_handler'::regproc
    AND ty.typcategory NOT IN ('B', 'D', 'G', 'I', 'N', 'T', 'V')
    AND ty.oid NOT IN ('uuid'::regtype, 'macaddr'::regtype, 'macaddr8'::regtype, 'pg_lsn'::regtype,
      'tid'::regtype, 'xid'::regtype, 'xid8'::regtype, 'cid'::regtype, 'txid_snapshot'::regtype,
      'pg_snapshot'::regtype)
  GROUP BY p.top;

  FOR t IN
    SELECT k.oid, k.oid::regclass::text AS rel, n.nspname, k.relname, k.relispopulated,
      pg_has_role(k.relowner, 'USAGE') AS mine
    FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
    WHERE k.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_%'
    ORDER BY 3, 4
  LOOP
    SELECT array_agg(CASE WHEN ty.bytes THEN format('encode(%I, ''escape'')', a.attname)
                          ELSE format('%I::text', a.attname) END ORDER BY a.attnum),
           array_agg(a.attname::text ORDER BY a.attnum)
      INTO values_, cols
      FROM pg_attribute a JOIN karlstage_types ty ON ty.oid = a.atttypid
      WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped;
    CONTINUE WHEN values_ IS NULL;
    IF NOT t.relispopulated THEN
      INSERT INTO karlstage_found VALUES ('skipped', t.nspname, t.relname, NULL, NULL,
        'a materialized view never populated: it holds no rows');
      CONTINUE;
    END IF;
    BEGIN
      IF row_security_active(t.oid) AND t.mine THEN
        EXECUTE format('ALTER TABLE %s NO FORCE ROW LEVEL SECURITY', t.rel);
      END IF;
      SELECT array_agg(format('coalesce(bool_or(%s ~* %L), false)', v, anyp)) INTO exprs FROM unnest(values_) v;
      -- ONLY: an inherited table's rows are read with that table, not twice.
      EXECUTE format('SELECT ARRAY[%s] FROM ONLY %s', array_to_string(exprs, ', '), t.rel) INTO hits;
      FOR i IN 1 .. array_length(hits, 1) LOOP
        CONTINUE WHEN NOT hits[i];
        FOR j IN 1 .. array_length(pats, 1) LOOP
          EXECUTE format('SELECT coalesce(bool_or(%s ~* %L), false) FROM ONLY %s', values_[i], pats[j], t.rel) INTO hit;
          IF hit THEN
            INSERT INTO karlstage_found VALUES ('hit', t.nspname, t.relname, cols[i], j, NULL);
          END IF;
        END LOOP;
      END LOOP;
    EXCEPTION WHEN OTHERS THEN
      INSERT INTO karlstage_found VALUES ('unread', t.nspname, t.relname, NULL, NULL,
        CASE WHEN row_security_active(t.oid) AND NOT t.mine AND has_table_privilege(t.oid, 'SELECT')
          THEN format('row-level security hides rows from role %s, which does not own it: give that role BYPASSRLS', current_user)
          ELSE SQLERRM END);
    END;
  END LOOP;

  FOR lo IN SELECT m.oid FROM pg_largeobject_metadata m ORDER BY 1 LOOP
    BEGIN
      off := 0;
      LOOP
        piece := lo_get(lo, off, step + overlap);
        txt := encode(piece, 'escape');
        IF txt ~* anyp THEN
          FOR j IN 1 .. array_length(pats, 1) LOOP
            IF txt ~* pats[j] THEN
              INSERT INTO karlstage_found VALUES ('hit', NULL, NULL, lo::text, j, NULL);
            END IF;
          END LOOP;
        END IF;
        EXIT WHEN octet_length(piece) < step + overlap;
        off := off + step;
      END LOOP;
    EXCEPTION WHEN OTHERS THEN
      INSERT INTO karlstage_found VALUES ('unread', NULL, NULL, lo::text, NULL, SQLERRM);
    END;
  END LOOP;
END
$karlstage$;
SELECT DISTINCT json_build_object('kind', kind, 'schema', schema, 'rel', rel, 'col', col,
  'pattern', pattern, 'why', why)::text FROM karlstage_found;
ROLLBACK;
`;

/** A word is matched as written (any case); /a regular expression/ as a PostgreSQL regex. */
export function patternRegex(pattern: string): string {
  const re = /^\/(.+)\/$/.exec(pattern);
  return re ? re[1]! : pattern.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export function scanCommand(
  env: () => Record<string, string>,
  patterns: string[],
  step: string,
  timeoutMs: number,
): Command {
  return {
    program: 'psql',
    args: [
      ...PSQL_FLAGS,
      '-v',
      `patterns=${JSON.stringify(patterns.map(patternRegex))}`,
      '-f',
      '-',
    ],
    input: () => SCAN_SQL,
    step,
    env,
    timeoutMs,
  };
}

/** One line of the scan's output. */
interface Found {
  kind: 'hit' | 'unread' | 'skipped';
  schema: string | null;
  rel: string | null;
  /** The column; for a large object (no schema, no rel), its OID. */
  col: string | null;
  pattern: number | null;
  why: string | null;
}

export interface Hit {
  /** Where, as the operator reads it: docs.owner_email, "Odd Table"."a\tb", large object 16403. */
  where: string;
  pattern: string;
}

export interface ScanResult {
  hits: Hit[];
  /** What could not be read, and why: the copy is not known to be clean. */
  unread: string[];
  /** What was not read because it holds no rows (said, not a failure). */
  skipped: string[];
}

/** Control characters written as \t, \n, \r or \xNN (and \ as \\): text from the server kept to one line, never raw on a terminal. */
function escapeControls(text: string): string {
  return text.replace(/[\\\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/gu, (ch) => {
    const named: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
    const code = ch.codePointAt(0)!;
    return (
      named[ch] ??
      (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`)
    );
  });
}

/** An SQL name as a message shows it: as it is when plain, else double-quoted ("" for "), controls escaped. */
export function shownName(name: string): string {
  return /^[a-z_][a-z0-9_$]*$/.test(name) ? name : `"${escapeControls(name).replace(/"/g, '""')}"`;
}

function placeOf(f: Found): string {
  if (f.rel === null) return `large object ${f.col ?? '?'}`;
  const table = `${f.schema && f.schema !== 'public' ? `${shownName(f.schema)}.` : ''}${shownName(f.rel)}`;
  return f.col === null ? table : `${table}.${shownName(f.col)}`;
}

/** What the scan found: the hits (pattern as configured), what it could not read, what it skipped. */
export function scanResult(stdout: string, patterns: string[]): ScanResult {
  const found = stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Found)
    .sort((a, b) => placeOf(a).localeCompare(placeOf(b)) || (a.pattern ?? 0) - (b.pattern ?? 0));
  const of = (kind: Found['kind']) => found.filter((f) => f.kind === kind);
  return {
    hits: of('hit').map((f) => ({
      where: placeOf(f),
      pattern: patterns[(f.pattern ?? 0) - 1] ?? '?',
    })),
    unread: of('unread').map((f) => `${placeOf(f)} (${escapeControls(f.why ?? 'unknown')})`),
    skipped: of('skipped').map((f) => `${placeOf(f)} (${escapeControls(f.why ?? '')})`),
  };
}

/** Why the scanned copy must not be used, in one line, or undefined when it is clean. */
export function scanProblem(r: ScanResult): string | undefined {
  const parts = [
    r.hits.length
      ? `the sanitized copy still contains ${r.hits.map((h) => `"${h.pattern}" in ${h.where}`).join(', ')}`
      : '',
    r.unread.length
      ? `the sanitized copy could not be checked in full: could not read ${r.unread.join(', ')}`
      : '',
  ].filter(Boolean);
  if (!parts.length) return undefined;
  const fix = [
    r.hits.length ? 'fix the sanitize script' : '',
    r.unread.length ? 'let the staging role read them' : '',
  ]
    .filter(Boolean)
    .join(' and ');
  return `${parts.join('; ')}: ${fix}; every branch site keeps yesterday's data`;
}
