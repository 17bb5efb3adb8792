// Covers: scripts/tests-for.mjs
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a plain ES module of the scripts, without types
import { coverage, testsFor } from '../../scripts/tests-for.mjs';

const top = join(import.meta.dirname, '..', '..');
type Entry = { test: string; covers: string[] };

describe('which tests cover a file', () => {
  const all = coverage(top) as Entry[];
  it('every test file says what it covers, and what it names exists', () => {
    expect(all.length).toBeGreaterThan(40);
    for (const { test, covers } of all) {
      expect(covers, `${test}: its first line is "// Covers: …"`).not.toEqual([]);
      for (const c of covers) expect(existsSync(join(top, c)), `${test} covers ${c}`).toBe(true);
    }
  });
  it('every folder of src/ is covered by some test, and a file finds its tests', () => {
    const covered = (path: string) => testsFor([path], top).length > 0;
    for (const e of readdirSync(join(top, 'src'), { withFileTypes: true }))
      if (e.isDirectory())
        for (const f of readdirSync(join(top, 'src', e.name)).filter((x) => x.endsWith('.ts')))
          expect(
            covered(`src/${e.name}/${f}`) || covered(`src/${e.name}/`),
            `src/${e.name}/${f}`,
          ).toBe(true);
    const update = testsFor(['src/branches/update.ts'], top) as string[];
    expect(update).toContain('test/unit/update-plan.test.ts');
    expect(update).toContain('test/lifecycle.test.ts');
    expect(update.indexOf('test/unit/update-plan.test.ts')).toBeLessThan(
      update.indexOf('test/lifecycle.test.ts'),
    );
  });
});
