import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Config } from '../core/config.js';
import { run } from '../core/runner.js';

/**
 * Blobs are written once and never changed, so they are copied once per
 * customer (rsync from production into a local mirror) and hard-linked into
 * each branch site (cp -al): a branch's copy costs no disk and almost no time.
 */
export const mirrorOf = (cfg: Config, customer: string) => join(cfg.sync.files, customer);

/** rsync production_files (a local path or host:path, read only) into the customer's mirror. */
export async function mirrorFiles(
  cfg: Config,
  customer: string,
  source: string,
  log: string,
): Promise<void> {
  const mirror = mirrorOf(cfg, customer);
  await mkdir(mirror, { recursive: true });
  const from = source.endsWith('/') ? source : `${source}/`;
  await run(
    'rsync',
    [
      '--archive',
      '--delete',
      '--partial-dir=.rsync-partial',
      '-e',
      'ssh -o BatchMode=yes',
      '--',
      from,
      `${mirror}/`,
    ],
    {
      step: `${customer}: copy the files`,
      log,
      timeoutMs: cfg.deployment.timeout * 1000,
    },
  );
}

/** Hard-link the mirror into the branch site under a temporary name, then swap it in by rename. */
export async function linkFiles(
  cfg: Config,
  branch: string,
  customer: string,
  log: string,
): Promise<void> {
  const target = join(cfg.root, branch, cfg.deployment.blobs, customer);
  const fresh = `${target}.karlstage-new`;
  const old = `${target}.karlstage-old`;
  await rm(fresh, { recursive: true, force: true });
  await mkdir(dirname(target), { recursive: true });
  await run('cp', ['-al', '--', mirrorOf(cfg, customer), fresh], {
    step: `${branch}: link the files`,
    log,
    timeoutMs: cfg.deployment.timeout * 1000,
  });
  await rm(old, { recursive: true, force: true });
  if (existsSync(target)) await rename(target, old);
  await rename(fresh, target);
  await rm(old, { recursive: true, force: true });
}
