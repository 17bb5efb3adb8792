// Covers: docs/layout.md scripts/check-layers.mjs
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FLOORS } from '../../scripts/check-layers.mjs';

const top = join(import.meta.dirname, '..', '..');

describe("docs/layout.md's map of the code", () => {
  it('names every folder of src/, floor by floor, in the order check-layers keeps', () => {
    const text = readFileSync(join(top, 'docs', 'layout.md'), 'utf8');
    const map = text.slice(
      text.indexOf('The code is built in floors'),
      text.indexOf('A command works out'),
    );
    // The map's lines name src/X or src/X/ at their start, top floor first.
    const named = [...map.matchAll(/^ {4}((?:src\/[\w.-]+\/?\s*)+)/gm)].map((m) =>
      m[1]!
        .trim()
        .split(/\s+/)
        .map((s) => s.replace(/^src\//, '').replace(/\/$/, '')),
    );
    expect(named).toEqual((FLOORS as string[][]).map((floor) => [...floor]));
    const folders = readdirSync(join(top, 'src'), { withFileTypes: true })
      .map((e) => (e.isDirectory() ? e.name : e.name === 'cli.ts' ? 'cli.ts' : ''))
      .filter(Boolean)
      .sort();
    expect(named.flat().sort()).toEqual(folders);
  });
});
