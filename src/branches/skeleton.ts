import { cp } from 'node:fs/promises';
import type { Config } from '../config/config.js';
import { isRemoteLocation } from '../config/config.js';
import { redact } from '../core/redact.js';
import { GitVcs } from './git.js';

/** The deployment skeleton (the buildout): a local folder is copied, a git URL cloned. */
export function skeletonPreview(cfg: Config, dest: string): string[] {
  const s = cfg.deployment.skeleton;
  return isRemoteLocation(s)
    ? [`$ git clone -- ${redact(gitUrl(s))} ${dest}`]
    : [`copy ${s}/ to ${dest}/`];
}

function gitUrl(location: string): string {
  return location.replace(/^git\+/, '');
}

export async function copySkeleton(cfg: Config, dest: string, log: string): Promise<void> {
  const s = cfg.deployment.skeleton;
  if (isRemoteLocation(s)) {
    const git = new GitVcs({
      url: gitUrl(s),
      timeoutMs: cfg.source.timeout * 1000,
      retries: cfg.source.retries,
      log,
    });
    await git.clone(dest);
    return;
  }
  await cp(s, dest, {
    recursive: true,
    errorOnExist: true,
    force: false,
    preserveTimestamps: true,
    verbatimSymlinks: true,
  });
}
