#!/usr/bin/env node
// bench/sites: what keeping branch sites up costs and saves, side by side in one run (issue 26).
// A real nginx as the one TLS host (the demo's), 8 branch sites of the demo's sample app.
//  1. memory: 8 sites running, against 1 running and 7 asleep: an asleep site costs nothing
//     (target: <= 1% of a running site's resident memory); the wake service's own, once;
//  2. wake: the first logged-in request for a sleeping site through the TLS host until its 200,
//     against the start step alone making the app answer (target <= 1.5x);
//  3. `karlstage watch` with nothing to do, 8 sites, against `node -e 0` (target <= 2.5x);
//  4. an awake site through the TLS host with the activity log and the wake fallback, against
//     the same routes without them (target: no slower; wrk, requests/s).
// Medians of ROUNDS alternating runs.
import { Buffer } from 'node:buffer';
import { execFileSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchTlsStaging } from './staging.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const dist = join(here, '..', 'dist');
const bin = join(here, '..', 'bin', 'karlstage.js');
const ROUNDS = Number(process.env.ROUNDS ?? 7);
const SITES = 8;
const HOST = 'karltest.example.com';
process.env.PATH = `${process.env.PATH}:/usr/sbin:/sbin`;

const { create } = await import(join(dist, 'commands', 'create.js'));
const { accessAdd } = await import(join(dist, 'commands', 'access.js'));
const { runControl } = await import(join(dist, 'commands', 'run-control.js'));
const { watch } = await import(join(dist, 'commands', 'watch.js'));
const { routes } = await import(join(dist, 'commands', 'routes.js'));
const { readState } = await import(join(dist, 'model', 'state.js'));
const { memoryOfListeners } = await import(join(dist, 'core', 'listeners.js'));
const { waitUntilAnswering } = await import(join(dist, 'core', 'http-probe.js'));
const { stepArgv, stepEnv } = await import(join(dist, 'model', 'steps.js'));
const { loadConfig } = await import(join(dist, 'config', 'config.js'));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mb = (bytes) => `${(bytes / 1024 / 1024).toFixed(1)} MB`;
const verdict = (ratio, target, atMost = true) =>
  `${ratio.toFixed(3)}x (target ${atMost ? '<=' : '>='} ${target}x: ${(atMost ? ratio <= target : ratio >= target) ? 'met' : 'MISSED'})`;

/** One GET through the TLS host, as a logged-in visitor; resolves with the status. */
function get(port, path, auth) {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path,
        servername: HOST,
        rejectUnauthorized: false,
        headers: { host: `${HOST}:${port}`, authorization: auth },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode));
      },
    );
    req.on('error', reject);
    req.end();
  });
}

/** requests/s of wrk for 4 s against a branch site, logged in. */
function wrk(url, auth) {
  const text = execFileSync(
    'wrk',
    ['-t1', '-c16', '-d4s', '-H', `Host: ${HOST}`, '-H', `Authorization: ${auth}`, url],
    { encoding: 'utf8' },
  );
  if (/Non-2xx/.test(text)) throw new Error(`errors under load:\n${text}`);
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0);
}

const resident = async (pid) =>
  Number(/^VmRSS:\s+(\d+)/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

const dir = await mkdtemp(join(tmpdir(), 'ks-bench-sites-'));
await chmod(dir, 0o711);
let nginx;
let root;
try {
  const staging = await benchTlsStaging(dir, { host: HOST, sites: SITES });
  nginx = staging.nginx;
  root = staging.root;
  // A wake answers the visitor as soon as the app does and records the start after it: a
  // command right after it may wait a moment for the site's lock.
  const g = { quiet: true, config: staging.file, wait: 30 };
  const made = await accessAdd({ ...g, user: 'visitor' });
  const auth = `Basic ${Buffer.from(`visitor:${made.password}`).toString('base64')}`;
  const names = Array.from({ length: SITES }, (_, i) => `branch${i + 1}`);
  for (const branch of names) await create({ ...g, branch });
  await watch(g); // the wake service
  const state = await readState(root);
  const ports = names.map((n) => state.branches[n].port);
  const memory = async () => {
    const m = await memoryOfListeners(ports);
    return names.map((_, i) => m.get(ports[i])?.bytes ?? 0);
  };
  console.log(`bench/sites: ${SITES} branch sites of the sample app, median of ${ROUNDS} rounds`);

  // 1. Memory.
  const all = await memory();
  await runControl('sleep', { ...g, branches: names.slice(1) });
  const one = await memory();
  const running = all[0];
  const asleep = (one.reduce((a, b) => a + b, 0) - one[0]) / (SITES - 1);
  const wakePid = JSON.parse(
    await readFile(join(root, '.karlstage', 'locks', 'wake-service.lock'), 'utf8'),
  ).pid;
  console.log(
    `  memory, ${SITES} running: ${mb(all.reduce((a, b) => a + b, 0))}; 1 running and ${SITES - 1} asleep: ${mb(one.reduce((a, b) => a + b, 0))}`,
  );
  console.log(
    `  an asleep site / a running one (${mb(running)}): ${verdict(asleep / running, 0.01)}; the wake service, once: ${mb(await resident(wakePid))}`,
  );

  // 2. Wake, against the start step alone.
  const cfg = loadConfig(staging.file);
  const site = state.branches.branch2;
  const argv = stepArgv(cfg, 'start', join(root, 'branch2'));
  const wakeMs = [];
  const startMs = [];
  for (let i = 0; i < ROUNDS; i++) {
    await runControl('sleep', { ...g, branches: ['branch2'] });
    let t = performance.now();
    const status = await get(nginx.httpsPort, '/branch2/osf/', auth);
    if (status !== 200) throw new Error(`the wake answered ${status}`);
    wakeMs.push(performance.now() - t);
    await runControl('sleep', { ...g, branches: ['branch2'] });
    t = performance.now();
    execFileSync(argv[0], argv.slice(1), {
      cwd: join(root, 'branch2'),
      env: { ...process.env, ...stepEnv(cfg, site, site.built?.revision) },
      stdio: 'ignore',
    });
    if (!(await waitUntilAnswering(site.port, 30_000))) throw new Error('the app did not answer');
    startMs.push(performance.now() - t);
  }
  console.log(
    `  wake through the TLS host ${median(wakeMs).toFixed(0)} ms, the start step alone ${median(startMs).toFixed(0)} ms: ${verdict(median(wakeMs) / median(startMs), 1.5)}`,
  );

  // 3. watch with nothing to do (every site running), against node -e 0.
  await runControl('start', { ...g, branches: names });
  const once = (args) => {
    const t = performance.now();
    execFileSync(process.execPath, args, { cwd: root, stdio: 'ignore' });
    return performance.now() - t;
  };
  const bare = [];
  const watched = [];
  once([bin, 'watch']);
  for (let i = 0; i < ROUNDS * 2; i++) {
    bare.push(once(['-e', '0']));
    watched.push(once([bin, 'watch']));
  }
  const stateAfter = await readFile(join(root, '.karlstage', 'state.json'), 'utf8');
  if (stateAfter !== JSON.stringify(await readState(root), null, 2) + '\n')
    throw new Error('state.json is not what was read');
  console.log(
    `  watch, nothing to do, ${SITES} sites ${median(watched).toFixed(0)} ms, node -e 0 ${median(bare).toFixed(0)} ms: ${verdict(median(watched) / median(bare), 2.5)}`,
  );

  // 4. An awake site through the TLS host: today's routes against the same without activity
  // log and wake fallback.
  const url = `https://127.0.0.1:${nginx.httpsPort}/branch1/osf/`;
  const ours = await readFile(nginx.conf, 'utf8');
  const before = ours
    .split('\n')
    .filter((l) => !/ks_activity buffer|recursive_error_pages on|= @ks_wake;/.test(l))
    .join('\n');
  const reload = (text) => {
    return writeFile(nginx.conf, text).then(() =>
      execFileSync(nginx.reload.split(' ')[0], nginx.reload.split(' ').slice(1), {
        stdio: 'ignore',
      }),
    );
  };
  const rps = { ours: [], before: [] };
  for (let i = 0; i < Math.max(3, Math.floor(ROUNDS / 2)); i++) {
    await reload(before);
    await new Promise((r) => setTimeout(r, 500)); // the old workers finish
    rps.before.push(wrk(url, auth));
    await reload(ours);
    await new Promise((r) => setTimeout(r, 500));
    rps.ours.push(wrk(url, auth));
  }
  await routes(g);
  console.log(
    `  an awake site through the TLS host ${Math.round(median(rps.ours))} req/s, without activity log and wake fallback ${Math.round(median(rps.before))} req/s: ${verdict(median(rps.ours) / median(rps.before), 0.95, false)}`,
  );
} finally {
  if (root) {
    const state = await readState(root).catch(() => ({ branches: {} }));
    for (const b of Object.keys(state.branches))
      try {
        execFileSync(join(root, b, 'bin', 'supervisorctl'), ['shutdown'], {
          cwd: join(root, b),
          stdio: 'ignore',
        });
      } catch {
        // stopped already
      }
    const lock = await readFile(join(root, '.karlstage', 'locks', 'wake-service.lock'), 'utf8')
      .then((t) => JSON.parse(t).pid)
      .catch(() => undefined);
    if (lock) process.kill(lock, 'SIGTERM');
  }
  await nginx?.stop();
  await rm(dir, { recursive: true, force: true });
}
