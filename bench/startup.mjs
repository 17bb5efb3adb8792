#!/usr/bin/env node
// bench/startup: how fast karlstage starts, against a bare node start, in one run.
// Targets (issue 2): `karlstage --help` <= 2x and `karlstage status` (4 branch sites) <= 2.5x `node -e 0`.
// Runs each command alternately, ROUNDS times, and compares medians (robust to a noisy machine).
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { benchGitStaging } from './staging.mjs';

const here = fileURLToPath(new URL('.', import.meta.url));
const bin = join(here, '..', 'bin', 'karlstage.js');
const dist = join(here, '..', 'dist');
const ROUNDS = Number(process.env.ROUNDS ?? 25);

const { create } = await import(join(dist, 'commands', 'create.js'));

const dir = await mkdtemp(join(tmpdir(), 'ks-bench-'));
try {
  const { file, root } = await benchGitStaging(dir, {
    sites: 4,
  });
  for (const b of ['branch1', 'branch2', 'branch3', 'branch4'])
    await create({ quiet: true, config: file, branch: b });
  for (const b of ['branch1', 'branch2', 'branch3', 'branch4'])
    execFileSync(join(root, b, 'bin', 'supervisorctl'), ['shutdown'], { cwd: join(root, b) });

  const commands = {
    'node -e 0': ['-e', '0'],
    'karlstage --help': [bin, '--help'],
    'karlstage status': [bin, 'status'],
  };
  const times = Object.fromEntries(Object.keys(commands).map((k) => [k, []]));
  const once = (args) => {
    const t = performance.now();
    execFileSync(process.execPath, args, { cwd: root, stdio: 'ignore' });
    return performance.now() - t;
  };
  for (const args of Object.values(commands)) once(args); // warm the file cache
  for (let i = 0; i < ROUNDS; i++)
    for (const [name, args] of Object.entries(commands)) times[name].push(once(args));

  const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const base = median(times['node -e 0']);
  const targets = { 'karlstage --help': 2, 'karlstage status': 2.5 };
  console.log(`startup, median of ${ROUNDS} alternating runs (status over 4 branch sites)`);
  let ok = true;
  for (const name of Object.keys(commands)) {
    const m = median(times[name]);
    const ratio = m / base;
    const target = targets[name];
    const verdict = target
      ? ratio <= target
        ? `target <= ${target}x: met`
        : `target <= ${target}x: MISSED`
      : 'baseline';
    if (target && ratio > target) ok = false;
    console.log(
      `  ${name.padEnd(18)} ${m.toFixed(1).padStart(7)} ms  ${ratio.toFixed(2)}x  ${verdict}`,
    );
  }
  process.exitCode = ok ? 0 : 1;
} finally {
  await rm(dir, { recursive: true, force: true });
}
