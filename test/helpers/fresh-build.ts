import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

/**
 * vitest's globalSetup for the tests of real programs: many run the built binary
 * (bin/karlstage.js loads dist/bundle/karlstage.cjs), and a build older than src/ would test
 * old code. So when anything the build is made from is newer than the bundle, `npm run build`
 * runs first, and says so in one line. When the bundle is current this is a walk of src/
 * (a few milliseconds): `npm test`, which builds first, does not build twice.
 *
 * templates/ is not among the inputs: karlstage reads its templates at run time, from
 * templates/ beside dist/ (src/core/templates.ts), so a changed template needs no build.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BUNDLE = 'dist/bundle/karlstage.cjs';
const INPUTS = [
  'src',
  'scripts/bundle.mjs',
  'tsconfig.json',
  'tsconfig.build.json',
  'package.json',
  'package-lock.json',
];
/** Two runs in one checkout: one builds, the other waits for it (dist/ is written in place). */
const LOCK = 'dist/.build.lock';
const LOCK_WAIT_MS = 5 * 60_000;

const mtime = (path: string) => statSync(join(ROOT, path), { throwIfNoEntry: false })?.mtimeMs;

/** The newest input: a file, or a folder (a file removed from it changes the folder's time). */
function newestInput(): { path: string; ms: number } {
  let newest = { path: '', ms: 0 };
  const visit = (path: string) => {
    const s = statSync(join(ROOT, path), { throwIfNoEntry: false });
    if (!s) return;
    if (s.mtimeMs > newest.ms) newest = { path, ms: s.mtimeMs };
    if (s.isDirectory()) for (const name of readdirSync(join(ROOT, path))) visit(join(path, name));
  };
  INPUTS.forEach(visit);
  return newest;
}

const stale = () => {
  const input = newestInput();
  const built = mtime(BUNDLE);
  return built === undefined
    ? `${BUNDLE} is missing`
    : input.ms > built
      ? `${input.path} is newer than ${BUNDLE}`
      : undefined;
};

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
};

/**
 * Take the build lock: a file holding our pid. A lock whose process is gone (a run stopped with
 * Ctrl-C while it built) is removed and taken.
 */
async function lock(): Promise<() => void> {
  const file = join(ROOT, LOCK);
  mkdirSync(dirname(file), { recursive: true });
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      return () => rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    let holder: number;
    try {
      holder = Number(readFileSync(file, 'utf8'));
    } catch {
      continue; // released meanwhile
    }
    if (holder && !alive(holder)) rmSync(file, { force: true });
    else if (Date.now() > deadline)
      throw new Error(`${LOCK} is held by pid ${holder} for minutes: is a build stuck?`);
    else await sleep(200);
  }
}

export default async function freshBuild(): Promise<void> {
  if (!stale()) return;
  const release = await lock();
  try {
    // Another run may have built it while this one waited.
    const why = stale();
    if (!why) return;
    const started = Date.now();
    process.stdout.write(`${why}: npm run build … `);
    try {
      await execa('npm', ['run', '--silent', 'build'], { cwd: ROOT, all: true });
    } catch (e) {
      process.stdout.write('failed\n');
      throw new Error(
        `npm run build failed, so the tests would run old code:\n${(e as { all?: string }).all ?? e}`,
        { cause: e },
      );
    }
    process.stdout.write(`done in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  } finally {
    release();
  }
}
