#!/usr/bin/env node
// The house's floors, from the top: a file may import from its own folder or from a lower
// floor, never upward and never sideways (siblings on one floor do not import each other).
// Also refuses import loops between files. Run by `npm run lint`; prints every violation.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FLOORS = [
  ['cli.ts'], // the command line: main(), the program
  ['cli'], // each group of commands and its flags
  ['demo'], // the demo: a throwaway staging server, end to end (and its sample repositories)
  ['commands'], // one file per command
  ['context'], // what every command shares: options, reporter, "after a change"
  ['branches', 'sync', 'publish'], // the features
  ['model', 'vcs', 'db'], // a staging root's shared model; version control; databases
  ['instances'], // etc/instances.ini as KARL's ConfigParser reads it; a site's customers
  ['config'], // karlstage.ini
  ['core'], // no word of the domain: runner, plan, locks, output, errors, files
];

const src = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'src');
const floorOf = new Map(FLOORS.flatMap((names, i) => names.map((n) => [n, i])));
const room = (file) => relative(src, file).split(sep)[0];

const files = [];
(function walk(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p);
    else if (e.name.endsWith('.ts')) files.push(p);
  }
})(src);

const problems = [];
const edges = new Map();
for (const file of files) {
  const from = room(file);
  if (!floorOf.has(from)) problems.push(`${relative(src, file)}: src/${from} is on no floor`);
  const out = new Set();
  const text = readFileSync(file, 'utf8');
  for (const m of text.matchAll(
    /(?:import|export)[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)/g,
  )) {
    const target = resolve(dirname(file), (m[1] ?? m[2]).replace(/\.js$/, '.ts'));
    if (!existsSync(target)) continue;
    out.add(target);
    const to = room(target);
    if (from === to) continue;
    const [a, b] = [floorOf.get(from), floorOf.get(to)];
    if (a === undefined || b === undefined) continue;
    if (a === b)
      problems.push(
        `${relative(src, file)} imports ${relative(src, target)}: sideways (siblings on one floor)`,
      );
    else if (a > b)
      problems.push(`${relative(src, file)} imports ${relative(src, target)}: upward`);
  }
  edges.set(file, out);
}

// Import loops between files (Tarjan's strongly connected components).
let index = 0;
const stack = [];
const on = new Set();
const idx = new Map();
const low = new Map();
function connect(v) {
  idx.set(v, index);
  low.set(v, index++);
  stack.push(v);
  on.add(v);
  for (const w of edges.get(v) ?? []) {
    if (!idx.has(w)) {
      connect(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const loop = [];
    let w;
    do {
      w = stack.pop();
      on.delete(w);
      loop.push(relative(src, w));
    } while (w !== v);
    if (loop.length > 1) problems.push(`import loop: ${loop.join(' <-> ')}`);
  }
}
for (const f of files) if (!idx.has(f)) connect(f);

if (problems.length) {
  console.error(`check-layers: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`check-layers: ${files.length} files, every import points down, no loops`);
