// Covers: src/config/schema.ts templates/karlstage.ini docs/configuration.md
// Covers src/config/schema.ts, readers.ts and table.ts against templates/karlstage.ini and
// docs/configuration.md: a key is declared once, and the template and the table say the same.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { DECLARED, keysTable, TABLE_END, TABLE_START } from '../../src/config/table.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));

interface TemplateKey {
  line: number;
  value: string;
  commented: boolean;
  /** The template explains it: a comment above it (above the keys grouped with it). */
  explained: boolean;
}

/**
 * templates/karlstage.ini's keys by section: `key = value` lines and commented ones
 * (`# key = value`, an optional key or a section shown, not set); `[customer:osf]` is the
 * `[customer:NAME]` section.
 */
function templateKeys(text: string): Map<string, Map<string, TemplateKey[]>> {
  const sections = new Map<string, Map<string, TemplateKey[]>>();
  let current: Map<string, TemplateKey[]> | undefined;
  let explained = false; // the lines above, back to the last line that is not a key, explain
  for (const [i, line] of text.split('\n').entries()) {
    const section = /^(?:#\s*)?\[([^\]]+)\]\s*$/.exec(line);
    const key = /^(#\s*)?([a-z][a-z0-9_]*)\s*=\s*(.*)$/.exec(line);
    if (section) {
      const name = section[1]!.replace(/^customer:.*/, 'customer:NAME');
      current = sections.get(name) ?? new Map();
      sections.set(name, current);
      explained = false;
    } else if (key && current) {
      const [, hash, name, value] = key;
      const found = { line: i + 1, value: value!.trim(), commented: Boolean(hash), explained };
      current.set(name!, [...(current.get(name!) ?? []), found]);
    } else explained = line.startsWith('#');
  }
  return sections;
}

describe('configuration keys, each declared once', () => {
  it('templates/karlstage.ini has every declared key, explained, with its default', async () => {
    const template = templateKeys(await readFile(`${repo}/templates/karlstage.ini`, 'utf8'));
    const problems: string[] = [];
    for (const [section, keys] of DECLARED) {
      const written = template.get(section) ?? new Map<string, TemplateKey[]>();
      for (const [key, decl] of Object.entries(keys)) {
        const lines = written.get(key) ?? [];
        if (lines.length !== 1) {
          problems.push(
            `[${section}] ${key}: ${lines.length} lines (write one, "# ${key} = …" if optional)`,
          );
          continue;
        }
        const [{ line, value, explained }] = lines as [TemplateKey];
        if (!explained) problems.push(`[${section}] ${key} (line ${line}): no comment explains it`);
        // An empty default (none, every, nothing) may be shown with an example instead;
        // {{…}} is filled in by "karlstage init".
        if (decl.default && !value.startsWith('{{') && value !== decl.default)
          problems.push(
            `[${section}] ${key} (line ${line}) = ${value}, but its default is ${decl.default}`,
          );
      }
      for (const key of written.keys())
        if (!(key in keys)) problems.push(`[${section}] ${key}: not a declared key`);
    }
    for (const section of template.keys())
      if (!DECLARED.some(([name]) => name === section))
        problems.push(`[${section}]: not a declared section`);
    expect(problems).toEqual([]);
  });

  it("docs/configuration.md's table is the one the declarations make (npm run docs:config)", async () => {
    const docs = await readFile(`${repo}/docs/configuration.md`, 'utf8');
    const start = docs.indexOf(TABLE_START);
    const end = docs.indexOf(TABLE_END);
    expect(start >= 0 && end > start, 'docs/configuration.md has no table markers').toBe(true);
    expect(
      docs.slice(start, end + TABLE_END.length).split('\n'),
      'the table of keys is not current: run "npm run docs:config"',
    ).toEqual(keysTable().split('\n'));
  });

  it('every key has a one-line description and fills fields no other key of its section fills', () => {
    for (const [section, keys] of DECLARED) {
      const filledBy = new Map<string, string>();
      for (const [key, decl] of Object.entries(keys)) {
        expect(decl.doc, `[${section}] ${key}`).toMatch(/^[^\n]+$/);
        expect(decl.required && decl.default !== undefined, `[${section}] ${key}`).toBeFalsy();
        // A key without a field fills what its reader returns (given a value: none without).
        const filled = decl.field
          ? [decl.field]
          : Object.keys(
              decl.read('https://u:p@example.org/x', { root: '/', value: () => '' }) ?? {},
            );
        expect(filled.length, `[${section}] ${key} fills no field`).toBeGreaterThan(0);
        for (const field of filled) {
          expect(filledBy.get(field), `[${section}] ${key} fills ${field}`).toBeUndefined();
          filledBy.set(field, key);
        }
      }
    }
  });
});
