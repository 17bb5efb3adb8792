#!/usr/bin/env node
// bench/sync: the nightly sync against the naive way, in one run, on a throwaway PostgreSQL cluster.
//   - production: BENCH_MB (default 300) MB of incompressible data (random bytea, 8 kB rows)
//   - karlstage sync of 4 branch sites vs the naive way (pg_dump | pg_restore into each branch database)
//   - karlstage sync of 4 branch sites vs 1 branch site: the cost of each extra branch vs a full restore
//   - how long each branch database was unavailable during its swap; karlstage's own peak memory
//   - pg_dump compression: -Z0, -Z1 and the default, time and size
// Targets (issue 4): 4-branch sync <= 0.4x naive; each extra branch <= 0.2x a full restore;
// (issues 19, 20): a reset of one branch site <= 0.1x a full restore; the must_not_contain scan <= 0.5x;
// unavailability < 1 s; karlstage's memory flat (the data streams through the PostgreSQL tools).
// Needs a PostgreSQL 15+ server installed (as root, initdb runs as the postgres user) and ~4x BENCH_MB of disk.
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchGitStaging, spawnKarlstage } from './staging.mjs';
import { promisify } from 'node:util';

const here = fileURLToPath(new URL('.', import.meta.url));
const dist = join(here, '..', 'dist');
const MB = Number(process.env.BENCH_MB ?? 300);
const BRANCHES = 4;
const run = promisify(execFile);

const { startCluster } = await import(join(dist, 'demo', 'pg-cluster.js'));
const { create } = await import(join(dist, 'commands', 'create.js'));

const dir = await mkdtemp(join(tmpdir(), 'ks-bench-sync-'));
const pg = await startCluster('benchpw', [
  'shared_buffers=256MB',
  'max_wal_size=4GB',
  'synchronous_commit=off',
]);
const { port, env } = pg;
const sql = async (db, q) =>
  (
    await run('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', q], {
      env: { ...process.env, ...env },
    })
  ).stdout.trim();
const timed = async (fn) => {
  const t = performance.now();
  const r = await fn();
  return { ms: performance.now() - t, r };
};

try {
  console.log(`making ${MB} MB of incompressible production data...`);
  await sql('postgres', 'CREATE DATABASE prod_osf');
  await sql(
    'prod_osf',
    'CREATE EXTENSION pgcrypto; CREATE TABLE blobs (id int PRIMARY KEY, data bytea)',
  );
  const rows = MB * 128; // 8 kB a row
  await sql(
    'prod_osf',
    `INSERT INTO blobs SELECT i, ${Array(8).fill('gen_random_bytes(1024)').join(' || ')} FROM generate_series(1, ${rows}) i`,
  );
  const size = await sql('prod_osf', "SELECT pg_size_pretty(pg_database_size('prod_osf'))");

  // A staging root with 4 branch sites serving osf; no apps, databases managed.
  const { file, root } = await benchGitStaging(dir, {
    sites: BRANCHES,
    database: `host=127.0.0.1 port=${port} user=postgres password=benchpw`,
    drop: ['start', 'restart', 'stop'],
    set: {
      // One throwaway cluster plays production and staging: the operator's written permission.
      production: `host=127.0.0.1 port=${port} user=postgres password=benchpw dbname=prod_osf\nstaging_on_production_server = yes`,
      dumps: join(dir, 'dumps'),
    },
  });
  for (let i = 1; i <= BRANCHES; i++)
    await create({ quiet: true, config: file, branch: `branch${i}`, customers: ['osf'] });

  // Naive: pg_dump | pg_restore into each branch database, one after another.
  const naiveOne = async (db) => {
    await sql('postgres', `DROP DATABASE IF EXISTS "${db}"`);
    await sql('postgres', `CREATE DATABASE "${db}"`);
    await new Promise((resolve, reject) => {
      const dump = spawn('pg_dump', ['-Fc', '-d', 'prod_osf'], {
        env: { ...process.env, ...env },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      const restore = spawn('pg_restore', ['--no-owner', '-d', db], {
        env: { ...process.env, ...env },
        stdio: ['pipe', 'inherit', 'inherit'],
      });
      dump.stdout.pipe(restore.stdin);
      restore.on('exit', (code) =>
        code === 0 ? resolve() : reject(new Error(`pg_restore exited ${code}`)),
      );
    });
  };
  console.log('naive: pg_dump | pg_restore into each of 4 branch databases...');
  const naive = await timed(async () => {
    for (let i = 1; i <= BRANCHES; i++) await naiveOne(`ks_branch${i}_osf`);
  });

  // karlstage, sampling its own memory (VmRSS of the node process) while it runs.
  const karlstage = async (args) => {
    const t = performance.now();
    const { child, done } = spawnKarlstage(root, args);
    let peak = 0;
    const sampler = setInterval(() => {
      try {
        const kb = Number(
          /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'))?.[1] ?? 0,
        );
        peak = Math.max(peak, kb);
      } catch {
        // exited
      }
    }, 20);
    const { code, out } = await done;
    clearInterval(sampler);
    if (code !== 0) throw new Error(`karlstage ${args.join(' ')} failed:\n${out}`);
    // From the summary lines ("ok  osf → branch1 (2.1 s, unavailable 70 ms)"), one per branch site.
    const swaps = [...out.matchAll(/→ branch\d+ \([^)]*unavailable (\d+) ms\)/g)].map((m) =>
      Number(m[1]),
    );
    return { ms: performance.now() - t, peakMB: peak / 1024, swaps };
  };
  console.log('karlstage sync of 1 branch site, then of 4...');
  const one = await karlstage(['sync', 'branch1']);
  const four = await karlstage(['sync', '--nightly']);
  console.log('karlstage reset of 1 branch site from the golden copy...');
  const reset = await karlstage(['reset', 'branch1']);

  // The clean-data check (issue 20) on the golden copy: every bytea value read for 2 patterns.
  const { scanCommand } = await import(join(dist, 'db', 'scan.js'));
  const { goldenName } = await import(join(dist, 'db', 'names.js'));
  const scanCmd = scanCommand(
    () => ({ ...env, PGDATABASE: goldenName('osf') }),
    ['@osf.org', '/secret-[0-9]+/'],
    'scan',
    3_600_000,
  );
  console.log('the must_not_contain scan of the golden copy...');
  const scan = await timed(
    () =>
      new Promise((resolve, reject) => {
        const child = spawn(scanCmd.program, scanCmd.args, {
          env: { ...process.env, ...scanCmd.env() },
          stdio: ['pipe', 'pipe', 'inherit'],
        });
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        child.stdin.end(scanCmd.input());
        child.on('exit', (code) =>
          code === 0 ? resolve(out) : reject(new Error(`scan: ${code}`)),
        );
      }),
  );

  // Compression of the dump, on this incompressible data.
  const comp = [];
  for (const [label, z] of [
    ['-Z0', ['-Z0']],
    ['-Z1', ['-Z1']],
    ['default', []],
  ]) {
    const out = join(dir, `z${label}`);
    const t = await timed(() =>
      run('pg_dump', ['-Fd', '-j', '2', ...z, '-f', out, '-d', 'prod_osf'], {
        env: { ...process.env, ...env },
      }),
    );
    const bytes = Number((await run('du', ['-sb', out])).stdout.split('\t')[0]);
    comp.push({ label, ms: t.ms, mb: bytes / 1048576 });
    await rm(out, { recursive: true, force: true });
  }

  const fullRestore = naive.ms / BRANCHES;
  const extra = (four.ms - one.ms) / (BRANCHES - 1);
  const fmt = (ms) => `${(ms / 1000).toFixed(1)} s`;
  const verdict = (v, t) => (v <= t ? `target <= ${t}: met` : `target <= ${t}: MISSED`);
  console.log(`\nsync, production ${size} (${MB} MB asked), ${BRANCHES} branch sites`);
  console.log(
    `  naive pg_dump | pg_restore x ${BRANCHES}   ${fmt(naive.ms)}   (one full restore ~ ${fmt(fullRestore)})`,
  );
  console.log(`  karlstage sync, 1 branch site      ${fmt(one.ms)}`);
  console.log(`  karlstage sync, ${BRANCHES} branch sites     ${fmt(four.ms)}`);
  console.log(
    `  ${BRANCHES}-branch sync vs naive: ${(four.ms / naive.ms).toFixed(2)}x (${verdict(four.ms / naive.ms, 0.4)})`,
  );
  console.log(
    `  each extra branch vs a full restore: ${(extra / fullRestore).toFixed(2)}x (${verdict(extra / fullRestore, 0.2)})`,
  );
  console.log(
    `  unavailable during each swap: ${four.swaps.join(', ')} ms (the longest vs 1 s: ${verdict(Math.max(...four.swaps) / 1000, 1)})`,
  );
  console.log(
    `  reset of 1 branch site vs a full restore: ${fmt(reset.ms)} vs ${fmt(fullRestore)}, ${(reset.ms / fullRestore).toFixed(2)}x (${verdict(reset.ms / fullRestore, 0.1)})`,
  );
  console.log(
    `  must_not_contain scan (2 patterns) vs a full restore: ${fmt(scan.ms)} vs ${fmt(fullRestore)}, ${(scan.ms / fullRestore).toFixed(2)}x (${verdict(scan.ms / fullRestore, 0.5)})`,
  );
  console.log(
    `  karlstage's peak memory: ${one.peakMB.toFixed(0)} MB (1 site), ${four.peakMB.toFixed(0)} MB (${BRANCHES} sites)`,
  );
  console.log('  pg_dump --format=directory --jobs=2 compression:');
  for (const c of comp)
    console.log(
      `    ${c.label.padEnd(8)} ${fmt(c.ms).padStart(7)}  ${c.mb.toFixed(0).padStart(5)} MB`,
    );
} finally {
  await pg.stop('immediate');
  await rm(dir, { recursive: true, force: true });
}
