#!/usr/bin/env node
// docs/configuration.md's table of keys, made from the declarations in src/config/schema.ts
// (src/config/table.ts says how; `npm run docs:config` builds first). Run it after adding or
// changing a key: test/unit/config-keys.test.ts fails while the table is not the one made here.
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const { keysTable, withTable } = await import(join(root, 'dist', 'config', 'table.js'));
const file = join(root, 'docs', 'configuration.md');
const before = await readFile(file, 'utf8');
const after = withTable(before, keysTable());
if (after === undefined) {
  console.error(`${file}: no table markers (<!-- keys: … --> … <!-- /keys -->) to write between`);
  process.exitCode = 1;
} else if (after === before) console.log(`${file}: the table of keys is current`);
else {
  await writeFile(file, after);
  console.log(`${file}: table of keys written`);
}
