#!/usr/bin/env node
// bench/store: what one shared git object store saves, against a full clone per branch site, in one run.
// Targets (issue 21): disk per extra branch site <= 1.1x its checkout; creating an extra site <= 0.3x a
// full clone; `update --all` with nothing new, 8 sites against 1 site <= 1.5x.
// The repository is made here, of a realistic shape (no download): BENCH_BRANCHES branches (100),
// BENCH_COMMITS commits (3000) and about BENCH_MB of history (100), written with git fast-import;
// each commit rewrites one of 600 files, so the history is about five times the checkout (KARL's:
// about 190 MB of history, a 23 MB checkout).
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { Buffer } from 'node:buffer';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchStagingRoot } from './staging.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const dist = join(here, '..', 'dist');
const BRANCHES = Number(process.env.BENCH_BRANCHES ?? 100);
const COMMITS = Number(process.env.BENCH_COMMITS ?? 3000);
const MB = Number(process.env.BENCH_MB ?? 100);
const ROUNDS = Number(process.env.ROUNDS ?? 5);

const { create } = await import(join(dist, 'commands', 'create.js'));
const { update } = await import(join(dist, 'commands', 'update.js'));
const { makeSkeleton } = await import(join(dist, 'demo', 'sample-repos.js'));
const { serverSource } = await import(join(dist, 'demo', 'sample-app.js'));

const du = (path) => Number(execFileSync('du', ['-sk', path]).toString().split('\t')[0]) * 1024;
const mb = (bytes) => `${(bytes / 1048576).toFixed(1)} MB`;
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const time = async (fn) => {
  const t = performance.now();
  await fn();
  return performance.now() - t;
};

/** A bare repository: COMMITS commits on main (each adding incompressible data), BRANCHES branches off it. */
async function makeRepository(bare) {
  execFileSync('git', ['init', '-q', '--bare', '--initial-branch=main', bare]);
  const perCommit = Math.max(1, Math.floor((MB * 1048576) / COMMITS));
  const fi = spawn('git', ['-C', bare, 'fast-import', '--quiet'], {
    stdio: ['pipe', 'inherit', 'inherit'],
  });
  const write = (s) => new Promise((r) => (fi.stdin.write(s) ? r() : fi.stdin.once('drain', r)));
  const data = (buf) =>
    write(`data ${buf.length}\n`)
      .then(() => write(buf))
      .then(() => write('\n'));
  const when = 1700000000;
  for (let i = 1; i <= COMMITS; i++) {
    await write(
      `commit refs/heads/main\nmark :${i}\ncommitter Bench <bench@example.org> ${when + i} +0000\n`,
    );
    await data(Buffer.from(`Commit ${i}`));
    if (i > 1) await write(`from :${i - 1}\n`);
    if (i === 1) {
      await write('M 644 inline server.mjs\n');
      await data(Buffer.from(serverSource('bench')));
    }
    await write(`M 644 inline data/${i % 600}.bin\n`);
    await data(randomBytes(perCommit));
  }
  // Branches off main at spread-out commits, each with a commit of its own.
  for (let b = 1; b <= BRANCHES; b++) {
    const at = Math.max(1, Math.floor((COMMITS * b) / (BRANCHES + 1)));
    await write(
      `commit refs/heads/feature-${b}\ncommitter Bench <bench@example.org> ${when + COMMITS + b} +0000\n`,
    );
    await data(Buffer.from(`Feature ${b}`));
    await write(`from :${at}\nM 644 inline feature-${b}.txt\n`);
    await data(Buffer.from(`feature ${b}\n`));
  }
  fi.stdin.end();
  await new Promise((r) => fi.once('exit', r));
  execFileSync('git', ['-C', bare, 'repack', '-a', '-d', '-q']);
}

const dir = await mkdtemp(join(tmpdir(), 'ks-bench-store-'));
try {
  console.log(
    `making a repository: ${COMMITS} commits, ${BRANCHES} branches, about ${MB} MB of history`,
  );
  const bare = join(dir, 'karl.git');
  await makeRepository(bare);
  console.log(`  ${mb(du(join(bare, 'objects')))} of objects`);
  const skeleton = await makeSkeleton(join(dir, 'skeleton'));
  const root = join(dir, 'staging');
  const file = await benchStagingRoot({
    root,
    vcs: 'git',
    url: `file://${bare}`,
    skeleton,
    defaultRef: 'main',
    sites: 9,
    drop: ['start', 'restart', 'stop'],
  });
  const g = { quiet: true, config: file };

  // The naive way: a full clone per branch site (what karlstage did before the store).
  const naiveDir = join(dir, 'naive');
  await mkdir(naiveDir);
  const clone = [];
  for (let i = 0; i < ROUNDS; i++) {
    const dest = join(naiveDir, `clone${i}`);
    clone.push(
      await time(async () => execFileSync('git', ['clone', '-q', `file://${bare}`, dest])),
    );
  }
  const fullClone = du(join(naiveDir, 'clone0'));
  const checkout = fullClone - du(join(naiveDir, 'clone0', '.git'));

  // Ours: the first site fills the store; every further one is a checkout from it.
  await create({ ...g, branch: 'site1' });
  const extra = [];
  // Extra sites on main (like the naive clones) and on feature branches.
  for (let i = 2; i <= 8; i++)
    extra.push(
      await time(() =>
        create({ ...g, branch: `site${i}`, ...(i > 4 ? { ref: `feature-${i}` } : {}) }),
      ),
    );
  // site2 is on main: its source folder (checkout and .git) against the checkout of a full clone.
  const siteCheckout = du(join(root, 'site2', 'src', 'karl'));
  const store = du(join(root, '.karlstage', 'git', 'source.git'));

  // update --all with nothing new: 8 sites against 1, as cron runs it (the built command, one
  // process each); and in this process, which leaves out node's start-up and shows the cost per site.
  const cli =
    (...args) =>
    () =>
      execFileSync(process.execPath, [
        join(here, '..', 'bin', 'karlstage.js'),
        '--config',
        file,
        ...args,
      ]);
  const one = [];
  const eight = [];
  const oneIn = [];
  const eightIn = [];
  for (let i = 0; i < ROUNDS; i++) {
    one.push(await time(cli('update', 'site1', '--quiet')));
    eight.push(await time(cli('update', '--all', '--quiet')));
    oneIn.push(await time(() => update({ ...g, branches: ['site1'] })));
    eightIn.push(await time(() => update({ ...g, branches: [], all: true })));
  }

  const rows = [
    [
      'disk of an extra site vs its checkout',
      `${mb(siteCheckout)} vs ${mb(checkout)}`,
      siteCheckout / checkout,
      1.1,
    ],
    [
      'creating an extra site vs a full clone',
      `${median(extra).toFixed(0)} ms vs ${median(clone).toFixed(0)} ms`,
      median(extra) / median(clone),
      0.3,
    ],
    [
      'update --all, nothing new: 8 sites vs 1',
      `${median(eight).toFixed(0)} ms vs ${median(one).toFixed(0)} ms`,
      median(eight) / median(one),
      1.5,
    ],
  ];
  const info = [
    [
      '  the same, in-process (no node start-up)',
      `${median(eightIn).toFixed(0)} ms vs ${median(oneIn).toFixed(0)} ms`,
      median(eightIn) / median(oneIn),
    ],
  ];
  console.log(
    `\nthe store: ${mb(store)}; a full clone per site: ${mb(fullClone)} each (${mb(fullClone - checkout)} of it .git)`,
  );
  for (const [what, figures, ratio, target] of rows)
    console.log(
      `${what.padEnd(42)} ${figures.padEnd(28)} ${ratio.toFixed(2)}x  (target <= ${target}x) ${ratio <= target ? 'ok' : 'MISSED'}`,
    );
  for (const [what, figures, ratio] of info)
    console.log(`${what.padEnd(42)} ${figures.padEnd(28)} ${ratio.toFixed(2)}x`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
