#!/usr/bin/env node
// bench/poll: a no-change `karlstage poll` of 8 branch sites, in one run, against
//   (a) the naive loop: `svn update` / `git fetch` in each branch site, one after another,
//   (b) a poll of 1 branch site, and
//   (c) a bare node start (`node -e 0`).
// Targets: 8-branch poll <= 1.5x a 1-branch poll and <= 0.5x the naive loop (issue 3); the whole
// command <= 2x node -e 0 on loopback, for git and for svn (issue 17).
// svn is served by a real svnserve (svn://), git by a real `git daemon` (git://), both on
// 127.0.0.1. Each is measured twice: directly, and through a proxy that delays every chunk by
// LATENCY_MS each way (default 15 ms: a 30 ms round trip, as to a repository in another data
// centre). On bare loopback 8 `git fetch`es cost less than one node start, so the comparison
// with the naive loop only means something with a network in between.
import { execFile, execFileSync, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchStagingRoot } from './staging.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const bin = join(here, '..', 'bin', 'karlstage.js');
const dist = join(here, '..', 'dist');
const ROUNDS = Number(process.env.ROUNDS ?? 15);
const LATENCY_MS = Number(process.env.LATENCY_MS ?? 15);
const BRANCHES = 8;

const { makeGitSample, makeSvnSample, makeSkeleton } = await import(
  join(dist, 'demo', 'sample-repos.js')
);
const { freeBasePort } = await import(join(dist, 'demo', 'ports.js'));
const { create } = await import(join(dist, 'commands', 'create.js'));

const waitForPort = (port) =>
  new Promise((resolve, reject) => {
    const deadline = Date.now() + 5000;
    const attempt = () => {
      const s = createConnection({ port, host: '127.0.0.1' });
      s.once('connect', () => (s.destroy(), resolve()));
      s.once(
        'error',
        () => (
          s.destroy(),
          Date.now() > deadline
            ? reject(new Error('svnserve did not start'))
            : setTimeout(attempt, 50)
        ),
      );
    };
    attempt();
  });

/** A TCP proxy on 127.0.0.1 that forwards each chunk after `delay` ms, both ways. */
function latencyProxy(target, delay) {
  const server = createServer((client) => {
    const upstream = createConnection({ port: target, host: '127.0.0.1' });
    const pipe = (from, to) => {
      from.on('data', (d) => setTimeout(() => to.write(d), delay));
      from.on('end', () => setTimeout(() => to.end(), delay));
      from.on('error', () => to.destroy());
    };
    pipe(client, upstream);
    pipe(upstream, client);
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve({ server, port: server.address().port })),
  );
}

const dir = await mkdtemp(join(tmpdir(), 'ks-bench-poll-'));
const servers = [];
try {
  const skeleton = await makeSkeleton(join(dir, 'skeleton'));
  const git = await makeGitSample(join(dir, 'git'));
  const svn = await makeSvnSample(join(dir, 'svn'));
  const svnPort = (await freeBasePort(1)) + 1;
  servers.push(
    spawn(
      'svnserve',
      [
        '--daemon',
        '--foreground',
        '--root',
        join(dir, 'svn'),
        '--listen-host',
        '127.0.0.1',
        '--listen-port',
        String(svnPort),
      ],
      { stdio: 'ignore' },
    ),
  );
  const gitPort = (await freeBasePort(1)) + 1;
  servers.push(
    spawn(
      'git',
      [
        'daemon',
        '--reuseaddr',
        '--export-all',
        `--base-path=${join(dir, 'git')}`,
        '--listen=127.0.0.1',
        `--port=${gitPort}`,
        join(dir, 'git'),
      ],
      { stdio: 'ignore' },
    ),
  );
  await waitForPort(svnPort);
  await waitForPort(gitPort);
  const slowSvn = await latencyProxy(svnPort, LATENCY_MS);
  const slowGit = await latencyProxy(gitPort, LATENCY_MS);
  servers.push(slowSvn.server, slowGit.server);

  // One staging root per VCS and network; the same repositories behind each.
  for (let i = 1; i <= BRANCHES; i++) {
    execFileSync('svn', [
      'copy',
      '-q',
      '-m',
      `b${i}`,
      `${svn.url}/trunk`,
      `${svn.url}/branches/b${i}`,
    ]);
    await git.commit(`b${i}`, { [`b${i}.txt`]: `${i}\n` }, `branch b${i}`);
  }
  const setups = [
    ['svn', 'loopback', `svn://127.0.0.1:${svnPort}/svnrepo`],
    ['git', 'loopback', `git://127.0.0.1:${gitPort}/app.git`],
    ['svn', `${2 * LATENCY_MS} ms round trip`, `svn://127.0.0.1:${slowSvn.port}/svnrepo`],
    ['git', `${2 * LATENCY_MS} ms round trip`, `git://127.0.0.1:${slowGit.port}/app.git`],
  ];
  const roots = [];
  for (const [vcs, network, url] of setups) {
    const root = join(dir, `staging-${vcs}-${roots.length}`);
    // No apps needed here: build only.
    const file = await benchStagingRoot({
      root,
      vcs,
      url,
      skeleton,
      defaultRef: vcs === 'svn' ? 'trunk' : 'main',
      sites: BRANCHES,
      drop: ['start', 'restart', 'stop', 'migrate'],
    });
    for (let i = 1; i <= BRANCHES; i++)
      await create({
        quiet: true,
        config: file,
        branch: `branch${i}`,
        ref: vcs === 'svn' ? `branches/b${i}` : `b${i}`,
      });
    roots.push({ vcs, network, root, url });
  }

  // Async, so that the latency proxy in this process keeps forwarding meanwhile.
  const run = promisify(execFile);
  const node = async (args, cwd) => {
    const t = performance.now();
    try {
      await run(process.execPath, args, { cwd });
    } catch (e) {
      throw new Error(`${args.join(' ')} failed in ${cwd}:\n${e.stderr}`, { cause: e });
    }
    return performance.now() - t;
  };
  // The naive way: each site asks the server itself (a clone per site); karlstage's own sites
  // fetch from the shared store, so the naive loop names the server's URL.
  const naive = async (vcs, root, url) => {
    const t = performance.now();
    for (let i = 1; i <= BRANCHES; i++) {
      const src = join(root, `branch${i}`, 'src', 'karl');
      if (vcs === 'svn') await run('svn', ['update', '-q', '--non-interactive', src]);
      else await run('git', ['-C', src, 'fetch', '-q', url]);
    }
    return performance.now() - t;
  };
  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

  let ok = true;
  const check = (label, ratio, target) => {
    const met = ratio <= target;
    ok &&= met;
    return `${label} ${ratio.toFixed(2)}x (target <= ${target}x: ${met ? 'met' : 'MISSED'})`;
  };
  console.log(
    `poll, ${BRANCHES} branch sites, no change upstream; median of ${ROUNDS} alternating runs`,
  );
  for (const { vcs, network, root, url } of roots) {
    const t = { base: [], all: [], one: [], naive: [] };
    await node([bin, 'poll'], root); // warm up
    for (let r = 0; r < ROUNDS; r++) {
      t.base.push(await node(['-e', '0'], root));
      t.all.push(await node([bin, 'poll'], root));
      t.one.push(await node([bin, 'poll', 'branch1'], root));
      t.naive.push(await naive(vcs, root, url));
    }
    const m = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)]));
    console.log(`${vcs}, ${network}:`);
    console.log(`  node -e 0                 ${m.base.toFixed(0).padStart(6)} ms`);
    console.log(`  karlstage poll (1 site)   ${m.one.toFixed(0).padStart(6)} ms`);
    console.log(`  karlstage poll (${BRANCHES} sites)  ${m.all.toFixed(0).padStart(6)} ms`);
    console.log(
      `  naive ${vcs === 'svn' ? 'svn update' : 'git fetch '} loop      ${m.naive.toFixed(0).padStart(6)} ms`,
    );
    console.log(`  ${check(`${BRANCHES} sites vs 1 site:`, m.all / m.one, 1.5)}`);
    if (network === 'loopback')
      console.log(
        `  ${BRANCHES} sites vs naive loop: ${(m.all / m.naive).toFixed(2)}x (no network: not judged)`,
      );
    else console.log(`  ${check(`${BRANCHES} sites vs naive loop:`, m.all / m.naive, 0.5)}`);
    // karlstage's own overhead is judged without a network; with one, the round trips are the network's.
    if (network === 'loopback')
      console.log(`  ${check(`${BRANCHES} sites vs node -e 0:`, m.all / m.base, 2)}`);
    else
      console.log(
        `  ${BRANCHES} sites vs node -e 0: ${(m.all / m.base).toFixed(2)}x (includes the network: not judged)`,
      );
  }
  process.exitCode = ok ? 0 : 1;
} finally {
  for (const s of servers) {
    if (s.kill) s.kill();
    else s.close();
  }
  await rm(dir, { recursive: true, force: true });
}
