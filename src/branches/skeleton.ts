import { existsSync, statSync } from 'node:fs';
import { cp } from 'node:fs/promises';
import type { Config } from '../config/config.js';
import { isRemoteLocation } from '../config/config.js';
import { UsageError } from '../core/errors.js';
import type { Step } from '../core/plan.js';
import { GitVcs } from '../vcs/git.js';

/**
 * The deployment skeleton (the buildout) every branch site starts from: a
 * local folder is copied, a git URL cloned. Checked before the plan is made: a
 * missing folder is one line, not a stack trace.
 */
export function checkSkeleton(cfg: Config, branch: string): void {
  const s = cfg.deployment.skeleton;
  if (!isRemoteLocation(s) && (!existsSync(s) || !statSync(s).isDirectory()))
    throw new UsageError(
      `[deployment] skeleton = ${s}: there is no such folder; fix the setting in ${cfg.file} before creating ${branch}`,
    );
}

/** The step that copies (or clones) it to `dest`: made without reading the disk (checkSkeleton checks first). */
export function skeletonStep(cfg: Config, dest: string): Step {
  const s = cfg.deployment.skeleton;
  const title = 'copy the deployment skeleton';
  if (isRemoteLocation(s)) {
    const clone = new GitVcs({
      url: s.replace(/^git\+/, ''),
      timeoutMs: cfg.source.timeout * 1000,
      retries: cfg.source.retries,
    }).clonePlain(dest);
    return { title, commands: clone.commands, run: (ctx) => clone.run(ctx.exec) };
  }
  return {
    title,
    effects: [`copy ${s}/ to ${dest}/`],
    run: async () => {
      await cp(s, dest, {
        recursive: true,
        errorOnExist: true,
        force: false,
        preserveTimestamps: true,
        verbatimSymlinks: true,
      });
    },
  };
}
