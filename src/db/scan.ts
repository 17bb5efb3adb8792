import type { Command } from '../core/command.js';

/**
 * The clean-data check: after the sanitize step, before the golden copy is
 * swapped in, every text, varchar, char, json and bytea column of the restored
 * copy is read once (one scan per table, every pattern at once) for the
 * customer's must_not_contain patterns. A hit names the table, column and
 * pattern, never the value. Patterns come in as a psql variable (quoted by
 * psql), never spliced into the SQL.
 */
const SCAN_SQL = String.raw`
SET karlstage.patterns = :'patterns';
CREATE TEMP TABLE karlstage_hits (rel text, col text, pattern int);
DO $karlstage$
DECLARE
  pats text[] := ARRAY(SELECT jsonb_array_elements_text(current_setting('karlstage.patterns')::jsonb));
  t record;
  c record;
  exprs text[];
  labels text[];
  hits boolean[];
BEGIN
  FOR t IN
    SELECT k.oid, k.oid::regclass::text AS rel FROM pg_class k JOIN pg_namespace n ON n.oid = k.relnamespace
    WHERE k.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\_%'
  LOOP
    exprs := '{}';
    labels := '{}';
    FOR c IN
      SELECT a.attname, a.atttypid = 'bytea'::regtype AS bytes FROM pg_attribute a
      WHERE a.attrelid = t.oid AND a.attnum > 0 AND NOT a.attisdropped
        AND a.atttypid IN ('text'::regtype, 'varchar'::regtype, 'bpchar'::regtype, 'bytea'::regtype,
                           'json'::regtype, 'jsonb'::regtype)
    LOOP
      FOR i IN 1 .. coalesce(array_length(pats, 1), 0) LOOP
        exprs := exprs || format('coalesce(bool_or(%s ~* %L), false)',
          CASE WHEN c.bytes THEN format('encode(%I, ''escape'')', c.attname) ELSE format('%I::text', c.attname) END,
          pats[i]);
        labels := labels || (c.attname || chr(9) || i);
      END LOOP;
    END LOOP;
    CONTINUE WHEN array_length(exprs, 1) IS NULL;
    EXECUTE format('SELECT ARRAY[%s] FROM %s', array_to_string(exprs, ', '), t.rel) INTO hits;
    FOR i IN 1 .. array_length(hits, 1) LOOP
      IF hits[i] THEN
        INSERT INTO karlstage_hits VALUES (t.rel, split_part(labels[i], chr(9), 1), split_part(labels[i], chr(9), 2)::int);
      END IF;
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
      '-X',
      '-q',
      '-A',
      '-t',
      '-v',
      'ON_ERROR_STOP=1',
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
