import type { Command } from '../core/command.js';
import { PSQL_FLAGS } from './pg.js';

/**
 * The clean-data check: after the sanitize step, before the golden copy is
 * swapped in, every text, varchar, char, json and bytea column of the restored
 * copy is read once for the customer's must_not_contain patterns: one scan per
 * table, each value matched once against all patterns together ((p1)|(p2)…);
 * only a column that hits is read again, to name the pattern. A hit names the
 * table, column and pattern, never the value. The patterns come in as a psql
 * variable (quoted by psql), never spliced into the SQL.
 */
const SCAN_SQL = String.raw`
SET karlstage.patterns = :'patterns';
CREATE TEMP TABLE karlstage_hits (rel text, col text, pattern int);
DO $karlstage$
DECLARE
  pats text[] := ARRAY(SELECT jsonb_array_elements_text(current_setting('karlstage.patterns')::jsonb));
  anyp text;
  t record;
  c record;
  exprs text[];
  values_ text[];
  cols text[];
  hits boolean[];
  hit boolean;
BEGIN
  SELECT string_agg('(' || p || ')', '|') INTO anyp FROM unnest(pats) p;
  FOR t IN
    SELECT k.oid, k.oid::regclass::text AS rel FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
    WHERE k.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_%'
  LOOP
    exprs := '{}';
    values_ := '{}';
    cols := '{}';
    -- Every column that holds text: string types (citext included) and domains over them,
    -- arrays of them, json, jsonb, xml, and bytea.
    FOR c IN
      SELECT a.attname, b.oid = 'bytea'::regtype AS bytes
      FROM pg_attribute a
      JOIN pg_type ty ON ty.oid = a.atttypid
      JOIN pg_type b ON b.oid = CASE WHEN ty.typtype = 'd' THEN ty.typbasetype ELSE ty.oid END
      LEFT JOIN pg_type e ON e.oid = b.typelem AND b.typcategory = 'A'
      WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
        AND (b.typcategory = 'S' OR e.typcategory = 'S'
             OR b.oid IN ('bytea'::regtype, 'json'::regtype, 'jsonb'::regtype, 'xml'::regtype))
    LOOP
      -- bytea as text: escape format keeps every printable byte as it is (and NUL is no problem).
      values_ := values_ || CASE WHEN c.bytes THEN format('encode(%I, ''escape'')', c.attname)
                                 ELSE format('%I::text', c.attname) END;
      exprs := exprs || format('coalesce(bool_or(%s ~* %L), false)', values_[array_length(values_, 1)], anyp);
      cols := cols || c.attname::text;
    END LOOP;
    CONTINUE WHEN anyp IS NULL OR array_length(exprs, 1) IS NULL;
    -- ONLY: an inherited table's rows are read with that table, not twice.
    EXECUTE format('SELECT ARRAY[%s] FROM ONLY %s', array_to_string(exprs, ', '), t.rel) INTO hits;
    FOR i IN 1 .. array_length(hits, 1) LOOP
      CONTINUE WHEN NOT hits[i];
      FOR j IN 1 .. array_length(pats, 1) LOOP
        EXECUTE format('SELECT coalesce(bool_or(%s ~* %L), false) FROM ONLY %s', values_[i], pats[j], t.rel) INTO hit;
        IF hit THEN
          INSERT INTO karlstage_hits VALUES (t.rel, cols[i], j);
        END IF;
      END LOOP;
    END LOOP;
  END LOOP;
END
$karlstage$;
SELECT rel || chr(9) || col || chr(9) || pattern FROM karlstage_hits ORDER BY 1;
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

export interface Hit {
  table: string;
  column: string;
  pattern: string;
}

/** The hits psql printed: table, column and the pattern as configured. */
export function hitsOf(stdout: string, patterns: string[]): Hit[] {
  return stdout
    .split('\n')
    .filter((l) => l.includes('\t'))
    .map((l) => {
      const [table = '', column = '', n = '0'] = l.split('\t');
      return { table, column, pattern: patterns[Number(n) - 1] ?? '?' };
    });
}
