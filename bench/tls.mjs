#!/usr/bin/env node
// bench/tls: what the lock on the one TLS host costs, side by side in one run (issue 29). A real
// nginx (the demo's: unprivileged workers, one per core), a branch site of the sample app.
//  1. requests/s to a branch site through the locked host with a login (a generated password, its
//     fast hash), against the same site with [access] public = yes: target >= 0.5x;
//  2. a logged-in visitor's p99 latency while another address sends wrong passwords (for a user
//     whose password was chosen: the slow hash) as fast as it can, against the p99 without that
//     flood: target <= 2x; and, for scale, while it sends requests without any login;
//  3. proxied throughput (public = yes) against the app directly: recorded.
// wrk (Debian) loads; the visitor is a Node client bound to 127.0.0.2 (wrk cannot choose its
// address), so the limit per address sees two addresses. Medians of ROUNDS (3) alternating runs.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { Agent, request } from 'node:https';
import { Buffer } from 'node:buffer';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchTlsStaging } from './staging.mjs';

const dist = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'dist');
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 5);
const HOST = 'karltest.example.com';

const { create } = await import(join(dist, 'commands', 'create.js'));
const { accessAdd } = await import(join(dist, 'commands', 'access.js'));
const { routes } = await import(join(dist, 'commands', 'routes.js'));
const { readState } = await import(join(dist, 'model', 'state.js'));

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const basic = (user) => `Basic ${Buffer.from(user).toString('base64')}`;
process.env.PATH = `${process.env.PATH}:/usr/sbin:/sbin`;

/** wrk for SECONDS against url: { rps, p99 (ms), statuses of non-2xx } */
function wrk(url, { auth, connections = 16, seconds = SECONDS, hostHeader } = {}) {
  const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--latency'];
  if (hostHeader) args.push('-H', `Host: ${hostHeader}`);
  if (auth) args.push('-H', `Authorization: ${auth}`);
  const text = execFileSync('wrk', [...args, url], { encoding: 'utf8' });
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(text)?.[1] ?? 0);
  const bad = Number(/Non-2xx or 3xx responses: (\d+)/.exec(text)?.[1] ?? 0);
  return { rps, bad, text };
}

/** Start wrk in the background (a flood), for `seconds`. */
function flood(url, auth, seconds) {
  const args = ['-t1', '-c32', `-d${seconds}s`, '-H', `Host: ${HOST}`];
  if (auth) args.push('-H', `Authorization: ${auth}`);
  const child = spawn('wrk', [...args, url], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  return new Promise((resolve) =>
    child.on('exit', () => resolve(Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? 0))),
  );
}

/** A logged-in visitor from 127.0.0.2: 2 keep-alive connections, for `ms`; p99 latency in ms. */
async function visitor(port, auth, ms) {
  const agent = new Agent({ keepAlive: true, maxSockets: 2, localAddress: '127.0.0.2' });
  const latencies = [];
  const statuses = new Map();
  const deadline = Date.now() + ms;
  const one = (tries = 0) =>
    new Promise((resolve, reject) => {
      const t = process.hrtime.bigint();
      const req = request(
        {
          host: '127.0.0.1',
          port,
          path: '/branch1/osf/',
          agent,
          servername: HOST,
          rejectUnauthorized: false,
          headers: { host: `${HOST}:${port}`, authorization: auth },
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            latencies.push(Number(process.hrtime.bigint() - t) / 1e6);
            statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
            resolve();
          });
        },
      );
      // nginx closes a kept-open connection after keepalive_requests, and the old workers of a
      // reload close theirs: ask again on a new one (a few times at most).
      req.on('error', (e) =>
        e.code === 'ECONNRESET' && tries < 3 ? one(tries + 1).then(resolve, reject) : reject(e),
      );
      req.end();
    });
  const loop = async () => {
    while (Date.now() < deadline) await one();
  };
  await Promise.all([loop(), loop()]);
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return { p99: latencies[Math.floor(latencies.length * 0.99)], n: latencies.length, statuses };
}

const dir = await mkdtemp(join(tmpdir(), 'ks-bench-tls-'));
await chmod(dir, 0o711); // nginx's unprivileged workers pass through to the site list and users
let nginx;
let root;
try {
  const staging = await benchTlsStaging(dir, { host: HOST, sites: 2 });
  nginx = staging.nginx;
  root = staging.root;
  const g = { quiet: true, config: staging.file };
  // A user with a chosen password (sha512-crypt, as every user had before) and a generated one.
  await accessAdd({ ...g, user: 'chosen', password: 'a-password-people-pick-7' });
  const made = await accessAdd({ ...g, user: 'visitor' });
  const visitorAuth = basic(`visitor:${made.password}`);
  await create({ ...g, branch: 'branch1' });
  const app = (await readState(root)).branches.branch1.port;
  const site = `https://127.0.0.1:${nginx.httpsPort}/branch1/osf/`;
  const hostHeader = `${HOST}:${nginx.httpsPort}`;
  const ini = await readFile(staging.file, 'utf8');
  const setPublic = async (yes) => {
    await writeFile(staging.file, ini.replace('public = no', `public = ${yes ? 'yes' : 'no'}`));
    await routes(g);
  };

  const version = spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr.trim();
  console.log(
    `bench/tls: ${version}, workers as ${nginx.workers.user}, ${SECONDS} s per run, wrk -t1 -c16, median of ${ROUNDS} alternating rounds`,
  );
  const t = { locked: [], public: [], direct: [], nginx: [], quiet: [], wrong: [], anonymous: [] };
  const flooded = { wrong: [], anonymous: [] };
  for (let round = 0; round < ROUNDS; round++) {
    await setPublic(false);
    const locked = wrk(site, { auth: visitorAuth, hostHeader });
    if (locked.bad)
      throw new Error(`the locked host answered ${locked.bad} errors:\n${locked.text}`);
    t.locked.push(locked.rps);
    await setPublic(true);
    t.public.push(wrk(site, { hostHeader }).rps);
    t.direct.push(wrk(`http://127.0.0.1:${app}/osf/`).rps);
    // nginx and TLS alone (no app): what the proxy could give if the app were not there.
    t.nginx.push(wrk(`https://127.0.0.1:${nginx.httpsPort}/robots.txt`, { hostHeader }).rps);
    await setPublic(false);
    // The visitor alone; with wrong passwords for "chosen" from 127.0.0.1; with no login at all.
    const ms = SECONDS * 1000;
    t.quiet.push((await visitor(nginx.httpsPort, visitorAuth, ms)).p99);
    for (const [kind, auth] of [
      ['wrong', basic('chosen:not-the-password')],
      ['anonymous', undefined],
    ]) {
      const f = flood(site, auth, SECONDS + 2);
      await new Promise((r) => setTimeout(r, 1000)); // the flood under way (and past its burst)
      const v = await visitor(nginx.httpsPort, visitorAuth, ms);
      flooded[kind].push(await f);
      if ((v.statuses.get(200) ?? 0) !== v.n)
        throw new Error(`the visitor got ${JSON.stringify([...v.statuses])}`);
      t[kind].push(v.p99);
    }
  }
  const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)]));
  const check = (label, ratio, target, atLeast) => {
    const met = atLeast ? ratio >= target : ratio <= target;
    return `${label} ${ratio.toFixed(2)}x (target ${atLeast ? '>=' : '<='} ${target}x: ${met ? 'met' : 'MISSED'})`;
  };
  const rps = (x) => `${Math.round(x)} req/s`;
  console.log(`  locked, logged in (generated password): ${rps(m.locked)}`);
  console.log(`  public = yes, no login:                 ${rps(m.public)}`);
  console.log(`  the app directly (no TLS, no nginx):    ${rps(m.direct)}`);
  console.log(`  nginx alone (TLS, robots.txt, no app): ${rps(m.nginx)}`);
  console.log(`  ${check('logged in / public', m.locked / m.public, 0.5, true)}`);
  console.log(`  proxied (public) / the app directly: ${(m.public / m.direct).toFixed(2)}x`);
  console.log(
    `  visitor p99 alone ${m.quiet.toFixed(2)} ms; while another address sends wrong passwords (${rps(median(flooded.wrong))}: 100 at once, then held to 10 a second) ${m.wrong.toFixed(2)} ms; while it sends no login (${rps(median(flooded.anonymous))}, all 401) ${m.anonymous.toFixed(2)} ms`,
  );
  console.log(`  ${check('p99 under the wrong-password flood / alone', m.wrong / m.quiet, 2)}`);
  console.log(`  p99 under a flood without login / alone: ${(m.anonymous / m.quiet).toFixed(2)}x`);
} finally {
  if (root)
    execFileSync(join(root, 'branch1', 'bin', 'supervisorctl'), ['shutdown'], {
      cwd: join(root, 'branch1'),
      stdio: 'ignore',
    });
  await nginx?.stop();
  await rm(dir, { recursive: true, force: true });
}
