import { CUSTOMER, CUSTOMER_PREFIX, SECTIONS, type KeyDecl } from './schema.js';

/**
 * docs/configuration.md's table of keys, made from the declarations (schema.ts): each key with
 * its default and its one-line description. `npm run docs:config` writes it between the
 * markers below; test/unit/config-keys.test.ts fails while the file's table is not this one.
 */
export const TABLE_START =
  '<!-- keys: made from src/config/schema.ts by "npm run docs:config"; edit the declarations, not this table -->';
export const TABLE_END = '<!-- /keys -->';

/** Every section's declarations, as the table lists them. */
export const DECLARED: readonly (readonly [string, Record<string, KeyDecl>])[] = [
  ...Object.entries(SECTIONS),
  [`${CUSTOMER_PREFIX}NAME`, CUSTOMER],
];

/** A key's default as the table shows it. */
export function shownDefault(decl: KeyDecl): string {
  if (decl.required) return 'required';
  if (decl.defaultText) return decl.defaultText;
  return decl.default ? `\`${decl.default}\`` : '—';
}

const cell = (text: string) => text.replace(/\|/g, '\\|');

/** The table, markers included. */
export function keysTable(): string {
  const rows = DECLARED.flatMap(([section, keys]) =>
    Object.entries(keys).map(
      ([key, decl], i) =>
        `| ${i === 0 ? `\`[${section}]\`` : ''} | \`${key}\` | ${cell(shownDefault(decl))} | ${cell(decl.doc)} |`,
    ),
  );
  return [
    TABLE_START,
    '',
    '| section | key | default | meaning |',
    '|---|---|---|---|',
    ...rows,
    '',
    TABLE_END,
  ].join('\n');
}

/** The markdown with its table replaced by `table` (undefined: it has no markers). */
export function withTable(markdown: string, table: string): string | undefined {
  const start = markdown.indexOf(TABLE_START);
  const end = markdown.indexOf(TABLE_END);
  if (start < 0 || end < start) return undefined;
  return markdown.slice(0, start) + table + markdown.slice(end + TABLE_END.length);
}
