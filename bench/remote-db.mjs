#!/usr/bin/env node
// bench/remote-db: what the network between karlstage and its database servers costs.
//   - production (karl03) and staging (karl05) are two throwaway clusters, each reached through
//     a delaying TCP relay (bench/relay.mjs): 0 ms ("loopback") or 10 ms each way (a 20 ms round
//     trip), alternated in one run; the relays count connections and round trips
//   - a nightly sync of 4 branch sites (dump, restore, sanitize, scan, clone, swap, migrate) of
//     BENCH_MB (default 300, as bench/sync.mjs) MB of production data, and a create of one more site with its
//     database, BENCH_REPS (default 3) times each way; medians
// Target (issue 30): the 4-site sync at 20 ms <= 1.2x the same sync on loopback.
// Needs a PostgreSQL 15+ server installed (as root, initdb runs as the postgres user).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startRelay } from './relay.mjs';
import { benchGitStaging, spawnKarlstage } from './staging.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const dist = join(here, '..', 'dist');
const MB = Number(process.env.BENCH_MB ?? 300);
const REPS = Number(process.env.BENCH_REPS ?? 3);
const SITES = 4;
const DELAY = 10; // ms each way: a 20 ms round trip
const run = promisify(execFile);

const { startCluster } = await import(join(dist, 'demo', 'pg-cluster.js'));

const dir = await mkdtemp(join(tmpdir(), 'ks-bench-remote-'));
const settings = ['shared_buffers=256MB', 'max_wal_size=4GB', 'synchronous_commit=off'];
const [production, staging] = [
  await startCluster('benchpw', settings),
  await startCluster('benchpw', settings),
];
const relays = [];
const sql = async (pg, db, q) =>
  (
    await run('psql', ['-X', '-A', '-t', '-v', 'ON_ERROR_STOP=1', '-d', db, '-c', q], {
      env: { ...process.env, ...pg.env },
    })
  ).stdout.trim();
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

try {
  console.log(`making ${MB} MB of production data (and 1000 people's addresses to sanitize)...`);
  await sql(production, 'postgres', 'CREATE DATABASE prod_osf');
  await sql(
    production,
    'prod_osf',
    'CREATE EXTENSION pgcrypto; CREATE TABLE blobs (id int PRIMARY KEY, data bytea); CREATE TABLE docs (id int PRIMARY KEY, owner_email text)',
  );
  await sql(
    production,
    'prod_osf',
    `INSERT INTO blobs SELECT i, ${Array(8).fill('gen_random_bytes(1024)').join(' || ')} FROM generate_series(1, ${MB * 128}) i; INSERT INTO docs SELECT i, 'person' || i || '@real.example.org' FROM generate_series(1, 1000) i`,
  );
  const size = await sql(
    production,
    'prod_osf',
    "SELECT pg_size_pretty(pg_database_size('prod_osf'))",
  );

  const toProduction = await startRelay({ host: '127.0.0.1', port: production.port });
  const toStaging = await startRelay({ host: '127.0.0.1', port: staging.port });
  relays.push(toProduction, toStaging);
  const sanitize = join(dir, 'sanitize.sql');
  await writeFile(sanitize, "UPDATE docs SET owner_email = 'tester@staging.invalid';\n");
  const { root } = await benchGitStaging(dir, {
    sites: SITES + 1,
    database: `host=127.0.0.1 port=${toStaging.port} user=postgres password=benchpw`,
    drop: ['start', 'restart', 'stop'],
    set: {
      production: `host=127.0.0.1 port=${toProduction.port} user=postgres password=benchpw dbname=prod_osf\nsanitize = ${sanitize}\nmust_not_contain = @real.example.org`,
      dumps: join(dir, 'dumps'),
    },
  });

  const karlstage = async (args) => {
    for (const r of relays) r.reset();
    const t = performance.now();
    const { code, out } = await spawnKarlstage(root, args).done;
    if (code !== 0) throw new Error(`karlstage ${args.join(' ')} failed:\n${out}`);
    if (process.env.BENCH_TRACE)
      for (const [name, r] of [
        ['staging', toStaging],
        ['production', toProduction],
      ])
        for (const c of r.log)
          console.log(`  ${args[0]} ${name}: ${c.turns} turns, ${JSON.stringify(c.startup)}`);
    return {
      ms: performance.now() - t,
      staging: { rt: toStaging.roundTrips(), conns: toStaging.stats.connections },
      production: { rt: toProduction.roundTrips(), conns: toProduction.stats.connections },
    };
  };

  console.log(`${SITES} branch sites, and a first sync...`);
  for (let i = 1; i <= SITES; i++) await karlstage(['create', `branch${i}`]);
  await karlstage(['sync', '--nightly']);

  const results = { 0: { sync: [], create: [] }, [DELAY]: { sync: [], create: [] } };
  for (let rep = 0; rep < REPS; rep++)
    // Alternate which goes first: the machine's other load drifts.
    for (const delay of rep % 2 ? [DELAY, 0] : [0, DELAY]) {
      console.log(`run ${rep + 1}/${REPS}, ${delay * 2} ms round trip...`);
      for (const r of relays) r.setDelay(delay);
      results[delay].sync.push(await karlstage(['sync', '--nightly']));
      results[delay].create.push(await karlstage(['create', `branch${SITES + 1}`]));
      for (const r of relays) r.setDelay(0);
      await karlstage(['destroy', `branch${SITES + 1}`, '--yes']);
    }

  const fmt = (ms) => `${(ms / 1000).toFixed(2)} s`;
  const rts = (r) =>
    `${r.staging.rt} round trips to staging (${r.staging.conns} connections), ${r.production.rt} to production (${r.production.conns})`;
  console.log(
    `\nremote database servers: production ${size} (${MB} MB asked), ${SITES} branch sites, ${REPS} runs, medians`,
  );
  for (const what of ['sync', 'create']) {
    const [near, far] = [results[0][what], results[DELAY][what]];
    const [a, b] = [median(near.map((r) => r.ms)), median(far.map((r) => r.ms))];
    const label = what === 'sync' ? `sync --nightly, ${SITES} sites` : 'create, 1 site';
    console.log(`  ${label}`);
    console.log(`    loopback       ${fmt(a)}`);
    console.log(
      `    20 ms          ${fmt(b)}   ${(b / a).toFixed(2)}x${what === 'sync' ? ` (target <= 1.2: ${b / a <= 1.2 ? 'met' : 'MISSED'})` : ''}`,
    );
    console.log(`    ${rts(far[0])}`);
    console.log(
      `    (${fmt(b - a)} more at 20 ms: ${((b - a) / 20).toFixed(0)} round trips' worth)`,
    );
  }
} finally {
  for (const r of relays) await r.close();
  await production.stop('immediate');
  await staging.stop('immediate');
  await rm(dir, { recursive: true, force: true });
}
