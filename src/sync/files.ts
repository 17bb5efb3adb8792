import { existsSync } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Config } from '../config/config.js';
import type { Command } from '../core/command.js';

/**
 * Blobs are written once and never changed, so they are copied once per
 * customer (rsync from production into a local mirror) and hard-linked into
 * each branch site (cp -al): a branch's copy costs no disk and almost no time.
 */
export const mirrorOf = (cfg: Config, customer: string) => join(cfg.sync.files, customer);

/** rsync production_files (a local path or host:path, read only) into the customer's mirror. */
export function mirrorCommand(cfg: Config, customer: string, source: string): Command {
  const mirror = mirrorOf(cfg, customer);
  const from = source.endsWith('/') ? source : `${source}/`;
  return {
    program: 'rsync',
    args: [
      '--archive',
      '--delete',
      '--partial-dir=.rsync-partial',
      '-e',
      'ssh -o BatchMode=yes',
      '--',
      from,
      `${mirror}/`,
    ],
    step: 'copy the files',
    timeoutMs: cfg.deployment.timeout * 1000,
  };
}

/** A branch site's copy of a customer's files, tonight's being prepared, and yesterday's until the sync commits. */
function blobDirs(cfg: Config, branch: string, customer: string) {
  const target = join(cfg.root, branch, cfg.deployment.blobs, customer);
  return { target, fresh: `${target}.karlstage-new`, old: `${target}.karlstage-old` };
}

/** Hard-link the mirror into the branch site under a temporary name (nothing it serves changes yet). */
export function linkCommand(cfg: Config, branch: string, customer: string): Command {
  return {
    program: 'cp',
    args: ['-al', '--', mirrorOf(cfg, customer), blobDirs(cfg, branch, customer).fresh],
    step: 'link the files',
    timeoutMs: cfg.deployment.timeout * 1000,
  };
}

/** Before linking: no half-linked copy of an earlier run in the way, and the folder above there. */
export async function clearStaged(cfg: Config, branch: string, customer: string): Promise<void> {
  const { target, fresh } = blobDirs(cfg, branch, customer);
  await rm(fresh, { recursive: true, force: true });
  await mkdir(dirname(target), { recursive: true });
}

/** Swap the staged files in by rename; yesterday's stay beside them until commitFiles. */
export async function swapFiles(cfg: Config, branch: string, customer: string): Promise<void> {
  const { target, fresh, old } = blobDirs(cfg, branch, customer);
  await rm(old, { recursive: true, force: true });
  if (existsSync(target)) await rename(target, old);
  await rename(fresh, target);
}

/** The sync of this branch site went through: yesterday's files go. Returns what it removed. */
export async function commitFiles(
  cfg: Config,
  branch: string,
  customer: string,
): Promise<string[]> {
  const { fresh, old } = blobDirs(cfg, branch, customer);
  const removed = [fresh, old].filter((d) => existsSync(d));
  for (const d of removed) await rm(d, { recursive: true, force: true });
  return removed;
}

/** It did not: yesterday's files back in place (if they were moved), tonight's removed. */
export async function putBackFiles(
  cfg: Config,
  branch: string,
  customer: string,
): Promise<string[]> {
  const { target, fresh, old } = blobDirs(cfg, branch, customer);
  const done: string[] = [];
  if (existsSync(old)) {
    await rm(target, { recursive: true, force: true });
    await rename(old, target);
    done.push(`${old} → ${target}`);
  }
  if (existsSync(fresh)) {
    await rm(fresh, { recursive: true, force: true });
    done.push(fresh);
  }
  return done;
}
