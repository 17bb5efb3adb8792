#!/usr/bin/env node
// The house's floors, from the top: a file may import from its own folder or from a lower
// floor, never upward and never sideways (siblings on one floor do not import each other).
// Also refuses import loops between files, and any way to start a program but the one (see
// RUNNER below). Run by `npm run lint` (or `node scripts/check-layers.mjs [SRC]`); prints every
// violation.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

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

/**
 * One way to run a program: a `Command` value, run by the plan step that declared it
 * (ctx.exec, core/plan.ts) or, outside any plan, by exec() of core/command.ts. So only
 * core/command.ts imports the runner, and no file starts a program by itself.
 */
export const RUNNER = {
  file: 'core/runner.ts',
  users: ['core/command.ts'],
  /** Modules that start programs: only the runner imports them. */
  starters: ['execa', 'node:child_process', 'child_process'],
  instead:
    'run a program as a Command value (core/command.ts): in a plan step that declares it, by ctx.exec; outside any plan (a read), by exec(command) of core/command.ts',
  /** Where the runner's helpers that start nothing live now. */
  moved: {
    commandLine: 'core/command-line.ts',
    splitCommand: 'core/command-line.ts',
    tail: 'core/command-line.ts',
    tailWithCause: 'core/command-line.ts',
    withRetries: 'core/retries.ts',
    isFinal: 'core/retries.ts',
    logLine: 'core/logs.ts',
    traceCommands: 'core/logs.ts',
    RunResult: 'core/command.ts',
  },
};

const IMPORTS =
  /(?:import|export)\s*(type\s*)?(\{[^}]*\}|[\w*$][^'"]*?)?\s*from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The names an import statement takes ("{ run, type RunResult as R }" gives run, RunResult). */
const namesOf = (clause) =>
  clause?.startsWith('{')
    ? clause
        .slice(1, -1)
        .split(',')
        .map(
          (n) =>
            n
              .trim()
              .replace(/^type\s+/, '')
              .split(/\s+as\s+/)[0],
        )
        .filter(Boolean)
    : [];

function runnerProblem(file, names) {
  const moved = names.filter((n) => RUNNER.moved[n]);
  const starting = names.filter((n) => !RUNNER.moved[n]);
  const what = names.length ? `${names.join(', ')} from ${RUNNER.file}` : RUNNER.file;
  const parts = [];
  if (starting.length || names.length === 0) parts.push(RUNNER.instead);
  for (const n of moved) parts.push(`${n} is in ${RUNNER.moved[n]}`);
  return `${file} imports ${what}: only ${RUNNER.users.join(', ')} may; ${parts.join('; ')}`;
}

/** Every problem of the tree under `src` (floors, loops, the runner), and how many files it has. */
export function checkLayers(src) {
  const floorOf = new Map(FLOORS.flatMap((names, i) => names.map((n) => [n, i])));
  const room = (file) => relative(src, file).split(sep)[0];
  const name = (file) => relative(src, file).split(sep).join('/');

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
    if (!floorOf.has(from)) problems.push(`${name(file)}: src/${from} is on no floor`);
    const out = new Set();
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORTS)) {
      const spec = m[3] ?? m[4];
      if (!spec.startsWith('.')) {
        if (RUNNER.starters.includes(spec) && name(file) !== RUNNER.file)
          problems.push(
            `${name(file)} imports ${spec}, which starts programs: only ${RUNNER.file} may; ${RUNNER.instead}`,
          );
        continue;
      }
      const target = resolve(dirname(file), spec.replace(/\.js$/, '.ts'));
      if (!existsSync(target)) continue;
      if (name(target) === RUNNER.file && !RUNNER.users.includes(name(file)))
        problems.push(runnerProblem(name(file), namesOf(m[2]?.trim())));
      out.add(target);
      const to = room(target);
      if (from === to) continue;
      const [a, b] = [floorOf.get(from), floorOf.get(to)];
      if (a === undefined || b === undefined) continue;
      if (a === b)
        problems.push(`${name(file)} imports ${name(target)}: sideways (siblings on one floor)`);
      else if (a > b) problems.push(`${name(file)} imports ${name(target)}: upward`);
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
        loop.push(name(w));
      } while (w !== v);
      if (loop.length > 1) problems.push(`import loop: ${loop.join(' <-> ')}`);
    }
  }
  for (const f of files) if (!idx.has(f)) connect(f);
  return { files: files.length, problems };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const src = resolve(
    process.argv[2] ?? join(dirname(fileURLToPath(import.meta.url)), '..', 'src'),
  );
  const { files, problems } = checkLayers(src);
  if (problems.length) {
    console.error(`check-layers: ${problems.length} problem(s):\n  ${problems.join('\n  ')}`);
    process.exit(1);
  }
  console.log(
    `check-layers: ${files} files, every import points down, no loops, one way to run a program`,
  );
}
