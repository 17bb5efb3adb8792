#!/usr/bin/env node
// Which tests cover a file: each test file says so in its first line ("// Covers: src/x.ts
// src/folder/ templates/y"). `npm run test:for -- src/branches/update.ts` runs those tests
// (the fast unit tests first); with --list it only names them. No file given: the files git
// sees changed against HEAD.
import { execFileSync, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const top = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Every test file and what it covers (paths relative to the repository; a folder ends in "/"). */
export function coverage(root = top) {
  const found = [];
  (function walk(dir) {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory() && e.name !== 'helpers' && e.name !== 'golden') walk(p);
      else if (e.name.endsWith('.test.ts')) {
        const first = readFileSync(p, 'utf8').split('\n', 1)[0] ?? '';
        const m = /^\/\/ Covers: (.+)$/.exec(first);
        found.push({ test: relative(root, p), covers: m ? m[1].trim().split(/\s+/) : [] });
      }
    }
  })(join(root, 'test'));
  return found.sort((a, b) => a.test.localeCompare(b.test));
}

/** The tests that cover any of these files (a test covering a folder covers what is in it). */
export function testsFor(files, root = top) {
  const covered = (path) => (c) => (c.endsWith('/') ? path.startsWith(c) : path === c);
  return coverage(root)
    .filter(({ covers }) => files.some((f) => covers.some(covered(f))))
    .map(({ test }) => test)
    .sort((a, b) => Number(!a.startsWith('test/unit/')) - Number(!b.startsWith('test/unit/')));
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const list = args.includes('--list');
  let files = args.filter((a) => a !== '--list').map((f) => relative(top, resolve(f)));
  if (files.length === 0)
    files = execFileSync('git', ['diff', '--name-only', 'HEAD'], { cwd: top, encoding: 'utf8' })
      .split('\n')
      .filter(Boolean);
  const tests = testsFor(files);
  if (list || tests.length === 0) {
    console.log(tests.length ? tests.join('\n') : `no test says it covers ${files.join(', ')}`);
    process.exit(tests.length ? 0 : 1);
  }
  const r = spawnSync('npx', ['vitest', 'run', ...tests], { cwd: top, stdio: 'inherit' });
  process.exit(r.status ?? 1);
}
