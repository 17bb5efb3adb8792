import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

/**
 * Golden files: what karlstage renders from fixed inputs, committed under test/golden/. A
 * change of a template or a renderer shows as a failing test with the difference; a change
 * meant is recorded on purpose with
 *
 *     UPDATE_GOLDEN=1 npx vitest run test/unit/golden.test.ts
 *
 * and reviewed in `git diff test/golden/` before it is committed.
 */
export const GOLDEN_DIR = fileURLToPath(new URL('../golden/', import.meta.url));
const UPDATE = 'UPDATE_GOLDEN=1 npx vitest run test/unit/golden.test.ts';

/** `text` must be test/golden/NAME, byte for byte; with UPDATE_GOLDEN=1 it becomes it. */
export async function expectGolden(name: string, text: string): Promise<void> {
  const file = join(GOLDEN_DIR, name);
  const golden = await readFile(file, 'utf8').catch(() => undefined);
  if (process.env.UPDATE_GOLDEN === '1') {
    if (golden === text) return;
    await mkdir(GOLDEN_DIR, { recursive: true });
    await writeFile(file, text);
    console.log(`${golden === undefined ? 'wrote' : 'updated'} test/golden/${name}`);
    return;
  }
  // Soft: every file that changed is reported, each with its difference line by line.
  if (golden === undefined)
    return void expect
      .soft(golden, `test/golden/${name} is missing: "${UPDATE}" writes it, review and commit it`)
      .toBeDefined();
  expect
    .soft(
      text,
      `karlstage no longer renders test/golden/${name} (- golden, + rendered now). If the change is meant: ${UPDATE}, review git diff test/golden/ and commit it`,
    )
    .toBe(golden);
}
